//! Both ends (protocol minor 4): a run where one probe watches the destination end (a *peer*)
//! while another (the *source*) makes the traffic, and the client paces them.
//!
//! The client tells a probe when to move with one-word lines on its **control channel**
//! ([`ControlPlan::via`]): standard input (`local` mode, where the client owns the child), or
//! the tunnel connection after the token line (a pod, through the port-forward). Words:
//!
//! | line   | to     | meaning |
//! |--------|--------|---------|
//! | `go`   | source | every peer is armed (or the client stopped waiting): run the traffic checks |
//! | `stop` | peer   | the source is done: end the capture and report |
//!
//! A probe never waits on the channel past its limits: a source starts its traffic checks
//! after [`ControlPlan::hold_ms`] without `go` (and says so in [`Released`]); a peer's capture
//! ends at its own `max_duration_ms` or the deadline without `stop`. A closed channel counts as
//! the word the probe was waiting for, so a client that dies never leaves a probe holding.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{spelled, Open, PlanError};

/// The control word that releases a held source.
pub const CONTROL_GO: &str = "go";
/// The control word that ends a peer's capture.
pub const CONTROL_STOP: &str = "stop";
/// The longest a plan may ask a source to hold.
pub const MAX_HOLD_MS: u64 = 60_000;

/// This probe is a peer: it watches the destination end of the source's traffic. Its capture
/// (unless the plan gives a filter) takes TCP between the `sources` and the local `ports`, both
/// directions, and ICMP errors; its route check looks up the way back to each source; its
/// socket evidence lists the listeners on `ports` first, whatever address they are bound to.
/// When the plan has no targets, the probe makes one per source (role `source`) for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerPlan {
    /// The source's addresses as this end sees them (the source pod's IPs).
    pub sources: Vec<IpAddr>,
    /// The destination ports on this end (a Service's targetPort as resolved for this pod).
    pub ports: Vec<u16>,
}

impl PeerPlan {
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.sources.is_empty() {
            return Err(PlanError::Invalid(
                "peer.sources must name an address".into(),
            ));
        }
        if self.ports.is_empty() || self.ports.contains(&0) {
            return Err(PlanError::Invalid(
                "peer.ports must name at least one port, none of them 0".into(),
            ));
        }
        Ok(())
    }
}

spelled! {
    /// Where a probe reads its control words.
    pub enum ControlVia {
        /// Lines on standard input.
        Stdin = "stdin",
        /// Lines the tunnel's peer sends after the token (needs the plan's `tunnel`).
        Tunnel = "tunnel",
    }
}

/// The probe is paced by the client (see the module text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlPlan {
    pub via: Open<ControlVia>,
    /// A source: wait for `go` before the traffic checks, at most this long (observers, and
    /// checks that make no traffic, run meanwhile). None: do not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u64>,
}

impl ControlPlan {
    pub fn validate(&self, has_tunnel: bool) -> Result<(), PlanError> {
        match self.via.known() {
            None => {
                return Err(PlanError::Invalid(format!(
                    "control.via `{}` is not one this probe knows (stdin, tunnel)",
                    self.via.as_str()
                )))
            }
            Some(ControlVia::Tunnel) if !has_tunnel => {
                return Err(PlanError::Invalid(
                    "control.via `tunnel` needs the plan's `tunnel`".into(),
                ))
            }
            _ => {}
        }
        if self.hold_ms.is_some_and(|h| h > MAX_HOLD_MS) {
            return Err(PlanError::Invalid(format!(
                "control.hold_ms out of range (0..={MAX_HOLD_MS})"
            )));
        }
        Ok(())
    }
}

/// A paced probe's observers are in place (event `armed`): a peer's capture socket is bound
/// with its filter, or the capture cannot run (`capture: false`, and a `skipped` event says
/// why). The client releases the source once every peer has sent this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Armed {
    pub capture: bool,
    /// Since the probe started.
    pub elapsed_ms: f64,
}

spelled! {
    /// Why a held source went on.
    pub enum ReleaseCause {
        /// The client sent `go`.
        Go = "go",
        /// `hold_ms` passed without `go`: some peer may have missed the traffic.
        HoldLimit = "hold_limit",
        /// The control channel closed without `go`.
        ChannelClosed = "channel_closed",
    }
}

/// A held source went on to its traffic checks (event `released`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Released {
    pub by: Open<ReleaseCause>,
    /// How long it held.
    pub held_ms: f64,
}
