//! Runs the plan's checks concurrently under one hard deadline and frames them with `hello`,
//! `check_started`/`check_finished` and `done`.

use std::sync::Arc;
use std::time::Duration;

use protocol::{
    Armed, CheckFinished, CheckKind, CheckStarted, CheckStatus, Done, Event, Hello, Open, Plan,
    Released, Skipped, PROTOCOL_MINOR,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::checks::{self, Outcome};
use crate::context::{Ctx, NodeView, Setup};
use crate::control::Control;
use crate::emit::Emitter;
use crate::peer;

/// Extra time after the deadline before the watchdog ends the process no matter what (a
/// blocking call the runtime cannot cancel).
const WATCHDOG_GRACE: Duration = Duration::from_millis(1500);
/// How long the watchdog waits for its `done` (or the runner's) to be written before it ends
/// the process anyway: a stdout nobody reads must not keep the probe alive.
const LAST_WORDS_WAIT: Duration = Duration::from_millis(1000);
/// How long traffic checks wait for the capture socket to be ready.
const CAPTURE_READY_LIMIT: Duration = Duration::from_millis(1000);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a check task panicked: {0}")]
    Panicked(String),
    #[error("reading the probe's set-up (privileges, resolv.conf) failed: {0}")]
    Setup(String),
}

pub async fn run(
    mut plan: Plan,
    emitter: Emitter,
    control: Option<Control>,
    node: Option<NodeView>,
) -> Result<(), RunError> {
    let started = Instant::now();
    // First, so that nothing after it (file reads included) can keep the run past its deadline.
    arm_watchdog(emitter.clone(), plan.deadline_ms, started);
    let setup = Setup::read(plan.dns.resolv_conf.clone(), plan.dns.hosts_file.clone())
        .await
        .map_err(|e| RunError::Setup(e.to_string()))?;
    emitter.emit(Event::Hello(hello(&plan, &setup)));
    // A newer client may ask for a check this probe does not have: say so instead of refusing
    // the whole plan, so every check it does know still runs. It ends like any skipped check:
    // `skipped`, `check_finished`, and counted in `done`.
    let unknown = plan.unknown_checks();
    for name in &unknown {
        let check = Open::Unknown(name.to_string());
        emitter.emit(Event::Skipped(Skipped {
            check: check.clone(),
            reason: format!(
                "this probe (version {}) does not know the check `{name}`: use the probe image \
                 that matches the client (--image)",
                env!("CARGO_PKG_VERSION")
            ),
            missing_capability: None,
        }));
        emitter.emit(Event::CheckFinished(CheckFinished {
            check,
            status: CheckStatus::Skipped.into(),
            elapsed_ms: 0.0,
            error: None,
        }));
    }
    let unknown = unknown.len() as u32;
    // A peer without targets watches its sources: one target each (route: the way back).
    peer::add_source_targets(&mut plan);
    let checks = plan.effective_checks();
    let ctx = Arc::new(Ctx::new(
        plan,
        emitter.clone(),
        setup,
        started,
        control,
        node,
    ));
    let statuses = run_checks(&checks, &ctx).await?;

    let count = |s: CheckStatus| statuses.iter().filter(|x| **x == s).count() as u32;
    emitter.emit_last(Event::Done(Done {
        elapsed_ms: ms(started.elapsed()),
        checks_completed: count(CheckStatus::Completed),
        checks_failed: count(CheckStatus::Error),
        checks_skipped: count(CheckStatus::Skipped) + unknown,
        deadline_exceeded: count(CheckStatus::DeadlineExceeded) > 0,
    }));
    Ok(())
}

/// Runs the checks, observers first, and returns how each ended. A paced probe (the plan's
/// `control`) says `armed` once its observers are in place; a held source starts the checks
/// that make traffic only once released; a paced peer's observers go on until `stop`.
async fn run_checks(checks: &[CheckKind], ctx: &Arc<Ctx>) -> Result<Vec<CheckStatus>, RunError> {
    let mut observers = JoinSet::new();
    let mut others = JoinSet::new();
    // Observers (capture, counters) start first so they see the traffic the others make.
    for kind in checks.iter().copied().filter(|k| is_observer(*k)) {
        observers.spawn(run_one(kind, ctx.clone()));
    }
    let capturing =
        checks.contains(&CheckKind::Capture) && ctx.wait_capture_ready(CAPTURE_READY_LIMIT).await;
    if ctx.control.is_some() {
        ctx.emitter().emit(Event::Armed(Armed {
            capture: capturing,
            elapsed_ms: ms(ctx.started.elapsed()),
        }));
    }
    let (traffic, quiet): (Vec<CheckKind>, Vec<CheckKind>) = checks
        .iter()
        .copied()
        .filter(|k| !is_observer(*k))
        .partition(|k| k.info().generates_traffic);
    for kind in quiet {
        others.spawn(run_one(kind, ctx.clone()));
    }
    if !traffic.is_empty() {
        hold(ctx).await;
    }
    for kind in traffic {
        others.spawn(run_one(kind, ctx.clone()));
    }

    let mut statuses = Vec::new();
    while let Some(res) = others.join_next().await {
        statuses.push(res.map_err(|e| RunError::Panicked(e.to_string()))?);
    }
    if ctx.plan.peer.is_some() {
        // The traffic a paced peer watches is the source's: it is done at `stop`.
        peer_stop(ctx, checks.contains(&CheckKind::Capture)).await;
    }
    ctx.mark_traffic_done();
    while let Some(res) = observers.join_next().await {
        statuses.push(res.map_err(|e| RunError::Panicked(e.to_string()))?);
    }
    Ok(statuses)
}

/// A held source (control with `hold_ms`) waits for `go`, at most `hold_ms` and never past
/// the deadline, then says why it went on.
async fn hold(ctx: &Ctx) {
    let (Some(control), Some(hold_ms)) = (
        &ctx.control,
        ctx.plan.control.as_ref().and_then(|c| c.hold_ms),
    ) else {
        return;
    };
    let until = (Instant::now() + Duration::from_millis(hold_ms)).min(ctx.deadline);
    let (by, held) = control.hold(until).await;
    ctx.emitter().emit(Event::Released(Released {
        by: by.into(),
        held_ms: ms(held),
    }));
}

/// A paced peer's run ends at the client's `stop` (a closed channel counts), or when its
/// capture has ended by a limit of its own, or at the deadline. An unpaced peer does not wait.
async fn peer_stop(ctx: &Ctx, captures: bool) {
    let Some(control) = &ctx.control else {
        return;
    };
    let capture_ended = async {
        if captures {
            ctx.capture_ended().await
        } else {
            std::future::pending().await
        }
    };
    let _ = tokio::time::timeout_at(ctx.deadline, async {
        tokio::select! {
            _ = control.stop() => {}
            () = capture_ended => {}
        }
    })
    .await;
}

fn is_observer(kind: CheckKind) -> bool {
    kind.info().observer
}

async fn run_one(kind: CheckKind, ctx: Arc<Ctx>) -> CheckStatus {
    let emitter = ctx.emitter().clone();
    emitter.emit(Event::CheckStarted(CheckStarted {
        check: kind.into(),
        variant: None,
    }));
    let t0 = Instant::now();
    let deadline = ctx.deadline;
    let (status, error) = match tokio::time::timeout_at(deadline, checks::run(kind, ctx)).await {
        Ok(Outcome::Completed) => (CheckStatus::Completed, None),
        Ok(Outcome::Failed(message)) => (CheckStatus::Error, Some(message)),
        Ok(Outcome::Skipped {
            reason,
            missing_capability,
        }) => {
            emitter.emit(Event::Skipped(Skipped {
                check: kind.into(),
                reason,
                missing_capability: missing_capability.map(Into::into),
            }));
            (CheckStatus::Skipped, None)
        }
        Err(_) => (
            CheckStatus::DeadlineExceeded,
            Some("the run's deadline was reached before the check finished".to_string()),
        ),
    };
    emitter.emit(Event::CheckFinished(CheckFinished {
        check: kind.into(),
        status: status.into(),
        elapsed_ms: ms(t0.elapsed()),
        error,
    }));
    status
}

fn hello(plan: &Plan, setup: &Setup) -> Hello {
    let privileges = &setup.privileges;
    Hello {
        probe_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_minor: PROTOCOL_MINOR,
        netns_inode: setup.netns_inode,
        hostname: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok()),
        kernel: nix::sys::utsname::uname()
            .ok()
            .map(|u| u.release().to_string_lossy().into_owned()),
        uid: privileges.uid,
        euid: privileges.euid,
        capabilities: privileges.capabilities.clone(),
        deadline_ms: plan.deadline_ms,
    }
}

/// The probe never outlives its deadline: if the runtime is stuck in something it cannot
/// cancel (a blocking call, or an emit waiting on a stdout nobody reads), this thread closes
/// the stream with `done` and ends the process. It shares no lock with the writer: it queues
/// its `done` and waits for it at most LAST_WORDS_WAIT, so a stuck stdout delays the exit by
/// that much and no more.
fn arm_watchdog(emitter: Emitter, deadline_ms: u64, started: Instant) {
    let limit = Duration::from_millis(deadline_ms) + WATCHDOG_GRACE;
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            std::thread::sleep(limit.saturating_sub(started.elapsed()));
            let done = Event::Done(Done {
                elapsed_ms: ms(started.elapsed()),
                checks_completed: 0,
                checks_failed: 0,
                checks_skipped: 0,
                deadline_exceeded: true,
            });
            // When the runner's `done` is already queued this only waits for it to be written.
            let until = std::time::Instant::now() + LAST_WORDS_WAIT;
            if !emitter.last_words(done, until) {
                emitter.flush(Some(until));
            }
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        // Without a watchdog the per-check timeouts still bound the checks (not a stuck stdout).
        eprintln!("netdebug-probe: cannot start the watchdog thread: {e}");
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}
