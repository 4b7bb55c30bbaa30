//! The probe's own stub resolver: resolv.conf parsing with glibc's rules, search/ndots
//! candidate expansion, and A/AAAA exchanges over UDP (TCP on truncation) on plain sockets.
//! No libc resolver anywhere: names never reach getaddrinfo.

mod app;
mod candidates;
mod config;
mod hosts;
mod lookup;
mod transport;
mod wire;

pub use app::{app_lookup, AppLookup};
pub use config::{load_config, ResolverConfig};
pub use lookup::lookup;
/// The rcode mnemonics dig prints, shared with the capture's DNS summary.
pub use wire::rcode_name;
