//! The most common scenario: a client and a server namespace joined by one veth pair, with a
//! temporary directory for files the probe reads (resolv.conf) or the tests write.
//!
//! ```text
//! cli: c0 10.199.1.2/24 [fd00:199::2/64]  <-veth->  srv: s0 10.199.1.1/24 [fd00:199::1/64]
//! ```
//! The probe runs in `cli` (`--netns`); servers run in `srv`. Everything goes with the two
//! namespaces when the pair drops.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::link::Link;
use crate::netns::Netns;
use crate::probe::{json_plan, run_probe, ProbeRun};
use crate::servers::TcpServer;

/// The server's address on the veth.
pub const SRV: &str = "10.199.1.1";
/// The client's address on the veth.
pub const CLI: &str = "10.199.1.2";
/// The server's IPv6 address (after [`ClientServer::enable_v6`]).
pub const SRV6: &str = "fd00:199::1";
/// The client's IPv6 address (after [`ClientServer::enable_v6`]).
pub const CLI6: &str = "fd00:199::2";
/// The client's end of the veth pair.
pub const CLI_DEV: &str = "c0";
/// The server's end of the veth pair.
pub const SRV_DEV: &str = "s0";

/// Client and server namespaces joined by a veth pair (IPv4 only until
/// [`ClientServer::enable_v6`]).
pub struct ClientServer {
    pub cli: Netns,
    pub srv: Netns,
    dir: tempfile::TempDir,
}

impl ClientServer {
    /// Namespaces `ndt-<tag>c-…` and `ndt-<tag>s-…` joined by `c0` (CLI) and `s0` (SRV).
    #[track_caller]
    pub fn new(tag: &str) -> ClientServer {
        let cli = Netns::new(&format!("{tag}c"));
        let srv = Netns::new(&format!("{tag}s"));
        Link::veth_pair(
            &cli,
            CLI_DEV,
            &format!("{CLI}/24"),
            &srv,
            SRV_DEV,
            &format!("{SRV}/24"),
        );
        ClientServer {
            cli,
            srv,
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Adds SRV6 and CLI6 (/64, no DAD) to the veth.
    #[track_caller]
    pub fn enable_v6(&self) {
        self.srv.add_addr(SRV_DEV, &format!("{SRV6}/64"));
        self.cli.add_addr(CLI_DEV, &format!("{CLI6}/64"));
    }

    /// Another address on the server's end of the veth, in SRV's /24 (or SRV6's /64).
    #[track_caller]
    pub fn add_srv_addr(&self, ip: &str) {
        let len = if ip.contains(':') { 64 } else { 24 };
        self.srv.add_addr(SRV_DEV, &format!("{ip}/{len}"));
    }

    /// A TCP server on SRV:`port` that accepts and holds connections.
    #[track_caller]
    pub fn listen(&self, port: u16) -> TcpServer {
        self.srv
            .spawn_tcp_server(SocketAddr::new(SRV.parse().expect("SRV"), port))
    }

    /// A path in the pair's temporary directory (deleted with the pair).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to [`ClientServer::file`] `name` and returns its path.
    #[track_caller]
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.file(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Runs the probe in the client namespace with a JSON plan (see [`json_plan`]); it must
    /// exit 0 with a complete stream ([`ProbeRun::assert_ok`]).
    #[track_caller]
    pub fn probe(&self, plan: serde_json::Value) -> ProbeRun {
        let run = run_probe(&self.cli, &json_plan(plan));
        run.assert_ok();
        run
    }
}
