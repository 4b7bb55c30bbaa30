//! Check `counters`: the kernel's SNMP/netstat counters for this namespace (/proc/net/snmp,
//! /proc/net/netstat, /proc/net/snmp6, /proc/net/stat/nf_conntrack), sampled when the run starts and again when the traffic
//! checks are done, reported as value and delta for the counters that explain failures
//! (retransmissions, listen-queue overflows, resets, buffer errors...). It is an observer:
//! the runner starts it before the traffic checks. Needs no privileges.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use protocol::{Counter, CounterValue, CountersEvidence, Evidence, Open, Spelled};
use tokio::time::Instant;

use super::Outcome;
use crate::context::Ctx;

/// Leave this much of the deadline for the second sample and the emit.
const END_MARGIN: Duration = Duration::from_millis(200);

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let t0 = Instant::now();
    let start = match sample().await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    // Wait for the traffic checks, but never so long that the end sample misses the deadline.
    let _ = tokio::time::timeout(
        ctx.remaining().saturating_sub(END_MARGIN),
        ctx.wait_traffic_done(),
    )
    .await;
    let end = match sample().await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    let interval = t0.elapsed();
    ctx.emit(Evidence::Counters(CountersEvidence {
        interval_ms: (interval.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        counters: deltas(&start, &end),
    }));
    Outcome::Completed
}

/// All counters of the namespace, `Group.Name` -> value.
async fn sample() -> Result<HashMap<String, u64>, String> {
    tokio::task::spawn_blocking(|| sample_at(PROCESS_NET))
        .await
        .map_err(|e| format!("sampling counters: {e}"))?
}

/// The process's network files (its namespace, which every check thread shares).
const PROCESS_NET: &str = "/proc/net";
/// The calling thread's (a thread that entered another namespace: the node's).
pub const THREAD_NET: &str = "/proc/thread-self/net";

/// All counters under `net` (`/proc/net` or `/proc/thread-self/net`), `Group.Name` -> value.
/// Blocking.
pub fn sample_at(net: &str) -> Result<HashMap<String, u64>, String> {
    let mut all = HashMap::new();
    let snmp = std::fs::read_to_string(format!("{net}/snmp"))
        .map_err(|e| format!("cannot read {net}/snmp: {e}"))?;
    all.extend(parse_paired(&snmp));
    // netstat (TcpExt/IpExt) and snmp6 may be missing (old kernel, IPv6 disabled).
    if let Ok(netstat) = std::fs::read_to_string(format!("{net}/netstat")) {
        all.extend(parse_paired(&netstat));
    }
    if let Ok(snmp6) = std::fs::read_to_string(format!("{net}/snmp6")) {
        all.extend(parse_snmp6(&snmp6));
    }
    // Absent when conntrack is not loaded here: then these counters are absent from the
    // evidence, never zero.
    if let Ok(stat) = std::fs::read_to_string(format!("{net}/stat/nf_conntrack")) {
        all.extend(
            super::conntrack::sum_stat_columns(&stat)
                .into_iter()
                .map(|(column, sum)| (format!("Conntrack.{column}"), sum)),
        );
    }
    Ok(all)
}

/// Value at the end and increase over the interval for each reported counter the kernel has.
pub fn deltas(
    start: &HashMap<String, u64>,
    end: &HashMap<String, u64>,
) -> BTreeMap<Open<Counter>, CounterValue> {
    // The counters that matter for diagnosis are exactly those the protocol names, spelled
    // `Group.Name` as nstat prints them (snmp6 names without the group's own prefix).
    Counter::ALL
        .iter()
        .filter_map(|counter| {
            let name = counter.as_str();
            let value = *end.get(name)?;
            let before = start.get(name).copied().unwrap_or(value);
            Some((
                Open::Known(*counter),
                CounterValue {
                    value,
                    delta: value.saturating_sub(before),
                },
            ))
        })
        .collect()
}

/// /proc/net/snmp and /proc/net/netstat: for each group a header line of names and a value
/// line, both starting with `Group:`. Negative values (Tcp MaxConn = -1) are skipped.
pub fn parse_paired(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [header, values] = pair else { continue };
        let (Some((group, names)), Some((group2, nums))) =
            (header.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if group != group2 {
            continue;
        }
        for (name, value) in names.split_whitespace().zip(nums.split_whitespace()) {
            if let Ok(v) = value.parse::<u64>() {
                out.insert(format!("{group}.{name}"), v);
            }
        }
    }
    out
}

/// /proc/net/snmp6: one `Ip6InReceives   123` per line; split the group prefix off.
pub fn parse_snmp6(text: &str) -> HashMap<String, u64> {
    const GROUPS: &[&str] = &["Ip6", "Icmp6", "UdpLite6", "Udp6"];
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let (key, value) = (it.next()?, it.next()?.parse::<u64>().ok()?);
            let group = GROUPS.iter().find(|g| key.starts_with(**g))?;
            Some((format!("{group}.{}", &key[group.len()..]), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\nIp: 2 64 100\n\
Tcp: RtoAlgorithm MaxConn ActiveOpens RetransSegs\nTcp: 1 -1 5 7\n";

    #[test]
    fn parses_pairs_and_skips_negative() {
        let m = parse_paired(SNMP);
        assert_eq!(m["Ip.InReceives"], 100);
        assert_eq!(m["Tcp.ActiveOpens"], 5);
        assert_eq!(m["Tcp.RetransSegs"], 7);
        assert!(!m.contains_key("Tcp.MaxConn"));
    }

    #[test]
    fn parses_snmp6() {
        let m = parse_snmp6(
            "Ip6InReceives                   	12\nUdp6RcvbufErrors 3\nUdpLite6InErrors 1\n",
        );
        assert_eq!(m["Ip6.InReceives"], 12);
        assert_eq!(m["Udp6.RcvbufErrors"], 3);
        assert_eq!(m["UdpLite6.InErrors"], 1);
    }

    #[test]
    fn deltas_of_reported_counters() {
        let start = HashMap::from([
            ("Tcp.RetransSegs".to_string(), 7),
            ("Ip.InReceives".to_string(), 1),
        ]);
        let end = HashMap::from([
            ("Tcp.RetransSegs".to_string(), 10),
            ("Ip.InReceives".to_string(), 9),
            ("TcpExt.ListenOverflows".to_string(), 2),
        ]);
        let d = deltas(&start, &end);
        assert_eq!(
            d[&Counter::TcpRetransSegs.into()],
            CounterValue {
                value: 10,
                delta: 3
            }
        );
        // Not in the start sample: no delta can be claimed.
        assert_eq!(
            d[&Counter::ListenOverflows.into()],
            CounterValue { value: 2, delta: 0 }
        );
        assert!(!d.contains_key(&Open::Unknown("Ip.InReceives".into())));
    }
}
