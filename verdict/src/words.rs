//! Small wording helpers shared by the rules and the progress lines.

/// `1.2 ms`, `38 ms`, `3.0 s`.
pub fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1} s", value / 1000.0)
    } else if value >= 10.0 {
        format!("{value:.0} ms")
    } else {
        format!("{value:.1} ms")
    }
}

/// `1 query`, `3 queries`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `a, b, c` with at most `max` items then `and N more`.
pub fn list(items: &[String], max: usize) -> String {
    if items.len() <= max {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..max].join(", "), items.len() - max)
    }
}

/// `a, b` from anything displayable.
pub fn joined<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `p50 0.4 ms p90 0.6 ms p99 2.1 ms max 3.0 ms`: the percentiles of repeated attempts, the
/// same words for connects and lookups.
pub fn latency_words(l: &protocol::LatencySummary) -> String {
    format!(
        "p50 {} p90 {} p99 {} max {}",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max)
    )
}
