//! Resolution: SOURCE and `--to` as written by the user -> the source pod, concrete probe
//! targets, DNS names to look up, and Kubernetes-level findings (Service, EndpointSlices,
//! readiness, targetPorts, NetworkPolicies).

mod api;
mod error;
pub mod labels;
pub mod netpol;
pub mod pods;
mod source;
mod spec;

pub use error::ResolveError;
pub use source::{choose_container, resolve_source, ResolvedSource, DEFAULT_CONTAINER_ANNOTATION};
pub use spec::{parse_destination, parse_source, DestSpec, PortRef, SourceKind, SourceSpec};
