//! Check `conntrack`: how full the connection-tracking table is, as visible from this namespace
//! (nf_conntrack_count vs nf_conntrack_max), plus insert failures and drops from
//! /proc/net/stat/nf_conntrack when readable. When conntrack is not loaded the evidence says
//! so (`present: false`) instead of reporting zeros. Needs no privileges.

use std::collections::HashMap;
use std::sync::Arc;

use protocol::{ConntrackEvidence, Evidence};

use super::Outcome;
use crate::context::Ctx;

const COUNT: &str = "/proc/sys/net/netfilter/nf_conntrack_count";
const MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";
const STAT: &str = "/proc/net/stat/nf_conntrack";
/// The same statistics for the calling thread's namespace (`/proc/net` is the process's,
/// which a thread that entered another namespace does not share).
pub const THREAD_STAT: &str = "/proc/thread-self/net/stat/nf_conntrack";

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    match tokio::task::spawn_blocking(|| read(STAT)).await {
        Ok(evidence) => {
            ctx.emit(Evidence::Conntrack(evidence));
            Outcome::Completed
        }
        Err(e) => Outcome::Failed(format!("reading conntrack state: {e}")),
    }
}

/// The table as the calling thread's namespace sees it (/proc/sys/net answers for the
/// thread's namespace); the statistics from `stat`.
pub fn read(stat: &str) -> ConntrackEvidence {
    let number =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let stat = std::fs::read_to_string(stat).ok();
    evidence(number(COUNT), number(MAX), stat.as_deref())
}

/// Assemble the evidence from what could be read.
pub fn evidence(count: Option<u64>, max: Option<u64>, stat: Option<&str>) -> ConntrackEvidence {
    let Some(count) = count else {
        return ConntrackEvidence {
            present: false,
            count: None,
            max: None,
            fill_ratio: None,
            insert_failed: None,
            drop: None,
            early_drop: None,
            note: Some(format!(
                "connection tracking is not active in this namespace ({COUNT} is absent): \
                 nf_conntrack is not loaded or not used here"
            )),
        };
    };
    let sums = stat.map(sum_stat_columns).unwrap_or_default();
    let note = match (max, stat.is_some()) {
        (None, _) => Some(format!(
            "{MAX} is not readable here; the fill ratio is unknown"
        )),
        (_, false) => Some(format!(
            "{STAT} is not readable here; failure counters unknown"
        )),
        _ => None,
    };
    ConntrackEvidence {
        present: true,
        count: Some(count),
        max,
        fill_ratio: max.filter(|m| *m > 0).map(|m| count as f64 / m as f64),
        insert_failed: sums.get("insert_failed").copied(),
        drop: sums.get("drop").copied(),
        early_drop: sums.get("early_drop").copied(),
        note,
    }
}

/// /proc/net/stat/nf_conntrack: a header of column names, then one row of hex numbers per CPU.
/// Returns each column summed over the CPUs (meaningful for the per-CPU event counters).
pub fn sum_stat_columns(text: &str) -> HashMap<String, u64> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let columns: Vec<&str> = header.split_whitespace().collect();
    let mut sums: HashMap<String, u64> = HashMap::new();
    for line in lines {
        for (name, value) in columns.iter().zip(line.split_whitespace()) {
            if let Ok(v) = u64::from_str_radix(value, 16) {
                *sums.entry(name.to_string()).or_default() += v;
            }
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_TEXT: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
0000004a  00000000 00000000 00000000 00000010 00000000 00000000 00000000 00000000 00000002 00000001 00000000 00000000  00000000 00000000 00000000 00000000\n\
0000004a  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 0000000a 00000000 00000005 00000000  00000000 00000000 00000000 00000000\n";

    #[test]
    fn sums_over_cpus() {
        let s = sum_stat_columns(STAT_TEXT);
        assert_eq!(s["insert_failed"], 12);
        assert_eq!(s["drop"], 1);
        assert_eq!(s["early_drop"], 5);
        assert_eq!(s["invalid"], 19);
    }

    #[test]
    fn fill_ratio_and_absence() {
        let e = evidence(Some(100), Some(1000), Some(STAT_TEXT));
        assert!(e.present);
        assert_eq!(e.fill_ratio, Some(0.1));
        assert_eq!(e.insert_failed, Some(12));
        assert!(e.note.is_none());

        let absent = evidence(None, Some(1000), None);
        assert!(!absent.present);
        assert_eq!(
            (absent.count, absent.max, absent.fill_ratio),
            (None, None, None)
        );
        assert!(absent.note.unwrap().contains("not active"));

        let no_max = evidence(Some(5), None, None);
        assert!(no_max.present && no_max.fill_ratio.is_none() && no_max.note.is_some());
    }
}
