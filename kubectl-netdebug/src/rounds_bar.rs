//! The live display of repeated rounds (`--repeat`, `--for`): one bar per check on stderr
//! when it is a terminal ("tcp  [#####-----] 120/800  3 failed"), fed by the probe's
//! `progress` events and cleared before the verdict is printed.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars, created on the first `progress` event of each check.
pub struct RoundsBars {
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
}

impl RoundsBars {
    /// Bars only when stderr is a terminal: never in a pipe or a CI log.
    pub fn new() -> RoundsBars {
        RoundsBars {
            multi: std::io::stderr()
                .is_terminal()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: BTreeMap::new(),
        }
    }

    pub fn update(&mut self, p: &protocol::Progress) {
        let Some(multi) = &self.multi else {
            return;
        };
        let check = p.check.to_string();
        let bar = self.bars.entry(check.clone()).or_insert_with(|| {
            let bar = match p.total {
                Some(total) => {
                    let bar = ProgressBar::new(total);
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>5} [{bar:30}] {pos}/{len} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("#>-"),
                    );
                    bar
                }
                None => {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>5} {spinner} {pos} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar
                }
            };
            bar.set_prefix(check);
            multi.add(bar)
        });
        bar.set_position(p.done);
        bar.set_message(format!("{} failed", p.failed));
    }

    /// Remove the bars (before the verdict is written).
    pub fn clear(&mut self) {
        for (_, bar) in std::mem::take(&mut self.bars) {
            bar.finish_and_clear();
        }
    }
}

impl Default for RoundsBars {
    fn default() -> Self {
        RoundsBars::new()
    }
}
