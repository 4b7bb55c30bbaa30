//! The binary edge: parse the command line (clap exits 2 on malformed flags), run, and turn
//! the outcome into an exit code: 0 healthy, 1 problem found, 2 the tool could not do its job.

use std::process::ExitCode;

use clap::Parser;
use kubectl_netdebug::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Some(Command::Local(args)) => Ok(kubectl_netdebug::local::run(args).await?),
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

async fn run_cluster(args: kubectl_netdebug::cli::RunArgs) -> anyhow::Result<i32> {
    Ok(kubectl_netdebug::run::run(args).await?)
}

fn print_version() {
    println!(
        "kubectl-netdebug {}\nprotocol {}.{}\ndefault probe image {}",
        env!("CARGO_PKG_VERSION"),
        protocol::PROTOCOL_MAJOR,
        protocol::PROTOCOL_MINOR,
        kubectl_netdebug::image::DEFAULT_PROBE_IMAGE
    );
}
