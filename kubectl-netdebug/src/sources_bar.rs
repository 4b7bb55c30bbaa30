//! The live display of a many-sources run: one line per source on stderr, only when it is a
//! terminal ("src-3  web-7f9-x2 (node-b)  running  4 checks done"), cleared before the
//! verdict is printed.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where one source's probe session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Queued behind `--max-parallel` injections.
    Waiting,
    Injecting,
    /// Streaming; how many checks have finished.
    Running {
        checks_done: usize,
    },
    /// Its verdict's status word (OK, FAIL ...) and headline.
    Done {
        status: &'static str,
        headline: String,
    },
    Failed {
        reason: String,
    },
    /// Not started: the run was interrupted first.
    NotStarted,
}

impl SourceState {
    /// The words after the source's name.
    pub fn describe(&self) -> String {
        match self {
            SourceState::Waiting => "waiting".into(),
            SourceState::Injecting => "injecting".into(),
            SourceState::Running { checks_done: 0 } => "running".into(),
            SourceState::Running { checks_done } => {
                format!("running  {checks_done} checks done")
            }
            SourceState::Done { status, headline } => format!("done  {status}  {headline}"),
            SourceState::Failed { reason } => format!("failed  {reason}"),
            SourceState::NotStarted => "not started (interrupted)".into(),
        }
    }
}

/// One line per source; nothing at all when stderr is not a terminal.
pub struct SourcesBars {
    multi: Option<MultiProgress>,
    lines: Vec<Option<ProgressBar>>,
}

impl SourcesBars {
    /// `labels`: one per source, in order ("src-1  web-1 (node-a)").
    pub fn new(labels: &[String]) -> SourcesBars {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let width = labels.iter().map(|l| l.len()).max().unwrap_or(0);
        let lines = labels
            .iter()
            .map(|label| {
                multi.as_ref().map(|m| {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("{prefix} {spinner} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(format!("{label:width$}"));
                    bar.set_message(SourceState::Waiting.describe());
                    let bar = m.add(bar);
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                })
            })
            .collect();
        SourcesBars { multi, lines }
    }

    pub fn set(&self, index: usize, state: &SourceState) {
        let Some(Some(bar)) = self.lines.get(index) else {
            return;
        };
        bar.set_message(state.describe());
        if matches!(
            state,
            SourceState::Done { .. } | SourceState::Failed { .. } | SourceState::NotStarted
        ) {
            bar.disable_steady_tick();
            bar.tick();
        }
    }

    /// Remove the lines (before the verdict is written).
    pub fn clear(&self) {
        for bar in self.lines.iter().flatten() {
            bar.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_say_where_a_source_is() {
        assert_eq!(SourceState::Waiting.describe(), "waiting");
        assert_eq!(
            SourceState::Running { checks_done: 3 }.describe(),
            "running  3 checks done"
        );
        assert_eq!(
            SourceState::Failed {
                reason: "ErrImagePull".into()
            }
            .describe(),
            "failed  ErrImagePull"
        );
        assert_eq!(
            SourceState::Done {
                status: "FAIL",
                headline: "L7 DNS timeout".into()
            }
            .describe(),
            "done  FAIL  L7 DNS timeout"
        );
    }
}
