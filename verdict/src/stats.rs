//! How sure a rate measured over repeated attempts is (plan `rounds`). Pure functions, no
//! evidence types: the rules turn counts into words with them.
//!
//! - [`wilson`]: the 95% confidence interval of a failure rate k/n. The Wilson score interval,
//!   not the textbook normal one: the rounds give small counts (0 of 20, 7 of 200) where the
//!   normal interval leaves [0, 1] or collapses to a point at 0.
//! - [`detectable_rate`]: what a clean run proves. With n attempts and none failing, the
//!   smallest failure rate that would have shown at least once with 95% confidence.

/// z of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95% Wilson score interval of the rate `k` of `n`, as fractions (low, high); None when
/// nothing was tried.
pub fn wilson(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n_f = n as f64;
    let p = k.min(n) as f64 / n_f;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denominator;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The smallest failure rate p that `n` attempts without a failure rule out with 95%
/// confidence: a rate of p would have left all n clean with probability (1-p)^n = 5%.
pub fn detectable_rate(n: u64) -> f64 {
    1.0 - 0.05f64.powf(1.0 / n.max(1) as f64)
}

/// `a failure rate of 1.5% or more would have shown with 95% confidence` (`what` is the
/// subject, `a failure rate`).
pub fn power_words(n: u64, what: &str) -> String {
    format!(
        "{what} of {} or more would have shown with 95% confidence",
        pct(detectable_rate(n))
    )
}

/// A fraction as a percentage with enough digits to tell a small rate from zero: `25%`,
/// `3.5%`, `0.03%`, `0%`.
pub fn pct(p: f64) -> String {
    format!("{}%", pct_number(p))
}

/// `95% CI 1.7-7.0%`: the Wilson interval of `k` of `n`.
pub fn ci_words(k: u64, n: u64) -> String {
    match wilson(k, n) {
        Some((lo, hi)) => format!("95% CI {}-{}%", pct_number(lo), pct_number(hi)),
        None => "no attempts".into(),
    }
}

/// The number of [`pct`], without the sign.
fn pct_number(p: f64) -> String {
    let x = p * 100.0;
    if x == 0.0 {
        "0".into()
    } else if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The median of `values` (the mean of the middle two for an even count); None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_known_values() {
        // 7 of 200: 1.71%-7.05% (the textbook Wilson score interval, z = 1.96).
        let (lo, hi) = wilson(7, 200).unwrap();
        assert!(close(lo, 0.01706) && close(hi, 0.07047), "{lo} {hi}");
        assert_eq!(ci_words(7, 200), "95% CI 1.7-7.0%");
        // 0 of 20: the interval starts at 0 and still says up to 16%.
        let (lo, hi) = wilson(0, 20).unwrap();
        assert!(lo == 0.0 && close(hi, 0.16113), "{lo} {hi}");
        // 5 of 20.
        assert_eq!(ci_words(5, 20), "95% CI 11-47%");
        // All failed: the interval ends at 1.
        let (_, hi) = wilson(20, 20).unwrap();
        assert!(close(hi, 1.0), "{hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn power_of_a_clean_run_is_computed() {
        assert!(
            close(detectable_rate(200), 0.014867),
            "{}",
            detectable_rate(200)
        );
        assert!(close(detectable_rate(1), 0.95));
        assert!(close(detectable_rate(10_000), 0.0002995));
        assert_eq!(
            power_words(200, "a failure rate"),
            "a failure rate of 1.5% or more would have shown with 95% confidence"
        );
        assert_eq!(
            power_words(1, "a failure rate"),
            "a failure rate of 95% or more would have shown with 95% confidence"
        );
        assert_eq!(
            power_words(10_000, "a failure rate"),
            "a failure rate of 0.03% or more would have shown with 95% confidence"
        );
    }

    #[test]
    fn percentages_keep_small_rates_visible() {
        assert_eq!(pct(0.25), "25%");
        assert_eq!(pct(0.035), "3.5%");
        assert_eq!(pct(0.0003), "0.03%");
        assert_eq!(pct(0.0), "0%");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
