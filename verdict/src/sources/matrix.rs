//! The matrix of a many-sources run: one row per source, one column per target the plan
//! named (each DNS name looked up, each address connected to), and in each cell how that
//! target fared from that source, read from the source's own evidence.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use protocol::{
    DnsLookupEvidence, DnsLookupOutcome, DnsOutcome, DnsRoundsEvidence, HttpEvidence, HttpOutcome,
    MtuEvidence, Open, Rcode, TcpEvidence, TcpOutcome, TcpRoundsEvidence, TlsEvidence, TlsOutcome,
};
use serde::Serialize;

use crate::facts::Facts;
use crate::model::Status;

/// Sources against targets. Rows are sorted by node, then pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

/// What a column is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A name the source's resolver looked up.
    Dns,
    /// A TCP connect to an address (a ClusterIP, an endpoint, a pod).
    Tcp,
}

/// One target, as every source's evidence names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub kind: TargetKind,
    /// The name looked up (`dns`), or the address connected to, `ip:port` (`tcp`; the plan's
    /// label for a target that did not resolve).
    pub target: String,
    /// The plan's label when it says more than the address (`svc/web:80`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Column {
    /// `dns web`, `svc/web:80 (10.96.0.10:80)`, `10.244.1.5:8080`.
    pub fn name(&self) -> String {
        match (self.kind, &self.label) {
            (TargetKind::Dns, _) => format!("dns {}", self.target),
            (TargetKind::Tcp, Some(l)) => format!("{l} ({})", self.target),
            (TargetKind::Tcp, None) => self.target.clone(),
        }
    }
}

/// One source's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The session id (`src-1`).
    pub source: String,
    pub pod: String,
    pub node: Option<String>,
    /// Its own verdict's status; None when its probe did not run.
    pub status: Option<Status>,
    /// One per column, in column order.
    pub cells: Vec<Cell>,
}

/// How one target fared from one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    Ok,
    /// Connects worked some of the time (`--repeat`, `--for`).
    Intermittent,
    /// The connect worked, large packets toward it vanish.
    MtuBlackhole,
    /// The connect worked, the TLS handshake did not (`--tls`, https://).
    TlsFailed,
    /// The connect worked, the HTTP request got an error status (400 and above).
    HttpError,
    /// The connect worked, the HTTP request got no status line.
    HttpNoAnswer,
    /// A RST.
    Refused,
    /// No answer before the connect timeout.
    Timeout,
    /// An ICMP error (or a local refusal) ended the connect.
    Rejected,
    /// No route, or the next hop did not answer.
    Unreachable,
    /// The target's name did not resolve, so nothing was connected.
    Unresolved,
    /// Any other connect error (no local port, an errno this version does not name).
    Error,
    /// The name does not exist (NXDOMAIN/NODATA for every candidate).
    Nxdomain,
    /// A nameserver answered SERVFAIL, REFUSED or NOTIMP.
    Servfail,
    /// No nameserver answered.
    DnsNoAnswer,
    /// The lookup failed some other way (a socket error, the deadline).
    DnsFailed,
    /// Lookups answered some of the time (`--repeat`).
    DnsIntermittent,
    /// This source has no evidence about this target (its probe did not run, or stopped
    /// before it).
    NotRun,
}

impl Cell {
    pub fn as_str(self) -> &'static str {
        match self {
            Cell::Ok => "ok",
            Cell::Intermittent => "intermittent",
            Cell::MtuBlackhole => "MTU blackhole",
            Cell::TlsFailed => "TLS failed",
            Cell::HttpError => "HTTP error status",
            Cell::HttpNoAnswer => "no HTTP answer",
            Cell::Refused => "refused",
            Cell::Timeout => "timeout",
            Cell::Rejected => "rejected",
            Cell::Unreachable => "unreachable",
            Cell::Unresolved => "unresolved",
            Cell::Error => "error",
            Cell::Nxdomain => "NXDOMAIN",
            Cell::Servfail => "SERVFAIL",
            Cell::DnsNoAnswer => "no DNS answer",
            Cell::DnsFailed => "DNS failed",
            Cell::DnsIntermittent => "DNS intermittent",
            Cell::NotRun => "not run",
        }
    }

    /// A cell that says something is wrong (not run is a gap, not a failure).
    pub fn failed(self) -> bool {
        !matches!(self, Cell::Ok | Cell::NotRun)
    }
}

/// The columns every source's evidence names, in the order first seen: names looked up
/// first, then addresses connected to.
pub(crate) fn columns(all: &[&Facts]) -> Vec<Column> {
    let mut dns: Vec<Column> = Vec::new();
    let mut tcp: Vec<Column> = Vec::new();
    let add = |list: &mut Vec<Column>, c: Column| {
        if !list
            .iter()
            .any(|x| x.kind == c.kind && x.target == c.target)
        {
            list.push(c);
        }
    };
    for f in all {
        for l in f.all::<DnsLookupEvidence>() {
            add(&mut dns, dns_column(&l.name));
        }
        for d in f.all::<DnsRoundsEvidence>() {
            add(&mut dns, dns_column(&d.name));
        }
        for t in f.all::<TcpEvidence>() {
            add(&mut tcp, tcp_column(&t.target, t.address));
        }
        for t in f.all::<TcpRoundsEvidence>() {
            add(&mut tcp, tcp_column(&t.target, t.address));
        }
    }
    dns.extend(tcp);
    dns
}

fn dns_column(name: &str) -> Column {
    Column {
        kind: TargetKind::Dns,
        target: name.to_string(),
        label: None,
    }
}

fn tcp_column(label: &str, address: SocketAddr) -> Column {
    if address.ip().is_unspecified() {
        // Unresolved: the address says nothing, the label is the target.
        return Column {
            kind: TargetKind::Tcp,
            target: label.to_string(),
            label: None,
        };
    }
    let target = address.to_string();
    Column {
        kind: TargetKind::Tcp,
        label: (label != target).then(|| label.to_string()),
        target,
    }
}

/// The cells of one source that ran.
pub(crate) fn cells(f: &Facts, columns: &[Column]) -> Vec<Cell> {
    columns.iter().map(|c| cell(f, c)).collect()
}

fn cell(f: &Facts, c: &Column) -> Cell {
    match c.kind {
        TargetKind::Dns => dns_cell(f, &c.target),
        TargetKind::Tcp => tcp_cell(f, c),
    }
}

fn dns_cell(f: &Facts, name: &str) -> Cell {
    let lookups: Vec<&DnsLookupEvidence> = f
        .all::<DnsLookupEvidence>()
        .into_iter()
        .filter(|l| l.name == name)
        .collect();
    let rounds = f
        .all::<DnsRoundsEvidence>()
        .into_iter()
        .find(|d| d.name == name);
    // A lookup that failed outright outranks repeated ones that answered.
    let mut worst = lookups.iter().map(|l| lookup_cell(l)).max();
    if let Some(d) = rounds {
        worst = worst.max(Some(rounds_dns_cell(d)));
    }
    worst.unwrap_or(Cell::NotRun)
}

fn lookup_cell(l: &DnsLookupEvidence) -> Cell {
    if l.answered_by.is_some() || !l.addresses.is_empty() {
        return Cell::Ok;
    }
    let rcode_is = |codes: &[Rcode]| {
        l.queries.iter().any(|q| match &q.outcome {
            DnsOutcome::Response { rcode, .. } => rcode.is_any(codes),
            _ => false,
        })
    };
    if rcode_is(&[Rcode::ServFail, Rcode::Refused, Rcode::NotImp]) {
        Cell::Servfail
    } else if rcode_is(&[Rcode::NxDomain, Rcode::NoError]) {
        Cell::Nxdomain
    } else if !l.queries.is_empty()
        && l.queries
            .iter()
            .all(|q| matches!(q.outcome, DnsOutcome::Timeout))
    {
        Cell::DnsNoAnswer
    } else {
        Cell::DnsFailed
    }
}

fn rounds_dns_cell(d: &DnsRoundsEvidence) -> Cell {
    let count = |o: DnsLookupOutcome| d.outcomes.get(&Open::Known(o)).copied().unwrap_or(0);
    let answered = count(DnsLookupOutcome::Answered);
    let failed: u64 = d.outcomes.values().sum::<u64>() - answered;
    match (answered, failed) {
        (0, 0) => Cell::NotRun,
        (_, 0) => Cell::Ok,
        (0, _) if count(DnsLookupOutcome::Timeout) == failed => Cell::DnsNoAnswer,
        (0, _) if count(DnsLookupOutcome::NotFound) == failed => Cell::Nxdomain,
        (0, _) if count(DnsLookupOutcome::ServerFailure) == failed => Cell::Servfail,
        (0, _) => Cell::DnsFailed,
        _ => Cell::DnsIntermittent,
    }
}

fn tcp_cell(f: &Facts, c: &Column) -> Cell {
    let matches = |label: &str, address: SocketAddr| {
        let col = tcp_column(label, address);
        col.target == c.target
    };
    let mut worst = f
        .all::<TcpEvidence>()
        .into_iter()
        .filter(|t| matches(&t.target, t.address))
        .map(connect_cell)
        .max();
    if let Some(r) = f
        .all::<TcpRoundsEvidence>()
        .into_iter()
        .find(|t| matches(&t.target, t.address))
    {
        worst = worst.max(Some(rounds_tcp_cell(r)));
    }
    let Some(cell) = worst else {
        return Cell::NotRun;
    };
    // A handshake that worked says nothing about large packets: the MTU search does.
    let blackhole = f.all::<MtuEvidence>().into_iter().any(|m| {
        m.blackhole && c.target.parse::<SocketAddr>().ok().map(|a| a.ip()) == Some(m.destination)
    });
    if cell == Cell::Ok && blackhole {
        Cell::MtuBlackhole
    } else if cell == Cell::Ok {
        app_cell(f, c)
    } else {
        cell
    }
}

/// Above a connect that worked: how the TLS handshake and the HTTP request fared (the app
/// check), Ok when they did or were not asked for.
fn app_cell(f: &Facts, c: &Column) -> Cell {
    let here = |address: SocketAddr| address.to_string() == c.target;
    let tls_failed = f
        .all::<TlsEvidence>()
        .into_iter()
        .any(|t| here(t.address) && t.outcome != TlsOutcome::Ok);
    if tls_failed {
        return Cell::TlsFailed;
    }
    let http: Vec<&HttpEvidence> = f
        .all::<HttpEvidence>()
        .into_iter()
        .filter(|h| here(h.address))
        .collect();
    if http
        .iter()
        .any(|h| h.outcome == HttpOutcome::Response && h.status.is_some_and(|s| s >= 400))
    {
        Cell::HttpError
    } else if http
        .iter()
        .any(|h| h.outcome != HttpOutcome::Response && h.outcome != HttpOutcome::NoConnection)
    {
        Cell::HttpNoAnswer
    } else {
        Cell::Ok
    }
}

fn connect_cell(t: &TcpEvidence) -> Cell {
    if t.outcome != TcpOutcome::Ok && t.icmp.is_some() {
        return Cell::Rejected;
    }
    outcome_cell(&t.outcome)
}

fn outcome_cell(o: &Open<TcpOutcome>) -> Cell {
    match o.known() {
        Some(TcpOutcome::Ok) => Cell::Ok,
        Some(TcpOutcome::Refused) => Cell::Refused,
        Some(TcpOutcome::Timeout) => Cell::Timeout,
        Some(TcpOutcome::HostUnreachable | TcpOutcome::NetworkUnreachable) => Cell::Unreachable,
        Some(TcpOutcome::PermissionDenied) => Cell::Rejected,
        Some(TcpOutcome::Unresolved) => Cell::Unresolved,
        Some(TcpOutcome::AddressNotAvailable | TcpOutcome::Error) | None => Cell::Error,
    }
}

fn rounds_tcp_cell(r: &TcpRoundsEvidence) -> Cell {
    let mut failures: BTreeMap<Cell, u64> = BTreeMap::new();
    let mut ok = 0;
    for (outcome, n) in &r.outcomes {
        match outcome_cell(outcome) {
            Cell::Ok => ok += n,
            other => *failures.entry(other).or_default() += n,
        }
    }
    match (ok, failures.len()) {
        (0, 0) => Cell::NotRun,
        (_, 0) => Cell::Ok,
        (0, 1) => failures.keys().next().copied().unwrap_or(Cell::Error),
        (0, _) => Cell::Error,
        _ => Cell::Intermittent,
    }
}

/// Rows of one node whose sources fared alike (same cells, same status), for a compact
/// display: `node-b  web-2, web-5 (2 pods)  timeout: 10.96.0.10:80`.
#[derive(Debug, Clone, PartialEq)]
pub struct RowGroup<'a> {
    pub node: Option<&'a str>,
    pub pods: Vec<&'a str>,
    pub status: Option<Status>,
    pub cells: &'a [Cell],
}

/// The rows of each node with the same status and cells, as one group; groups keep the
/// order of their first row (rows are sorted by node).
pub fn groups(m: &Matrix) -> Vec<RowGroup<'_>> {
    let mut out: Vec<RowGroup> = Vec::new();
    for r in &m.rows {
        let alike = out.iter_mut().find(|g| {
            g.node == r.node.as_deref() && g.status == r.status && g.cells == r.cells.as_slice()
        });
        match alike {
            Some(g) => g.pods.push(&r.pod),
            None => out.push(RowGroup {
                node: r.node.as_deref(),
                pods: vec![&r.pod],
                status: r.status,
                cells: &r.cells,
            }),
        }
    }
    out
}

/// `timeout: svc/web:80 (10.96.0.10:80); ok: 3 others`, or `all ok` when every cell agrees.
pub fn cells_words(columns: &[Column], cells: &[Cell]) -> String {
    if let Some(first) = cells.first() {
        if cells.iter().all(|c| c == first) {
            return format!("all {}", first.as_str());
        }
    } else {
        return "no targets".into();
    }
    let mut by: Vec<(Cell, Vec<String>)> = Vec::new();
    for (c, col) in cells.iter().zip(columns) {
        match by.iter_mut().find(|(x, _)| x == c) {
            Some((_, names)) => names.push(col.name()),
            None => by.push((*c, vec![col.name()])),
        }
    }
    // Failures first, then gaps, then what worked.
    by.sort_by_key(|(c, _)| match c {
        Cell::Ok => 2,
        Cell::NotRun => 1,
        _ => 0,
    });
    by.iter()
        .map(|(c, names)| {
            if *c == Cell::Ok && names.len() > 2 {
                format!("ok: {} others", names.len())
            } else {
                format!("{}: {}", c.as_str(), crate::words::list(names, 3))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
