//! The binary edge: parse the command line (clap exits 2 on malformed flags), run, and turn
//! the outcome into an exit code: 0 healthy, 1 problem found, 2 the tool could not do its job.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use kubectl_netdebug::cli::{Cli, Command};

fn main() -> ExitCode {
    // Installed (or symlinked) as `kubectl_complete-netdebug`, this binary is kubectl's plugin
    // completion helper: the same code as the separate helper binary.
    // `kubectl-netdebug __complete ARGS... PARTIAL` is the same, hidden (not a clap subcommand, so
    // neither --help nor the generated scripts show it, and any word after it is accepted).
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if invoked_as_completion_helper() {
        kubectl_netdebug::complete::run(&args[1..]);
    }
    if args.get(1).map(String::as_str) == Some("__complete") {
        kubectl_netdebug::complete::run(&args[2..]);
    }
    let cli = Cli::parse();
    if let Some(Command::Completion(c)) = &cli.command {
        // The script completes the `kubectl-netdebug` command (`kubectl netdebug` goes through
        // kubectl's own completion and the helper).
        clap_complete::generate(
            c.shell,
            &mut Cli::command(),
            "kubectl-netdebug",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result: anyhow::Result<i32> = runtime.block_on(async move {
        match cli.command {
            Some(Command::Version) => {
                print_version();
                Ok(0)
            }
            Some(Command::Local(args)) => Ok(kubectl_netdebug::local::run(*args).await?),
            Some(Command::Image(args)) => Ok(kubectl_netdebug::probe_image::run(*args).await?),
            Some(Command::Completion(_)) => Ok(0), // handled above
            None => Ok(run_cluster(cli.run).await?),
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn invoked_as_completion_helper() -> bool {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_stem().map(|s| s == "kubectl_complete-netdebug"))
        .unwrap_or(false)
}

async fn run_cluster(args: kubectl_netdebug::cli::RunArgs) -> anyhow::Result<i32> {
    Ok(kubectl_netdebug::run::run(args).await?)
}

fn print_version() {
    println!(
        "kubectl-netdebug {}\nprotocol {}.{}\ndefault probe image {}\n{}",
        env!("CARGO_PKG_VERSION"),
        protocol::PROTOCOL_MAJOR,
        protocol::PROTOCOL_MINOR,
        kubectl_netdebug::image::DEFAULT_PROBE_IMAGE,
        kubectl_netdebug::image::pin_status()
    );
}
