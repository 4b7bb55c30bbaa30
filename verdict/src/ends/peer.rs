//! One destination end (a peer session) as the correlation reads it: its facts, and whether
//! its capture watched, which decides what its silence about a connection proves.

use protocol::{CaptureSummary, CheckKind, ReleaseCause};

use crate::facts::Facts;
use crate::model::{Inputs, PeerSession, Unchecked};

/// What a peer's capture can testify to.
#[derive(Debug)]
pub enum Watch<'a> {
    /// Armed with a capture whose summary arrived; `complete` when the kernel dropped no
    /// packet of it (only then does the absence of a packet prove it never came).
    Watched {
        capture: &'a CaptureSummary,
        complete: bool,
    },
    /// The peer was not probed (`PeerSession::problem`).
    NotRun(&'a str),
    /// The probe never said `armed`: its capture may not have been in place in time.
    NeverArmed,
    /// Armed without a capture (no CAP_NET_RAW, or the capture failed), and why.
    CaptureSkipped(String),
    /// Armed with a capture whose summary never arrived (the stream ended early).
    NoSummary,
}

#[derive(Debug)]
pub struct PeerView<'a> {
    pub session: &'a PeerSession,
    pub facts: Facts<'a>,
    pub watch: Watch<'a>,
}

impl<'a> PeerView<'a> {
    pub fn new(session: &'a PeerSession, inputs: &'a Inputs) -> PeerView<'a> {
        let facts = Facts::of_events(&session.events, &inputs.kube, &inputs.title);
        let watch = watch_of(session, &facts);
        PeerView {
            session,
            facts,
            watch,
        }
    }

    /// `peer pod/web-1`: how evidence lines cite this end.
    pub fn cite(&self) -> String {
        format!("peer {}", self.session.label)
    }

    /// The capture, when it watched.
    pub fn capture(&self) -> Option<&'a CaptureSummary> {
        match self.watch {
            Watch::Watched { capture, .. } => Some(capture),
            _ => None,
        }
    }

    /// Its silence about a connection sent its way proves the connection never came.
    pub fn proves_absence(&self) -> bool {
        matches!(self.watch, Watch::Watched { complete: true, .. })
    }
}

fn watch_of<'a>(session: &'a PeerSession, f: &Facts<'a>) -> Watch<'a> {
    if let Some(problem) = session.problem.as_deref() {
        return Watch::NotRun(problem);
    }
    let Some(armed) = f.armed else {
        return Watch::NeverArmed;
    };
    if !armed.capture {
        let why = f
            .skipped
            .iter()
            .find(|s| s.check == CheckKind::Capture)
            .map(|s| match &s.missing_capability {
                Some(c) => format!("{} (needs {c})", s.reason),
                None => s.reason.clone(),
            })
            .unwrap_or_else(|| "the peer armed without a capture".into());
        return Watch::CaptureSkipped(why);
    }
    match f.one::<CaptureSummary>() {
        Some(capture) => Watch::Watched {
            capture,
            complete: capture.kernel_drops == 0,
        },
        None => Watch::NoSummary,
    }
}

/// What this leaves open, said once per peer that could not testify.
const OPEN_QUESTION: &str = "a drop on the way cannot be told from a drop inside the destination";

/// The peers that could not see, and a source that went on before every peer was armed:
/// each is a check of the run that did not happen, with what that leaves open.
pub fn gaps(source: &Facts, peers: &[PeerView]) -> Vec<Unchecked> {
    let mut out: Vec<Unchecked> = peers.iter().filter_map(peer_gap).collect();
    if let Some(released) = source.released {
        let why = match released.by.known() {
            Some(ReleaseCause::Go) => None,
            Some(ReleaseCause::HoldLimit) => Some(format!(
                "the source went on after holding {:.0} ms without every peer armed",
                released.held_ms
            )),
            Some(ReleaseCause::ChannelClosed) => {
                Some("the source's control channel closed before every peer was armed".into())
            }
            None => Some(format!("the source went on by `{}`", released.by)),
        };
        if let Some(why) = why {
            out.push(Unchecked {
                check: "peer".into(),
                reason: format!(
                    "{why}: a peer may have missed the traffic, so a connection no peer saw \
                     proves nothing"
                ),
                missing_capability: None,
            });
        }
    }
    out
}

fn peer_gap(p: &PeerView) -> Option<Unchecked> {
    let label = &p.session.label;
    let (reason, cap) = match &p.watch {
        Watch::Watched { complete: true, .. } => return None,
        Watch::Watched { capture, .. } => (
            format!(
                "{label}: its capture dropped {} packets, so a packet it did not see may have \
                 come",
                capture.kernel_drops
            ),
            None,
        ),
        Watch::NotRun(problem) => (
            format!("{label}: not run ({problem}): {OPEN_QUESTION}"),
            None,
        ),
        Watch::NeverArmed => (
            format!("{label}: its probe never armed a capture: {OPEN_QUESTION}"),
            None,
        ),
        Watch::CaptureSkipped(why) => (
            format!("{label}: capture skipped ({why}): {OPEN_QUESTION}"),
            p.facts
                .skipped
                .iter()
                .find(|s| s.check == CheckKind::Capture)
                .and_then(|s| s.missing_capability.as_ref())
                .map(|c| c.to_string()),
        ),
        Watch::NoSummary => (
            format!(
                "{label}: its capture never reported (the stream ended early): {OPEN_QUESTION}"
            ),
            None,
        ),
    };
    Some(Unchecked {
        check: "peer".into(),
        reason,
        missing_capability: cap,
    })
}

/// The source went on without `go`: a peer may not have been armed when the traffic passed.
pub fn released_early(source: &Facts) -> bool {
    source.released.is_some_and(|r| r.by != ReleaseCause::Go)
}
