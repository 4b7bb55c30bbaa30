//! kubectl-netdebug: resolve Kubernetes objects, inject the probe as an ephemeral container,
//! stream its events and render the verdict. `main.rs` is the thin binary edge.

// The verdict crate is published as `netdebug-verdict`; inside this crate it is `verdict`.
extern crate netdebug_verdict as verdict;

pub mod app;
pub mod cli;
pub mod complete;
pub mod connect;
pub mod duration;
pub mod ends;
pub mod error;
pub mod events;
pub mod image;
pub mod image_hint;
pub mod inject;
pub mod local;
#[cfg(target_os = "linux")]
pub mod local_peers;
pub mod node;
pub mod output;
pub mod pcap;
pub mod plan;
pub mod preflight;
pub mod probe_image;
pub mod profile;
pub mod resolve;
pub mod rounds_bar;
pub mod run;
pub mod sources;
pub mod sources_bar;
pub mod stream;
pub mod tunnel;
pub mod wait;
