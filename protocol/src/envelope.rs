//! The line envelope, the non-evidence events, and the decoder readers use.

use serde::{Deserialize, Serialize};

use crate::evidence::Evidence;
use crate::{spelled, Capability, CheckKind, MtuVariant, Open, PROTOCOL_MAJOR};

/// One line of the stream: `{"v":1,"seq":N,"type":...,"data":...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub seq: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// Every event the probe emits, adjacently tagged as `type` + `data`.
///
/// Evidence is the large variant (a TLS handshake's is about 400 bytes) and is left inline:
/// a run holds hundreds of events at most, and a boxed variant would turn every
/// `Event::Evidence(Evidence::X(..))` pattern of the readers into two steps.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    Hello(Hello),
    CheckStarted(CheckStarted),
    Evidence(Evidence),
    Skipped(Skipped),
    PcapChunk(PcapChunk),
    CheckFinished(CheckFinished),
    /// How far repeated rounds have got (protocol minor 2): for a live progress display only,
    /// never evidence.
    Progress(Progress),
    /// A paced probe's observers are in place (protocol minor 4).
    Armed(crate::Armed),
    /// A held source went on to its traffic checks (protocol minor 4).
    Released(crate::Released),
    Done(Done),
}

/// First event: who is probing, from where, with which privileges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The probe's crate version, e.g. `0.1.0`.
    pub probe_version: String,
    /// Protocol minor the probe speaks (the major is the envelope's `v`).
    pub protocol_minor: u32,
    /// Inode of the network namespace the checks run in (`/proc/self/ns/net`), when readable.
    #[serde(default)]
    pub netns_inode: Option<u64>,
    /// Hostname as the namespace's UTS namespace reports it (the pod name inside a pod).
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub kernel: Option<String>,
    pub uid: u32,
    pub euid: u32,
    /// Effective capabilities, lower-case without the `cap_` prefix (`net_raw`, `net_admin`).
    #[serde(default)]
    pub capabilities: Vec<Open<Capability>>,
    /// The run's hard deadline in milliseconds, as taken from the plan.
    pub deadline_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStarted {
    pub check: Open<CheckKind>,
    /// Which variant of the check runs, when it has several (`icmp` / `tcp` for mtu).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Open<MtuVariant>>,
}

/// A check (or part of one) that could not run, and why. Never silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub check: Open<CheckKind>,
    pub reason: String,
    /// The capability whose absence caused the skip (`net_raw`), if that is the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_capability: Option<Open<Capability>>,
}

impl Skipped {
    /// A skip for a reason other than a missing capability.
    pub fn new(check: CheckKind, reason: impl Into<String>) -> Skipped {
        Skipped {
            check: check.into(),
            reason: reason.into(),
            missing_capability: None,
        }
    }

    /// A skip because the probe lacks `capability`.
    pub fn for_capability(
        check: CheckKind,
        capability: Capability,
        reason: impl Into<String>,
    ) -> Skipped {
        Skipped {
            missing_capability: Some(capability.into()),
            ..Skipped::new(check, reason)
        }
    }
}

/// A piece of a pcap file (classic pcap, the first chunk starts with the global header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcapChunk {
    /// 0-based index of this chunk; chunks are concatenated in order.
    pub index: u32,
    /// Number of packet records in this chunk.
    pub packets: u32,
    /// Base64 (standard alphabet, padded) of the bytes.
    pub data: String,
}

spelled! {
    /// How a check ended.
    pub enum CheckStatus {
        /// The check ran to completion (its evidence may still show a failure of the network).
        Completed = "completed",
        /// The check could not do its job (an error of the probe or the kernel interface).
        Error = "error",
        /// The run's deadline cut the check short; its evidence so far was emitted.
        DeadlineExceeded = "deadline_exceeded",
        /// The check did not run; a `skipped` event says why.
        Skipped = "skipped",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckFinished {
    pub check: Open<CheckKind>,
    pub status: Open<CheckStatus>,
    pub elapsed_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How far a check's repeated rounds have got, sent about twice a second while they run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub check: Open<CheckKind>,
    /// Attempts finished so far.
    pub done: u64,
    /// Attempts planned; None when the rounds run for a duration (`--for`).
    #[serde(default)]
    pub total: Option<u64>,
    /// Finished attempts that failed (did not connect; did not answer, or stalled).
    pub failed: u64,
}

/// Last event of a complete run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub elapsed_ms: f64,
    pub checks_completed: u32,
    pub checks_failed: u32,
    pub checks_skipped: u32,
    /// True when the hard deadline stopped at least one check.
    pub deadline_exceeded: bool,
}

/// What a reader got from one line.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Event(Box<Envelope>),
    /// A well-formed line of our major whose `type` (or evidence `kind`) this reader does not
    /// know: a newer probe. Ignore it, but keep its `seq` for resume bookkeeping.
    Unknown {
        seq: u64,
        event_type: String,
    },
}

impl Decoded {
    pub fn seq(&self) -> u64 {
        match self {
            Decoded::Event(e) => e.seq,
            Decoded::Unknown { seq, .. } => *seq,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a protocol line (not JSON): {0}")]
    NotJson(String),
    #[error("not a protocol line: missing or invalid `{0}` field")]
    MissingField(&'static str),
    #[error(
        "probe speaks protocol version {found}, this client understands version {expected}: \
         use a probe image that matches the client version (--image)"
    )]
    UnsupportedMajor { found: u64, expected: u32 },
    #[error("malformed `{event_type}` event (seq {seq}): {message}")]
    Malformed {
        seq: u64,
        event_type: String,
        message: String,
    },
}

const KNOWN_TYPES: &[&str] = &[
    "hello",
    "check_started",
    "evidence",
    "skipped",
    "pcap_chunk",
    "check_finished",
    "progress",
    "armed",
    "released",
    "done",
];

/// Decode one line. Unknown event types and unknown evidence kinds of our major yield
/// [`Decoded::Unknown`]; unknown fields are ignored; another major is an error.
pub fn decode_line(line: &str) -> Result<Decoded, DecodeError> {
    let value: serde_json::Value =
        serde_json::from_str(line.trim()).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or(DecodeError::NotJson("not a JSON object".into()))?;
    let v = obj
        .get("v")
        .and_then(|v| v.as_u64())
        .ok_or(DecodeError::MissingField("v"))?;
    if v != u64::from(PROTOCOL_MAJOR) {
        return Err(DecodeError::UnsupportedMajor {
            found: v,
            expected: PROTOCOL_MAJOR,
        });
    }
    let seq = obj
        .get("seq")
        .and_then(|v| v.as_u64())
        .ok_or(DecodeError::MissingField("seq"))?;
    let event_type = obj
        .get("type")
        .and_then(|v| v.as_str())
        .ok_or(DecodeError::MissingField("type"))?
        .to_string();
    if !KNOWN_TYPES.contains(&event_type.as_str()) {
        return Ok(Decoded::Unknown { seq, event_type });
    }
    if event_type == "evidence" {
        let kind = obj
            .get("data")
            .and_then(|d| d.get("kind"))
            .and_then(|k| k.as_str())
            .unwrap_or("");
        if !crate::evidence::KNOWN_KINDS.contains(&kind) {
            return Ok(Decoded::Unknown {
                seq,
                event_type: format!("evidence/{kind}"),
            });
        }
    }
    serde_json::from_value::<Envelope>(value)
        .map(|e| Decoded::Event(Box::new(e)))
        .map_err(|e| DecodeError::Malformed {
            seq,
            event_type,
            message: e.to_string(),
        })
}

/// Encode one envelope as a line (no trailing newline).
pub fn encode_line(envelope: &Envelope) -> String {
    // Serialising our own plain-data types cannot fail (no maps with non-string keys, no
    // fallible Serialize impls).
    serde_json::to_string(envelope).expect("protocol types always serialise")
}
