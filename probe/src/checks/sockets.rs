//! Check `sockets`: the namespace's TCP socket table from sock_diag (`ss -tan` equivalent, IPv4
//! and IPv6, every state): counts per state in `ss` spelling, TIME-WAIT against
//! net.ipv4.ip_local_port_range, the destination with the most TIME-WAIT, CLOSE-WAIT grouped
//! by peer, SYN-SENT toward the plan's targets, and listeners with their accept queues.
//! Needs no privileges (sock_diag dumps of the own namespace are unprivileged).
//!
//! Peers are grouped as the operator would look for them: an outgoing connection by the
//! remote `ip:port` (the service it talks to); a connection accepted by one of our listeners
//! by the remote address with port 0, because every client comes from its own ephemeral port.
//! IPv4-mapped IPv6 addresses are reported as IPv4.

mod dump;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use protocol::{Evidence, Listener, Open, PeerCount, SocketState, SocketsEvidence};

use super::Outcome;
use crate::context::Ctx;
use dump::{dump_tcp, TcpSocket};

const TCP_SYN_SENT: u8 = 2;
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LISTEN: u8 = 10;

const PORT_RANGE_SYSCTL: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// How long the table waits for target names to resolve (for SYN-SENT matching).
const RESOLVE_WAIT: Duration = Duration::from_secs(2);
/// Time kept back from the run's deadline to emit the evidence.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    // Dump while the targets resolve (a name may need a DNS round trip).
    let own = ctx.plan.tunnel.as_ref().map(|t| t.port);
    let table = tokio::task::spawn_blocking(move || read_table(own));
    // A target name that does not resolve promptly (DNS down: the dns check reports it) must
    // not hold back the socket table; match SYN-SENT against the literal targets then.
    let wait = RESOLVE_WAIT.min(ctx.remaining().saturating_sub(DEADLINE_MARGIN));
    let targets = match tokio::time::timeout(wait, target_addresses(&ctx)).await {
        Ok(addresses) => addresses,
        Err(_) => literal_target_addresses(&ctx),
    };
    let table = match tokio::time::timeout(ctx.remaining(), table).await {
        Ok(Ok(Ok(table))) => table,
        Ok(Ok(Err(e))) => return Outcome::Failed(e.to_string()),
        Ok(Err(e)) => return Outcome::Failed(format!("socket dump task failed: {e}")),
        Err(_) => {
            return Outcome::Failed("the run's deadline passed during the socket dump".into())
        }
    };
    let top = usize::try_from(ctx.plan.sockets_top).unwrap_or(usize::MAX);
    let peer_ports = crate::peer::ports(&ctx.plan);
    ctx.emit(Evidence::Sockets(table.evidence(&targets, peer_ports, top)));
    Outcome::Completed
}

/// `ip:port` per target (port 0 for a target without a port: any port matches). Targets
/// that do not resolve are left out; the dns and tcp checks report them.
async fn target_addresses(ctx: &Ctx) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for target in &ctx.plan.targets {
        if let Ok(ips) = ctx.resolve_target(target).await {
            for ip in ips {
                out.push(SocketAddr::new(ip.to_canonical(), target.port.unwrap_or(0)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The targets given as IP literals (no lookup needed).
fn literal_target_addresses(ctx: &Ctx) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = ctx
        .plan
        .targets
        .iter()
        .filter_map(|t| {
            let ip: IpAddr = t.host.parse().ok()?;
            Some(SocketAddr::new(ip.to_canonical(), t.port.unwrap_or(0)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The table, without the probe's own tunnel (its listener on 127.0.0.1:`own_port` and the
/// port-forward's connection to it): they are not the pod's.
fn read_table(own_port: Option<u16>) -> Result<SocketTable, dump::DumpError> {
    let mut table = SocketTable::default();
    dump_tcp(|s| {
        if !is_own(s, own_port) {
            table.add(s)
        }
    })?;
    table.local_port_range = std::fs::read_to_string(PORT_RANGE_SYSCTL)
        .ok()
        .and_then(|text| parse_port_range(&text));
    Ok(table)
}

fn is_own(s: &TcpSocket, own_port: Option<u16>) -> bool {
    let own = |a: SocketAddr| a.ip().to_canonical().is_loopback() && Some(a.port()) == own_port;
    own(s.local) || own(s.remote)
}

/// `32768\t60999` -> (32768, 60999).
fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    match (parts.next(), parts.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// A socket kept for grouping: who the peer is and which local port it uses.
#[derive(Debug, Clone, Copy)]
struct Conn {
    local_port: u16,
    remote: SocketAddr,
}

/// What the dump keeps: counts for every socket, details only for the states that are
/// grouped afterwards (so a table of 100,000 established sockets costs no memory).
#[derive(Debug, Default)]
struct SocketTable {
    /// Indexed by kernel state number (0..=15; anything above is counted in 15's bucket
    /// name via `state_name`).
    counts: [u64; 16],
    unknown_states: BTreeMap<u8, u64>,
    total: u64,
    listeners: Vec<Listener>,
    time_wait: Vec<Conn>,
    close_wait: Vec<Conn>,
    syn_sent: Vec<Conn>,
    local_port_range: Option<(u16, u16)>,
}

impl SocketTable {
    fn add(&mut self, s: &TcpSocket) {
        self.total += 1;
        match self.counts.get_mut(usize::from(s.state)) {
            Some(c) => *c += 1,
            None => *self.unknown_states.entry(s.state).or_default() += 1,
        }
        let conn = || Conn {
            local_port: s.local.port(),
            remote: canonical(s.remote),
        };
        match s.state {
            TCP_LISTEN => self.listeners.push(Listener {
                local: canonical(s.local),
                recv_q: s.recv_q,
                send_q: s.send_q,
            }),
            TCP_TIME_WAIT => self.time_wait.push(conn()),
            TCP_CLOSE_WAIT => self.close_wait.push(conn()),
            TCP_SYN_SENT => self.syn_sent.push(conn()),
            _ => {}
        }
    }

    /// `ports`: local ports whose listeners come first (a peer's), besides the targets'.
    fn evidence(&self, targets: &[SocketAddr], ports: &[u16], top: usize) -> SocketsEvidence {
        let mut states = BTreeMap::new();
        for (state, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                // The array has 16 entries, so the index fits in a u8.
                *states.entry(state_name(state as u8)).or_insert(0) += count;
            }
        }
        for (&state, &count) in &self.unknown_states {
            *states.entry(state_name(state)).or_insert(0) += count;
        }
        let listen_ports: HashSet<u16> = self.listeners.iter().map(|l| l.local.port()).collect();
        let time_wait_count = self.counts[usize::from(TCP_TIME_WAIT)];
        let time_wait_ratio = self.local_port_range.map(|(lo, hi)| {
            let size = u64::from(hi - lo) + 1;
            time_wait_count as f64 / size as f64
        });
        // Ports run out per destination, so only outgoing TIME-WAIT counts here.
        let outgoing_time_wait = self
            .time_wait
            .iter()
            .filter(|c| !listen_ports.contains(&c.local_port))
            .map(|c| c.remote);
        let time_wait_top_peer = group(outgoing_time_wait).into_iter().next();
        let close_wait = self.close_wait.iter().map(|c| peer_key(c, &listen_ports));
        let mut close_wait_by_peer = group(close_wait);
        close_wait_by_peer.truncate(top);
        SocketsEvidence {
            states,
            total: self.total,
            local_port_range: self.local_port_range,
            time_wait_ratio,
            time_wait_top_peer,
            close_wait_by_peer,
            syn_sent_to_targets: syn_sent_to(targets, &self.syn_sent),
            listeners: top_listeners(&self.listeners, targets, ports, top),
        }
    }
}

/// The peer a connection is grouped under (see the module docs).
fn peer_key(c: &Conn, listen_ports: &HashSet<u16>) -> SocketAddr {
    if listen_ports.contains(&c.local_port) {
        SocketAddr::new(c.remote.ip(), 0)
    } else {
        c.remote
    }
}

/// Counts per peer, largest first, ties by address (a stable order for readers and tests).
fn group(peers: impl Iterator<Item = SocketAddr>) -> Vec<PeerCount> {
    let mut counts: HashMap<SocketAddr, u64> = HashMap::new();
    for peer in peers {
        *counts.entry(peer).or_default() += 1;
    }
    let mut out: Vec<PeerCount> = counts
        .into_iter()
        .map(|(peer, count)| PeerCount { peer, count })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.peer.cmp(&b.peer)));
    out
}

/// SYN-SENT sockets per target address (port 0 in a target matches any port); targets with
/// none are left out.
fn syn_sent_to(targets: &[SocketAddr], syn_sent: &[Conn]) -> Vec<PeerCount> {
    targets
        .iter()
        .filter_map(|t| {
            let count = syn_sent
                .iter()
                .filter(|c| {
                    c.remote.ip() == t.ip() && (t.port() == 0 || c.remote.port() == t.port())
                })
                .count() as u64;
            (count > 0).then_some(PeerCount { peer: *t, count })
        })
        .collect()
}

/// The `top` listeners worth showing: fullest accept queue first, then those on a target's
/// port or one of `ports` (a listener bound to loopback there explains a refused connect),
/// then by address.
fn top_listeners(
    listeners: &[Listener],
    targets: &[SocketAddr],
    ports: &[u16],
    top: usize,
) -> Vec<Listener> {
    let target_ports: HashSet<u16> = targets
        .iter()
        .map(|t| t.port())
        .chain(ports.iter().copied())
        .collect();
    let fill = |l: &Listener| -> f64 {
        if l.send_q == 0 {
            f64::from(l.recv_q)
        } else {
            f64::from(l.recv_q) / f64::from(l.send_q)
        }
    };
    let mut out = listeners.to_vec();
    out.sort_by(|a, b| {
        fill(b)
            .total_cmp(&fill(a))
            .then(
                target_ports
                    .contains(&b.local.port())
                    .cmp(&target_ports.contains(&a.local.port())),
            )
            .then(a.local.cmp(&b.local))
    });
    out.truncate(top);
    out
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as IPv4, so one peer is one key.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::to_canonical(&addr.ip()), addr.port())
}

/// The kernel state number in `ss` spelling; a number this version does not name is kept as
/// `UNKNOWN-n`.
fn state_name(state: u8) -> Open<SocketState> {
    match SocketState::from_kernel(state) {
        Some(s) => Open::Known(s),
        None => Open::Unknown(format!("UNKNOWN-{state}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn sock(state: u8, local: &str, remote: &str) -> TcpSocket {
        TcpSocket {
            state,
            local: sa(local),
            remote: sa(remote),
            recv_q: 0,
            send_q: 0,
        }
    }

    #[test]
    fn port_range_parses_the_proc_format() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("garbage"), None);
    }

    #[test]
    fn states_use_ss_spelling_and_unknown_numbers_are_named() {
        assert_eq!(state_name(1).as_str(), "ESTAB");
        assert_eq!(state_name(7).as_str(), "UNCONN");
        assert_eq!(state_name(12), SocketState::SynRecv);
        assert_eq!(state_name(200).as_str(), "UNKNOWN-200");
        let mut t = SocketTable::default();
        t.add(&sock(1, "10.199.0.1:40000", "10.199.0.2:80"));
        t.add(&sock(200, "10.199.0.1:40001", "10.199.0.2:80"));
        let e = t.evidence(&[], &[], 10);
        assert_eq!(e.total, 2);
        assert_eq!(e.states.get(&SocketState::Established.into()), Some(&1));
        assert_eq!(e.states.get(&Open::Unknown("UNKNOWN-200".into())), Some(&1));
    }

    #[test]
    fn close_wait_groups_outgoing_by_service_and_accepted_by_client_address() {
        let mut t = SocketTable::default();
        t.add(&TcpSocket {
            recv_q: 2,
            send_q: 128,
            ..sock(TCP_LISTEN, "0.0.0.0:8080", "0.0.0.0:0")
        });
        for p in 0..3 {
            t.add(&sock(
                TCP_CLOSE_WAIT,
                &format!("10.199.0.1:{}", 40000 + p),
                "10.199.0.9:443",
            ));
        }
        // v4-mapped on a dual-stack socket is the same peer.
        t.add(&sock(
            TCP_CLOSE_WAIT,
            "[::ffff:10.199.0.1]:40100",
            "[::ffff:10.199.0.9]:443",
        ));
        for p in 0..2 {
            t.add(&sock(
                TCP_CLOSE_WAIT,
                "10.199.0.1:8080",
                &format!("10.199.0.7:{}", 50000 + p),
            ));
        }
        t.add(&sock(TCP_CLOSE_WAIT, "10.199.0.1:41000", "10.199.0.8:5432"));
        let e = t.evidence(&[], &[], 2);
        assert_eq!(
            e.close_wait_by_peer,
            vec![
                PeerCount {
                    peer: sa("10.199.0.9:443"),
                    count: 4
                },
                PeerCount {
                    peer: sa("10.199.0.7:0"),
                    count: 2
                },
            ]
        );
        assert_eq!(e.states.get(&SocketState::CloseWait.into()), Some(&7));
        assert_eq!(
            e.listeners,
            vec![Listener {
                local: sa("0.0.0.0:8080"),
                recv_q: 2,
                send_q: 128
            }]
        );
    }

    #[test]
    fn time_wait_ratio_and_top_destination_ignore_server_side_time_wait() {
        let mut t = SocketTable {
            local_port_range: Some((40000, 40099)),
            ..Default::default()
        };
        t.add(&sock(TCP_LISTEN, "0.0.0.0:80", "0.0.0.0:0"));
        for p in 0..5 {
            t.add(&sock(
                TCP_TIME_WAIT,
                &format!("10.199.0.1:{}", 40000 + p),
                "10.199.0.2:443",
            ));
        }
        for p in 0..20 {
            t.add(&sock(
                TCP_TIME_WAIT,
                "10.199.0.1:80",
                &format!("10.199.0.3:{}", 50000 + p),
            ));
        }
        let e = t.evidence(&[], &[], 10);
        assert_eq!(e.time_wait_ratio, Some(0.25));
        assert_eq!(
            e.time_wait_top_peer,
            Some(PeerCount {
                peer: sa("10.199.0.2:443"),
                count: 5
            })
        );
    }

    #[test]
    fn syn_sent_counts_only_toward_targets() {
        let mut t = SocketTable::default();
        t.add(&sock(TCP_SYN_SENT, "10.199.0.1:40000", "10.199.0.2:443"));
        t.add(&sock(TCP_SYN_SENT, "10.199.0.1:40001", "10.199.0.2:443"));
        t.add(&sock(TCP_SYN_SENT, "10.199.0.1:40002", "10.199.0.2:80"));
        t.add(&sock(TCP_SYN_SENT, "10.199.0.1:40003", "10.199.0.5:80"));
        let targets = [sa("10.199.0.2:443"), sa("10.199.0.5:0"), sa("10.199.0.6:1")];
        let e = t.evidence(&targets, &[], 10);
        assert_eq!(
            e.syn_sent_to_targets,
            vec![
                PeerCount {
                    peer: sa("10.199.0.2:443"),
                    count: 2
                },
                PeerCount {
                    peer: sa("10.199.0.5:0"),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn listeners_fullest_first_then_target_ports_then_address() {
        let l = |local: &str, recv_q, send_q| Listener {
            local: sa(local),
            recv_q,
            send_q,
        };
        let all = [
            l("0.0.0.0:22", 0, 128),
            l("127.0.0.1:8080", 0, 128),
            l("0.0.0.0:9000", 3, 2),
            l("0.0.0.0:7000", 1, 128),
        ];
        let got = top_listeners(&all, &[sa("10.199.0.2:8080")], &[], 3);
        assert_eq!(got, vec![all[2].clone(), all[3].clone(), all[1].clone()]);
        // A peer's port counts as a target's: the loopback listener on it is shown.
        let got = top_listeners(&all, &[sa("10.199.1.2:0")], &[8080], 3);
        assert_eq!(got, vec![all[2].clone(), all[3].clone(), all[1].clone()]);
        let got = top_listeners(&all, &[sa("10.199.1.2:0")], &[], 3);
        assert_eq!(got, vec![all[2].clone(), all[3].clone(), all[0].clone()]);
    }
}
