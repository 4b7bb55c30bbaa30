//! Typed evidence, one kind per fact the probe can establish. `{"kind":"tcp", ...}` inside an
//! `evidence` event's `data`. Each kind lives in its own module.

mod app;
mod capture;
mod dns;
mod kernel;
mod links;
mod mtu;
mod node_path;
mod rounds;
mod route;
mod sockets;
mod tcp;

pub use app::*;
pub use capture::*;
pub use dns::*;
pub use kernel::*;
pub use links::*;
pub use mtu::*;
pub use node_path::*;
pub use rounds::*;
pub use route::*;
pub use sockets::*;
pub use tcp::*;

pub use crate::registry::{Evidence, EvidenceType, KNOWN_KINDS};
