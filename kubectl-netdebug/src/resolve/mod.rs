//! Resolution: SOURCE and `--to` as written by the user -> the source pod, concrete probe
//! targets, DNS names to look up, and Kubernetes-level findings (Service, EndpointSlices,
//! readiness, targetPorts, NetworkPolicies).
//!
//! Entry points: [`parse_source`], [`parse_destination`] (pure, before any API call), then
//! [`resolve_source`] and [`resolve_destination`].

mod api;
mod destination;
mod error;
pub(crate) use error::is_not_found;
pub mod labels;
pub mod netpol;
pub mod pods;
mod policy;
mod served;
mod service;
mod source;
mod sources;
mod spec;

pub use destination::{resolve_destination, ResolvedDestination};
pub use served::{ports_serving, served_ports};
pub use source::{choose_container, resolve_source, ResolvedSource, DEFAULT_CONTAINER_ANNOTATION};
pub use sources::{
    parse_selector, resolve_sources, ChosenSources, SourceSelection, SourcesRequest,
};
pub use spec::{parse_destination, parse_source, DestSpec, PortRef, SourceKind, SourceSpec};

/// The cluster DNS domain Service names are built with. Kubernetes' default; clusters with
/// another domain still resolve the short name through the pod's search list.
pub const CLUSTER_DOMAIN: &str = "cluster.local";
