//! Paced rounds (plan `rounds`): item after item, round after round, one attempt per time slot
//! at `rate` slots per second across all items, each attempt running on its own while the next
//! ones start. Shared by the connect rounds (`tcp`) and the lookup rounds (`dns`); it takes
//! the attempt as a closure, so its scheduling is tested without a socket.

use std::future::Future;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use protocol::RoundsPlan;
use tokio::time::Instant;

/// Attempts in flight at once, at most: each holds a socket (a file descriptor), and pods
/// often run with a 1024-descriptor limit. A blackholed target at the capped rate of 500/s
/// and a 3 s connect timeout would reach it; the rate then slows down rather than failing
/// attempts with EMFILE.
pub const MAX_IN_FLIGHT: usize = 256;

/// A finished attempt.
pub struct Finished<T> {
    pub item: usize,
    pub round: u32,
    /// When it started, from the start of the first round.
    pub offset: Duration,
    pub result: T,
}

/// How the rounds are paced.
pub struct Pace {
    pub interval: Duration,
    pub repeat: u32,
    pub for_time: Option<Duration>,
    /// Time an attempt needs: none starts when less than this is left before the deadline
    /// (so no attempt is cut short and counted as a failure).
    pub room: Duration,
}

impl Pace {
    pub fn new(rounds: &RoundsPlan, room: Duration) -> Pace {
        Pace {
            interval: Duration::from_secs_f64(1.0 / f64::from(rounds.rate.max(1))),
            repeat: rounds.repeat,
            for_time: rounds.for_ms.map(Duration::from_millis),
            room,
        }
    }
}

/// Run the rounds over `items` items; `done` sees every attempt as it finishes. Returns true
/// when the deadline (`remaining`) ended the rounds before the plan did.
pub async fn run_paced<T, Fut>(
    pace: &Pace,
    items: usize,
    remaining: impl Fn() -> Duration,
    attempt: impl Fn(usize, u32) -> Fut,
    mut done: impl FnMut(Finished<T>),
) -> bool
where
    Fut: Future<Output = T>,
{
    let start = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut slot: u32 = 0;
    let mut stopped_early = false;
    'rounds: for round in 0..pace.repeat {
        // `--for`: no round whose first slot falls after the duration.
        if pace
            .for_time
            .is_some_and(|limit| pace.interval * slot >= limit)
        {
            break;
        }
        for item in 0..items {
            let at = start + pace.interval * slot;
            slot = slot.saturating_add(1);
            // Collect what finishes while waiting for this attempt's slot.
            loop {
                tokio::select! {
                    biased;
                    Some(f) = in_flight.next(), if !in_flight.is_empty() => done(f),
                    _ = tokio::time::sleep_until(at) => break,
                }
            }
            while in_flight.len() >= MAX_IN_FLIGHT {
                if let Some(f) = in_flight.next().await {
                    done(f);
                }
            }
            if remaining() < pace.room {
                stopped_early = true;
                break 'rounds;
            }
            let offset = start.elapsed();
            let fut = attempt(item, round);
            in_flight.push(async move {
                Finished {
                    item,
                    round,
                    offset,
                    result: fut.await,
                }
            });
        }
    }
    while let Some(f) = in_flight.next().await {
        done(f);
    }
    stopped_early
}

/// `progress` events about twice a second while rounds run, and one at the end: for the
/// client's live display ("120/800 connects, 3 failed"), never evidence.
pub struct Ticker<'a> {
    ctx: &'a crate::context::Ctx,
    check: protocol::CheckKind,
    total: Option<u64>,
    done: u64,
    failed: u64,
    last: Instant,
}

/// Time between two progress events.
const TICK: Duration = Duration::from_millis(500);

impl<'a> Ticker<'a> {
    /// `total` attempts when the rounds are counted, None when they run for a duration.
    pub fn new(
        ctx: &'a crate::context::Ctx,
        check: protocol::CheckKind,
        rounds: &RoundsPlan,
        items: usize,
    ) -> Ticker<'a> {
        Ticker {
            ctx,
            check,
            total: rounds
                .for_ms
                .is_none()
                .then(|| u64::from(rounds.repeat) * items as u64),
            done: 0,
            failed: 0,
            last: Instant::now(),
        }
    }

    pub fn tick(&mut self, failed: bool) {
        self.done += 1;
        self.failed += u64::from(failed);
        if self.last.elapsed() >= TICK {
            self.emit();
        }
    }

    pub fn finish(&mut self) {
        self.emit();
    }

    fn emit(&mut self) {
        self.last = Instant::now();
        self.ctx
            .emitter()
            .emit(protocol::Event::Progress(protocol::Progress {
                check: self.check.into(),
                done: self.done,
                total: self.total,
                failed: self.failed,
            }));
    }
}

/// Milliseconds with microsecond precision, as the evidence shows them.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(repeat: u32, rate: u32) -> Pace {
        Pace::new(
            &RoundsPlan {
                rate,
                ..RoundsPlan::new(repeat)
            },
            Duration::from_millis(10),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_go_item_by_item_round_by_round_on_their_slots() {
        let mut seen = Vec::new();
        let stopped = run_paced(
            &pace(3, 100),
            2,
            || Duration::from_secs(60),
            |item, round| async move { (item, round) },
            |f| seen.push((f.result, f.offset)),
        )
        .await;
        assert!(!stopped);
        let order: Vec<(usize, u32)> = seen.iter().map(|(r, _)| *r).collect();
        assert_eq!(order, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
        // 100/s: one slot every 10 ms (the clock is paused: exact).
        let offsets: Vec<u128> = seen.iter().map(|(_, o)| o.as_millis()).collect();
        assert_eq!(offsets, [0, 10, 20, 30, 40, 50]);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_attempts_overlap_instead_of_delaying_the_next_slots() {
        let mut offsets = Vec::new();
        run_paced(
            &pace(4, 10),
            1,
            || Duration::from_secs(60),
            |_, _| tokio::time::sleep(Duration::from_millis(350)),
            |f| offsets.push(f.offset.as_millis()),
        )
        .await;
        assert_eq!(offsets, [0, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_without_room_before_the_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(55);
        let mut count = 0;
        let stopped = run_paced(
            &pace(100, 100),
            1,
            || deadline.saturating_duration_since(Instant::now()),
            |_, _| async {},
            |_| count += 1,
        )
        .await;
        // Slots at 0..40 ms leave >= 10 ms of room; the one at 50 ms does not.
        assert!(stopped);
        assert_eq!(count, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn for_time_stops_starting_rounds() {
        let mut p = pace(1000, 100);
        p.for_time = Some(Duration::from_millis(95));
        let mut rounds = Vec::new();
        let stopped = run_paced(
            &p,
            1,
            || Duration::from_secs(60),
            |_, _| async {},
            |f| rounds.push(f.round),
        )
        .await;
        assert!(!stopped);
        assert_eq!(rounds, (0..10).collect::<Vec<u32>>());
    }
}
