//! `netdebug-probe`: gathers network evidence from inside one network namespace and writes it as
//! JSON lines (see the `netdebug-protocol` crate) to stdout, then exits. It never writes to the
//! filesystem. Its checks end at the plan's deadline; the watchdog (runner.rs) ends the process
//! shortly after it even when something cannot be cancelled or nobody reads stdout.

mod caps;
mod capture;
mod checks;
mod cli;
mod conntrack_lookup;
mod context;
mod control;
mod dns;
mod emit;
mod errqueue;
mod netlink;
mod netns;
mod node_conntrack;
mod peer;
mod platform;
mod pod_netns;
mod policy_walk;
mod runner;
mod tunnel;

use std::process::ExitCode;

/// Exit code when the probe itself could not work (bad plan, namespace not enterable...).
const EXIT_PROBE_FAILED: u8 = 2;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Command::Run(args)) => args,
        Ok(cli::Command::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::Version) => {
            println!("netdebug-probe {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("netdebug-probe: {e}");
            return ExitCode::from(EXIT_PROBE_FAILED);
        }
    };
    // setns(CLONE_NEWNET) only moves the calling thread, so it must happen while this is the
    // only thread: before the async runtime (and its blocking pool) exists. Threads created
    // later inherit the namespace.
    // The node's conntrack table: opened before entering a pod's namespace, so that its socket
    // stays bound to the node's (see node_conntrack.rs).
    let node = args.node_conntrack.then(|| context::NodeView {
        conntrack: node_conntrack::NodeConntrack::open(),
        netns: std::fs::File::open("/proc/thread-self/ns/net").ok(),
        pod_ip: match &args.netns {
            Some(netns::NetnsTarget::Pod { ip, .. }) => Some(*ip),
            _ => None,
        },
    });
    let mut plan = args.plan;
    if let Some(target) = &args.netns {
        match netns::enter(target) {
            // A pod entered from its node: its resolver is the one in its containers, not
            // the probe pod's (which is the node's).
            Ok(Some(pod_root)) => read_files_under(&mut plan.dns, &pod_root),
            Ok(None) => {}
            Err(e) => {
                eprintln!("netdebug-probe: {e}");
                return ExitCode::from(EXIT_PROBE_FAILED);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netdebug-probe: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_PROBE_FAILED);
        }
    };
    let (control, tunnel_feed) = match control::open(&plan) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("netdebug-probe: {e}");
            return ExitCode::from(EXIT_PROBE_FAILED);
        }
    };
    let (output, tunnel) = tunnel::output(&mut plan, tunnel_feed);
    let emitter = match emit::Emitter::new(output) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("netdebug-probe: cannot start the output thread: {e}");
            return ExitCode::from(EXIT_PROBE_FAILED);
        }
    };
    let result = runtime.block_on(runner::run(plan, emitter.clone(), control, node));
    // The runner queued `done`; the writer thread may still be writing. Wait for it without a
    // bound: if stdout is stuck, the watchdog ends the process at the plan's deadline.
    emitter.close();
    emitter.flush(None);
    if let Some(tunnel) = tunnel {
        // Every line is written: the tunnel's peer gets the rest, or comes within the linger.
        tunnel.finish();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netdebug-probe: {e}");
            ExitCode::from(EXIT_PROBE_FAILED)
        }
    }
}

/// Points the resolver's files (resolv.conf, hosts) into `root`: the pod's filesystem as one
/// of its containers sees it (`/proc/PID/root`), for a probe that entered the pod from its
/// node and whose own /etc is the node's.
fn read_files_under(dns: &mut protocol::DnsPlan, root: &std::path::Path) {
    for file in [&mut dns.resolv_conf, &mut dns.hosts_file] {
        let inside = root.join(file.trim_start_matches('/'));
        *file = inside.to_string_lossy().into_owned();
    }
}
