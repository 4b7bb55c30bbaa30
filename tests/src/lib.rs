//! # Network-namespace scenario harness
//!
//! Builds small networks out of Linux network namespaces, runs `netdebug-probe` inside them,
//! and offers the independent tools (`ip`, `ss`, `dig`...) as oracles for the same facts.
//! Everything it creates is named `ndt-<tag>-<pid>-<n>` and is removed on drop, also when a
//! test panics; namespaces left by a killed run are swept by the next run.
//!
//! The tests need root (they fail, not skip, without it: CI runs them as root). Build the
//! probe first: `cargo build -p probe && cargo test -p netdebug-scenarios --test <name>`.
//! Addresses: use 10.199.0.0/16 and fd00:199::/64 inside your namespaces, or loopback.
//!
//! ```no_run
//! use netdebug_scenarios::*;
//! use protocol::{CheckKind, TcpEvidence};
//!
//! require_root();
//! let client = Netns::new("client");
//! let server = Netns::new("server");
//! Link::veth_pair(&client, "c0", "10.199.1.1/24", &server, "s0", "10.199.1.2/24");
//! let srv = server.spawn_tcp_server("10.199.1.2:8080".parse().unwrap());
//! let dns = server.spawn_dnsmasq("10.199.1.2".parse().unwrap(), &[("web.test", "10.199.1.2")]);
//! let run = run_probe(&client, &plan(&[CheckKind::Tcp], vec![tcp_target(srv.addr)]));
//! run.assert_ok();
//! let tcp: Vec<&TcpEvidence> = run.evidence::<TcpEvidence>();
//! let ss = client.ss_tcp_state_counts(); // oracle: `ss -tan` inside the namespace
//! # let _ = (tcp, ss, dns);
//! ```
//!
//! Modules: [`netns`] (namespaces, commands inside them, sysctls, iptables, `ss` counts),
//! [`link`] (veth pairs, bridges), [`pair`] (the common client + server namespaces joined by
//! one veth pair), [`servers`] (TCP servers and clients via the `ndt-sock`
//! helper binary, dnsmasq), [`tcpdump`] (capture as an oracle), [`probe`] (running the probe
//! and picking evidence out of its stream), [`pki`] (test certificates made with openssl),
//! [`verdict`] (the verdict engine on a run), [`cgroup`] (pod cgroups as the kubelet names
//! them, for finding a pod's namespace from the node), [`cmd`]
//! (bounded command execution), [`require`] (root and tool checks).

pub mod cgroup;
pub mod cmd;
pub mod link;
pub mod netns;
pub mod pair;
pub mod pki;
pub mod probe;
pub mod require;
pub mod servers;
pub mod tcpdump;
pub mod verdict;

pub use cgroup::{pod_uid, PodCgroup};
pub use cmd::{run_with_timeout, try_run, CmdOutput, DEFAULT_TIMEOUT};
pub use link::{Bridge, Iface, Link, VethPair};
pub use netns::{Netns, Process};
pub use pair::ClientServer;
pub use probe::{
    decode_run, json_plan, plan, probe_path, resolv_conf, run_probe, run_probe_args,
    run_probe_command, run_probe_unprivileged, spawn_paced_probe, tcp_target, EvidenceKind,
    PacedProbe, ProbeRun, TUNNEL_PEER,
};
pub use require::{require_root, require_tools};
pub use servers::{
    ndt_sock_path, Accept, ClientClose, Dnsmasq, TcpClients, TcpServer, TcpServerOptions,
};
pub use tcpdump::{Captured, Tcpdump};
