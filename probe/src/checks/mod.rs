//! The checks. Each module exposes `pub async fn run(ctx: Arc<Ctx>) -> Outcome`, emits its
//! evidence through `ctx.emit`, and decides itself whether it can run under the privileges
//! granted (returning `Outcome::Skipped` with the missing capability otherwise).
//!
//! The runtime is single-threaded: blocking work (netlink sockets, /proc reads of any size)
//! goes through `tokio::task::spawn_blocking`.

use std::sync::Arc;

use protocol::{Capability, CheckKind};

use crate::context::Ctx;

mod app;
mod capture;
pub mod conntrack;
pub mod counters;
mod dns;
mod dns_rounds;
mod links;
mod mtu;
mod node_path;
mod pacing;
mod rounds;
mod route;
mod route_refusal;
mod sockets;
mod sysctls;
mod tcp;

/// How a check ended. Evidence of a broken network is `Completed`: the check did its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Skipped {
        reason: String,
        missing_capability: Option<Capability>,
    },
    Failed(String),
}

impl Outcome {
    pub fn skipped_for_capability(cap: Capability, reason: impl Into<String>) -> Outcome {
        Outcome::Skipped {
            reason: reason.into(),
            missing_capability: Some(cap),
        }
    }
}

pub async fn run(kind: CheckKind, ctx: Arc<Ctx>) -> Outcome {
    match kind {
        CheckKind::Links => links::run(ctx).await,
        CheckKind::Route => route::run(ctx).await,
        CheckKind::Dns => dns::run(ctx).await,
        CheckKind::Tcp => tcp::run(ctx).await,
        CheckKind::Sockets => sockets::run(ctx).await,
        CheckKind::Counters => counters::run(ctx).await,
        CheckKind::Conntrack => conntrack::run(ctx).await,
        CheckKind::Sysctls => sysctls::run(ctx).await,
        CheckKind::Mtu => mtu::run(ctx).await,
        CheckKind::NodePath => node_path::run(ctx).await,
        CheckKind::Capture => capture::run(ctx).await,
        CheckKind::App => app::run(ctx).await,
    }
}
