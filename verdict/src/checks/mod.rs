//! One module per check of the probe (see the registry in `protocol`): each holds, for the
//! evidence types its check emits, the line shown as the evidence arrives ([`Progress`]) and
//! the rules that judge it. The engine runs the rules in layer order (see `engine.rs`).
//!
//! [`Progress`]: crate::progress::Progress

pub mod app;
pub mod capture;
pub mod conntrack;
pub mod counters;
pub mod dns;
pub mod dns_rounds;
pub mod links;
pub mod mtu;
pub mod node_path;
pub mod rounds;
pub mod route;
pub mod sockets;
pub mod sysctls;
pub mod tcp;
pub mod tcp_icmp;
