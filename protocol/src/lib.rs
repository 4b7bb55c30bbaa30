//! # The netdebug event protocol
//!
//! `netdebug-probe` writes one JSON object per line to stdout; `kubectl-netdebug` reads the same
//! lines from the ephemeral container's log (or from a child process in `local` mode). This crate
//! is the single definition of both sides of that contract and of the [`Plan`] the client hands
//! to the probe. It does no I/O.
//!
//! ## Envelope
//!
//! Every line is an envelope:
//!
//! ```json
//! {"v":1,"seq":0,"type":"hello","data":{ ... }}
//! ```
//!
//! | field  | meaning |
//! |--------|---------|
//! | `v`    | protocol **major** version ([`PROTOCOL_MAJOR`]). A reader refuses a major it does not know. |
//! | `seq`  | 0-based sequence number, +1 per line. Lets a reader resume a dropped log stream without loss or duplication. |
//! | `type` | event type, one of the table below. A reader ignores types it does not know (same major). |
//! | `data` | the event's payload; unknown fields are ignored by readers. |
//!
//! ## Event types
//!
//! | `type`           | payload | when |
//! |------------------|---------|------|
//! | `hello`          | [`Hello`]: probe version, protocol minor, netns id, uid, capabilities | first line, always |
//! | `check_started`  | [`CheckStarted`] | a check begins |
//! | `evidence`       | [`Evidence`], tagged by `kind` | zero or more per check |
//! | `skipped`        | [`Skipped`]: check, reason, missing capability | a check that cannot run under the granted privileges or plan |
//! | `pcap_chunk`     | [`PcapChunk`]: base64 of a piece of a pcap file | capture check, in order |
//! | `progress`       | [`Progress`]: attempts done, planned, failed | while repeated rounds run (minor 2), for a live display |
//! | `check_finished` | [`CheckFinished`]: status and duration | a check ends (also after a deadline) |
//! | `done`           | [`Done`]: totals and whether the deadline cut the run | last line, always (unless the probe was killed) |
//!
//! A stream that ends without `done` means the probe stopped early (killed, OOM, node lost); the
//! client says so in its verdict.
//!
//! ## Versioning
//!
//! Adding an event type, an evidence kind, an optional field or an enum value is a **minor**
//! change ([`PROTOCOL_MINOR`]); readers of the same major cope, and this is how:
//!
//! - an unknown event type or evidence kind decodes to [`Decoded::Unknown`] (the reader counts
//!   it and says so in the verdict);
//! - an unknown field is ignored;
//! - every fixed-value field (a check name, an outcome, a state, a record type...) is an
//!   [`Open`] value: an unknown value decodes to `Open::Unknown(text)` and the line is kept.
//!
//! Renaming or removing anything, or changing a field's meaning, is a **major** change.
//!
//! ## The check registry
//!
//! Every check is described once, in the table of `registry.rs`: its name, the evidence kinds
//! it emits, and its properties ([`CheckInfo`]: layer, default, privilege, observer, traffic).
//! Readers ask for evidence by type through [`EvidenceType`].
//!
//! Minor versions: 1 added `role` (the target's role, echoed from the plan) to `route`, `tcp`
//! and `mtu` evidence. 2 added the plan's `rounds` (repeated connects: `repeat`, `for_ms`,
//! `rate`, `sample_cap`) and the `tcp_rounds` evidence ([`TcpRoundsEvidence`]: per address,
//! `attempts`, `outcomes` counts, `latency_ms` {`p50`,`p90`,`p99`,`max`} of the successes,
//! `first_ms`/`last_ms`, bounded `failures` and `samples` ({`round`, `offset_ms`, `outcome`,
//! `latency_ms`, `local_port`}) with `failures_dropped`/`samples_dropped`, and `stopped_early` when the deadline ended
//! the rounds); the `dns_rounds` evidence ([`DnsRoundsEvidence`]: per name, lookups made
//! the way an application's resolver makes them: `mode`, `outcomes`, `rcodes`, replies `lost`
//! per record type, `stalls` of at least the resolver's timeout, bounded samples); the
//! `Conntrack.insert_failed`, `Conntrack.drop`, `Conntrack.early_drop` counters. 3 added
//! `icmp` to `tcp` evidence and to `tcp_rounds` samples ([`ConnectIcmp`]: the ICMP error
//! that ended the connect, from the socket's error queue: `family` (`inet` for ICMP, `inet6`
//! for ICMPv6), `icmp_type`, `code`, `from` (the sender), `meaning` ([`IcmpMeaning`], e.g.
//! `admin_prohibited`; `icmp_T_C` when unnamed)); a `refused` connect without `icmp` was a
//! RST, with `icmp` an ICMP port unreachable. And `matched` to the `no_route` outcome of
//! `route` evidence ([`RefusedBy`]: `rule_priority`, `rule` in `ip rule` spelling, and when
//! the rule looked up a table, `table` and the refusing `route` (`prohibit 10.9.0.0/24`);
//! `unevaluated` lists earlier rules whose selectors the walk could not evaluate). And the
//! plan's `tunnel` ([`TunnelPlan`]: `port`, `token`, `linger_ms`): the same lines, from `seq`
//! 0, served to one peer on `127.0.0.1:port` that first sends the token and a newline. An older
//! probe ignores the field and the client reads the log as before. 4 added both ends
//! ([`ends`]): the plan's `peer` ([`PeerPlan`]: `sources`, `ports`) and `control`
//! ([`ControlPlan`]: `via` `stdin`/`tunnel`, `hold_ms`), the events `armed` and `released`,
//! the target role `source`, the capture stop `stopped` (the client's `stop`), and per-flow
//! packet `marks` in capture evidence ([`PacketMark`]: `at_us`, `from`, `flags` in tcpdump
//! spelling, `len`, `interface`, `direction`) with `marks_dropped`; the mtu plan's `variant`, and the capture plan's `linger_ms`.
//! 5 added the application layer: the `app` check (layer `application`), the plan's `app`
//! ([`AppPlan`]: `tls` {`server_name`, `alpn`}, `http` {`path`, `host`,
//! `max_response_bytes`}, `timeout_ms`), and the `tls` ([`TlsEvidence`]: `outcome`, `reached`,
//! `timing`, `version`, `cipher_suite`, `alpn`, `alert`, the `chain` as sent, `name_covered`,
//! `verification`, `plaintext_reply`) and `http` ([`HttpEvidence`]: `outcome`, `status`,
//! `server`, `location`, `first_byte_ms`, `total_ms`, `bytes_read`, `truncated`, `body_start`
//! of an error page) evidence,
//! one per target address. An older probe skips the unknown check, saying so.
//! 6 added the node view: `node_nat` on `tcp` evidence ([`NodeNat`]: `state`
//! ([`NatState`]: `translated`, `not_translated`, `no_entry`, `unavailable`), the `endpoint` a
//! DNAT chose, the `reason` a table could not be read), the node's conntrack entry for a
//! connect to a ClusterIP; and the `node_path` check and evidence ([`NodePathEvidence`]:
//! `overlays` {`name`, `kind`, `mtu`, `up`}, the `underlay` {`name`, `mtu`}, `routes`
//! {`target`, `address`, `dev`, `dev_kind`, `gateway`, `via_default`, `error`}, `rp_filter`
//! {`dev`, `value`}, `conntrack` (the node's, as [`ConntrackEvidence`]), `counters` (the node's, sampled before
//! and after the traffic, as [`CountersEvidence`]), `errors`), read in the node's namespace; and
//! the counters `TcpExt.IPReversePathFilter` (rp_filter drops) and `Ip.ForwDatagrams`.
//!
//! Golden fixtures of every event live in `protocol/tests/fixtures/`; the contract test checks
//! that they decode, re-encode identically, and that unknown types and fields are tolerated.

pub mod ends;
pub mod envelope;
pub mod evidence;
mod open;
pub mod plan;
mod registry;
mod sysctl;
mod values;

pub use ends::*;
pub use envelope::{
    decode_line, encode_line, CheckFinished, CheckStarted, CheckStatus, DecodeError, Decoded, Done,
    Envelope, Event, Hello, PcapChunk, Progress, Skipped,
};
pub use evidence::*;
pub use open::{Open, Spelled, UnknownValue};
pub use plan::*;
pub use registry::{CheckInfo, CheckKind, Layer};
pub use sysctl::{ConfScope, Setting, Sysctl};
pub use values::*;

/// Protocol major version. Readers refuse any other major.
pub const PROTOCOL_MAJOR: u32 = 1;
/// Protocol minor version: bumped for backwards-compatible additions.
pub const PROTOCOL_MINOR: u32 = 6;
