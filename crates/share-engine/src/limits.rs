//! Upload and download rate limits (`share seed/fetch --max-up/--max-down`): token buckets
//! in bytes, shared by every connection of every torrent given the same [`Limits`].
//!
//! A bucket fills at `rate` bytes per second up to its burst (a tenth of a second of the rate,
//! never less than one 16 KiB block) and may go into debt: a whole block always goes, and
//! whoever comes next waits until the debt is paid. Over any stretch longer than the burst
//! the bytes charged are therefore the rate times the time, give or take one burst and one
//! block per waiter. The arithmetic ([`Bucket`]) takes the time as an argument, so it is
//! tested like arithmetic; [`RateLimit`] puts it behind a `std::sync::Mutex` (held for a few
//! float operations, never across `.await`) and reads tokio's clock, which tests can pause.
//!
//! Where the engine charges them (`peer/`): received piece payload is charged to `down` when
//! it is taken from the socket, and while the bucket is in debt the connection stops reading,
//! so TCP's window slows the sender down (our own waiting does not count against the peer's
//! request deadline); blocks we serve are charged to `up` before they are read from disk for
//! the writer. Protocol messages are not charged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// The smallest burst: one block (the unit peers request) must always fit.
pub const MIN_BURST: u64 = 16 * 1024;

/// Debt smaller than this (float rounding of a wait that was slept in full) counts as paid.
const PAID: f64 = 1.0;

/// A token bucket's state, apart from the clock: every method takes `now`.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Bytes per second.
    rate: f64,
    /// Most tokens that can gather while nobody takes any.
    burst: f64,
    /// Bytes that may go now; negative while in debt.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl Bucket {
    /// A full bucket of `rate` bytes per second (at least 1).
    pub fn new(rate: u64, now: Instant) -> Self {
        let rate = rate.max(1) as f64;
        let burst = (rate / 10.0).max(MIN_BURST as f64);
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// The burst in bytes.
    pub fn burst(&self) -> u64 {
        self.burst as u64
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// How long until the debt is paid, or `None` when there is none.
    fn debt(&self) -> Option<Duration> {
        if self.tokens > -PAID {
            return None;
        }
        Some(Duration::from_secs_f64(-self.tokens / self.rate))
    }

    /// Takes `n` bytes if the bucket is not in debt (into debt if `n` is more than it holds);
    /// otherwise takes nothing and says how long until it is out of debt.
    pub fn take(&mut self, n: u64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        match self.debt() {
            Some(wait) => Err(wait),
            None => {
                self.tokens -= n as f64;
                Ok(())
            }
        }
    }

    /// Takes `n` bytes that have already moved (received data), debt or not; returns how
    /// long until the bucket is out of debt, if it is in debt now.
    pub fn charge(&mut self, n: u64, now: Instant) -> Option<Duration> {
        self.refill(now);
        self.tokens -= n as f64;
        self.debt()
    }

    /// How long until the bucket is out of debt, if it is in debt.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        self.debt()
    }
}

/// One rate limit, shared (behind an `Arc`) by everything it limits.
#[derive(Debug)]
pub struct RateLimit {
    rate: u64,
    bucket: Mutex<Bucket>,
}

impl RateLimit {
    /// A limit of `rate` bytes per second (at least 1), starting with a full burst.
    pub fn new(rate: u64) -> Self {
        Self {
            rate: rate.max(1),
            bucket: Mutex::new(Bucket::new(rate, Instant::now())),
        }
    }

    /// Bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The most bytes that may go at once from a full bucket (not counting debt).
    pub fn burst(&self) -> u64 {
        self.bucket().burst()
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket is a few numbers always left consistent; a panic elsewhere while it
        // was held cannot have broken it.
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `n` bytes may go, then takes them (possibly into debt). Cancellation-safe:
    /// tokens are taken only at the instant it returns, so dropping the future takes none.
    pub async fn acquire(&self, n: u64) {
        loop {
            let taken = self.bucket().take(n, Instant::now());
            match taken {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// See [`Bucket::take`].
    pub fn try_take(&self, n: u64) -> Result<(), Duration> {
        self.bucket().take(n, Instant::now())
    }

    /// See [`Bucket::charge`].
    pub fn charge(&self, n: u64) -> Option<Duration> {
        self.bucket().charge(n, Instant::now())
    }

    /// See [`Bucket::wait`].
    pub fn debt(&self) -> Option<Duration> {
        self.bucket().wait(Instant::now())
    }
}

/// The upload and download limits of a process. Cloning shares the buckets: every torrent
/// given clones of one `Limits` shares its rates. The default limits nothing.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Block bytes we send, in total.
    pub up: Option<Arc<RateLimit>>,
    /// Piece payload we receive, in total.
    pub down: Option<Arc<RateLimit>>,
}

impl Limits {
    /// Limits of `up` and `down` bytes per second; `None` leaves that direction unlimited.
    pub fn new(up: Option<u64>, down: Option<u64>) -> Self {
        Self {
            up: up.map(|r| Arc::new(RateLimit::new(r))),
            down: down.map(|r| Arc::new(RateLimit::new(r))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const BLOCK: u64 = 16 * 1024;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_burst_is_a_tenth_of_a_second_but_at_least_a_block() {
        let now = Instant::now();
        assert_eq!(Bucket::new(4 * MIB, now).burst(), 4 * MIB / 10);
        assert_eq!(Bucket::new(10_000, now).burst(), BLOCK);
        assert_eq!(
            Bucket::new(0, now).burst(),
            BLOCK,
            "a zero rate is one byte per second"
        );
    }

    #[test]
    fn a_full_bucket_lets_its_burst_go_then_debt_makes_the_next_wait() {
        let t0 = Instant::now();
        let mut b = Bucket::new(MIB, t0);
        // Burst: 104,857 bytes; six blocks (98,304) fit, the seventh goes into debt.
        for _ in 0..7 {
            assert_eq!(b.take(BLOCK, t0), Ok(()));
        }
        let debt = (7 * BLOCK) as f64 - MIB as f64 / 10.0;
        let wait = b.take(BLOCK, t0).unwrap_err();
        let expected = debt / MIB as f64;
        assert!((wait.as_secs_f64() - expected).abs() < 1e-6, "{wait:?}");
        // Refused takes cost nothing: the wait only shrinks with time.
        let later = b.take(BLOCK, t0 + ms(1)).unwrap_err();
        assert!(later < wait);
        // Once the debt is paid, one more block goes (into debt again).
        assert_eq!(b.take(BLOCK, t0 + wait), Ok(()));
        assert!(b.take(1, t0 + wait).is_err());
    }

    #[test]
    fn a_block_bigger_than_the_burst_still_goes() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, t0);
        assert_eq!(b.take(BLOCK, t0), Ok(()), "a block always fits a full bucket");
        assert_eq!(b.take(BLOCK, t0), Ok(()), "no debt yet: the burst is one block");
        let wait = b.take(BLOCK, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs_f64(BLOCK as f64 / 1000.0));
    }

    #[test]
    fn an_idle_bucket_keeps_no_more_than_its_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(MIB, t0);
        let t1 = t0 + Duration::from_secs(3600);
        // After an hour idle only the burst (and the block that may go into debt) goes at once.
        let mut sent = 0;
        while b.take(BLOCK, t1).is_ok() {
            sent += BLOCK;
        }
        assert_eq!(sent, 7 * BLOCK);
    }

    #[test]
    fn received_bytes_are_charged_in_full_and_the_wait_covers_the_debt() {
        let t0 = Instant::now();
        let mut b = Bucket::new(MIB, t0);
        assert_eq!(b.charge(MIB / 10, t0), None, "the burst itself is no debt");
        let wait = b.charge(MIB / 2, t0).expect("in debt");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        let left = b.wait(t0 + ms(250)).expect("half paid");
        assert!((left.as_secs_f64() - 0.25).abs() < 1e-6, "{left:?}");
        assert_eq!(b.wait(t0 + ms(500)), None);
    }

    #[test]
    fn over_a_long_stretch_the_bytes_taken_are_the_rate_times_the_time() {
        // Ten waiters taking blocks as fast as the bucket allows, for 10 simulated seconds.
        let rate = 4 * MIB;
        let t0 = Instant::now();
        let mut b = Bucket::new(rate, t0);
        let mut ready = [t0; 10];
        let mut taken = 0u64;
        let end = t0 + Duration::from_secs(10);
        loop {
            let (i, &at) = ready.iter().enumerate().min_by_key(|(_, t)| **t).unwrap();
            if at >= end {
                break;
            }
            match b.take(BLOCK, at) {
                Ok(()) => taken += BLOCK,
                Err(wait) => ready[i] = at + wait,
            }
        }
        let expected = 10 * rate + b.burst();
        let error = taken.abs_diff(expected) as f64 / expected as f64;
        assert!(error < 0.01, "taken {taken}, expected about {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_on_the_clock_and_sharing_splits_the_rate() {
        let limits = Limits::new(None, Some(MIB));
        let a = limits.clone();
        let b = limits.clone();
        let start = Instant::now();
        // Two holders of one `Limits` moving 2 MiB each: 4 MiB at 1 MiB/s, less the burst.
        let run = |l: Limits| async move {
            let down = l.down.expect("limited");
            for _ in 0..2 * MIB / BLOCK {
                down.acquire(BLOCK).await;
            }
            Instant::now()
        };
        let (ta, tb) = tokio::join!(run(a), run(b));
        let took = ta.max(tb) - start;
        let expected = (4 * MIB - MIB / 10 - BLOCK) as f64 / MIB as f64;
        assert!(
            (took.as_secs_f64() - expected).abs() < 0.01,
            "{took:?}, expected {expected} s"
        );
        // Both moved in parallel: one after the other would end 2 s apart. Who wins each
        // refill is not fair turn by turn, so a few blocks' worth of difference is allowed.
        assert!(ta.max(tb) - ta.min(tb) < ms(500), "{:?}", ta.max(tb) - ta.min(tb));
        assert!(limits.up.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_acquire_takes_nothing() {
        let limit = RateLimit::new(MIB);
        limit.acquire(MIB).await; // deep in debt: 0.9 s to pay
        let waiting = tokio::time::timeout(ms(100), limit.acquire(BLOCK)).await;
        assert!(waiting.is_err(), "still in debt after 100 ms");
        let left = limit.debt().expect("still in debt");
        // The cancelled acquire took no block: the debt is what the first one left, less 100 ms.
        let expected = 0.9 - 0.1;
        assert!((left.as_secs_f64() - expected).abs() < 1e-3, "{left:?}");
    }
}
