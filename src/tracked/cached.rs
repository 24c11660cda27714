//! Load discipline for API sources: a [`CachedSource`] wraps a [`TrackedSource`] so that a fleet
//! of exporters scraped every 15 s puts at most one refresh per interval per host on the API,
//! spread evenly over the interval across the fleet.
//!
//! - **Refresh at most once per interval, at a random phase.** The first scrape starts a
//!   refresh at once (a fresh exporter needs data). The second refresh is due at a uniformly
//!   random point within one interval after the first started; every later one is due
//!   `interval` after the previous one *started*, plus or minus up to 10% drawn at random each
//!   time ([`next_refresh_delay`]). Exporters restarted together (a config push, a reboot of a
//!   rack) are therefore spread evenly over the interval after one interval, instead of hitting
//!   the API in near lock-step and drifting apart only by a slow random walk, while each host
//!   keeps its average rate of one refresh per interval. Refreshes are driven by scrapes: an
//!   exporter nobody scrapes puts no load on the API, and a refresh starts at the first scrape
//!   at or after its due time.
//! - **Spread a fleet-wide restart from the start** ([`CachedSource::with_start_spread`], the
//!   exporter's default, `--no-collector.start-spread` turns it off). The first refresh is held
//!   back by a uniformly random delay within one refresh interval of start-up, and every later
//!   one is `interval` plus or minus the jitter after the previous. Exporters restarted together
//!   then hit the API evenly from their first refresh on, instead of all at once (a backlog that
//!   a slow API drains into the next interval). Once the exporter has been scraped, that first
//!   refresh starts on its own timer at its random time, not at the next scrape after it. Until
//!   it has finished, the collector fails and says when the refresh starts: no data rather
//!   than stale data.
//! - **Never block a scrape.** A refresh runs on its own task. While it runs, scrapes get the
//!   cached value when it is younger than `max_age`; only a scrape with nothing usable waits for
//!   the refresh (and the collector's timeout bounds that wait; the refresh carries on in the
//!   background and its result serves the next scrape).
//! - **One refresh in flight.** A refresh that is due while another still runs is not started.
//! - **Never stale data as fresh.** A value older than `max_age` is dropped and the collector
//!   fails with the last refresh error; every value carries the time its refresh finished,
//!   dated back by [`TrackedUsage::data_age`] when the source reused older parts (so a value is
//!   as old as its oldest part), which the collector exports as its last success
//!   ([`TrackedUsage::fetched_unix`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt, Shared};

use super::{SourceKind, TrackedError, TrackedSource, TrackedUsage};

/// The default mean time between refreshes of an API source
/// (`--collector.placement.refresh-interval`, `--collector.nova.refresh-interval`).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The default timeout of one HTTP request of an API source
/// (`--collector.placement.request-timeout`, `--collector.nova.request-timeout`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest jitter, as a fraction of the interval.
pub const JITTER_FRACTION: f64 = 0.1;

/// How often to refresh and how long a value stays usable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheSettings {
    /// Mean time between refreshes.
    pub interval: Duration,
    /// A value older than this is dropped.
    pub max_age: Duration,
    /// The flag that sets `max_age`, for messages.
    pub max_age_flag: &'static str,
}

/// `interval` scaled by `1 + fraction * (2u - 1)` for `u` uniform in `[0, 1)`.
pub fn jittered(interval: Duration, fraction: f64, u: f64) -> Duration {
    let factor = 1.0 + fraction * (2.0 * u.clamp(0.0, 1.0) - 1.0);
    interval.mul_f64(factor.max(0.0))
}

/// How long after the start of refresh number `started` (0 for the first) the next one is due,
/// for `u` uniform in `[0, 1)`: after the first, `interval * u` (a uniformly random phase
/// within the interval, so that exporters started together spread evenly); after any later
/// one, `interval` plus or minus up to [`JITTER_FRACTION`] ([`jittered`]).
pub fn next_refresh_delay(started: u64, interval: Duration, u: f64) -> Duration {
    if started == 0 {
        interval.mul_f64(u.clamp(0.0, 1.0))
    } else {
        jittered(interval, JITTER_FRACTION, u)
    }
}

/// How long the first refresh is held back after start-up for `u` uniform in `[0, 1)`:
/// uniformly within `[0, spread)`.
pub fn start_delay(spread: Duration, u: f64) -> Duration {
    spread.mul_f64(u.clamp(0.0, 1.0))
}

/// When a value whose refresh finished at `finished` (`finished_unix` on the wall clock) was
/// really read, given the age of its oldest part when the source returned it: both clocks
/// dated back by that age (a refresh that reused nothing is as of when it finished).
pub fn dated_back(
    finished: Instant,
    finished_unix: f64,
    data_age: Option<Duration>,
) -> (Instant, f64) {
    let age = data_age.unwrap_or(Duration::ZERO);
    let at = finished.checked_sub(age).unwrap_or(finished);
    (
        at,
        finished_unix - finished.saturating_duration_since(at).as_secs_f64(),
    )
}

struct Cached {
    usage: TrackedUsage,
    at: Instant,
    unix: f64,
}

#[derive(Default)]
struct State {
    value: Option<Cached>,
    last_error: Option<String>,
    next_refresh: Option<Instant>,
    in_flight: Option<Shared<BoxFuture<'static, ()>>>,
}

/// A tracked source refreshed in the background at most once per interval.
pub struct CachedSource {
    inner: Arc<dyn TrackedSource>,
    settings: CacheSettings,
    state: Arc<Mutex<State>>,
    random: AtomicU64,
    refreshes: Arc<AtomicU64>,
    /// When the first refresh was held back ([`CachedSource::with_start_spread`]).
    first_refresh_held: bool,
    /// Whether the task that starts the held-back first refresh was spawned.
    first_refresh_armed: AtomicBool,
}

impl CachedSource {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn TrackedSource>, settings: CacheSettings) -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(u64::from(std::process::id()));
        Self {
            inner,
            settings,
            state: Arc::new(Mutex::new(State::default())),
            random: AtomicU64::new(hasher.finish() | 1),
            refreshes: Arc::new(AtomicU64::new(0)),
            first_refresh_held: false,
            first_refresh_armed: AtomicBool::new(false),
        }
    }

    /// Holds the first refresh back by a uniformly random delay in `[0, spread)` from now (the
    /// exporter passes its refresh interval), so that exporters started together spread their
    /// refreshes over one interval from the first on; every later refresh is due one interval,
    /// plus or minus the jitter, after the previous started. Scrapes before the first refresh
    /// fail, saying when it starts.
    pub fn with_start_spread(mut self, spread: Duration) -> Self {
        let delay = start_delay(spread, self.uniform());
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_refresh = Some(Instant::now() + delay);
        self.first_refresh_held = true;
        self
    }

    /// How many refreshes were started so far.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::SeqCst)
    }

    /// A uniform random number in `[0, 1)` (xorshift64*, seeded per process).
    fn uniform(&self) -> f64 {
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random.store(x, Ordering::Relaxed);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Starts a refresh when one is due and none runs; returns the one in flight, if any.
    fn maybe_refresh(
        &self,
        state: &mut State,
        now: Instant,
    ) -> Option<Shared<BoxFuture<'static, ()>>> {
        start_if_due(&self.refresher(), state, now, self.uniform())
    }

    /// What starting a refresh needs, for a task of its own.
    fn refresher(&self) -> Refresher {
        Refresher {
            inner: Arc::clone(&self.inner),
            state: Arc::clone(&self.state),
            refreshes: Arc::clone(&self.refreshes),
            interval: self.settings.interval,
            first_refresh_held: self.first_refresh_held,
        }
    }

    /// Once, at the first scrape of a source whose first refresh is held back: a task that
    /// starts that refresh at its random time instead of at the first scrape after it (which
    /// would push up to one scrape interval of first refreshes into the next interval).
    fn arm_first_refresh(&self) {
        if !self.first_refresh_held || self.first_refresh_armed.swap(true, Ordering::SeqCst) {
            return;
        }
        let due = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_refresh;
        let Some(due) = due else { return };
        let refresher = self.refresher();
        let u = self.uniform();
        tokio::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let state = Arc::clone(&refresher.state);
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            start_if_due(&refresher, &mut state, Instant::now(), u);
        });
    }

    /// The cached value when it is young enough.
    fn fresh(&self, state: &State, now: Instant) -> Option<TrackedUsage> {
        state
            .value
            .as_ref()
            .filter(|c| now.saturating_duration_since(c.at) <= self.settings.max_age)
            .map(|c| {
                let mut usage = c.usage.clone();
                usage.fetched_unix = Some(c.unix);
                usage
            })
    }

    fn failure(&self, state: &State, now: Instant) -> TrackedError {
        let last = state.last_error.clone().unwrap_or_else(|| {
            if state.in_flight.is_some() {
                "a refresh is still running".to_string()
            } else if let Some(at) = state.next_refresh.filter(|at| *at > now) {
                format!(
                    "no data yet: the first refresh starts in {:.0}s (held back by a random delay within the refresh interval to spread a fleet-wide restart; --no-collector.start-spread turns this off)",
                    at.saturating_duration_since(now).as_secs_f64().ceil()
                )
            } else {
                "no refresh has finished yet".to_string()
            }
        });
        match &state.value {
            Some(old) => TrackedError::Api(format!(
                "no data younger than {}={}s: the last good data is {}s old; last refresh: {last}",
                self.settings.max_age_flag,
                self.settings.max_age.as_secs(),
                now.saturating_duration_since(old.at).as_secs()
            )),
            None => TrackedError::Api(last),
        }
    }
}

/// The shared parts of a [`CachedSource`] that start a refresh.
struct Refresher {
    inner: Arc<dyn TrackedSource>,
    state: Arc<Mutex<State>>,
    refreshes: Arc<AtomicU64>,
    interval: Duration,
    first_refresh_held: bool,
}

/// Starts a refresh when one is due at `now` and none runs (the next one due after a delay drawn
/// with `u`); returns the one in flight, if any.
fn start_if_due(
    refresher: &Refresher,
    state: &mut State,
    now: Instant,
    u: f64,
) -> Option<Shared<BoxFuture<'static, ()>>> {
    let due = state.next_refresh.is_none_or(|at| now >= at);
    if due && state.in_flight.is_none() {
        let started = refresher.refreshes.fetch_add(1, Ordering::SeqCst);
        // After a held-back (already random) first refresh, the next is one interval on.
        let phase = started + u64::from(refresher.first_refresh_held);
        state.next_refresh = Some(now + next_refresh_delay(phase, refresher.interval, u));
        let task = tokio::spawn(refresh(
            Arc::clone(&refresher.inner),
            Arc::clone(&refresher.state),
        ));
        let shared = async move {
            let _ = task.await;
        }
        .boxed()
        .shared();
        state.in_flight = Some(shared);
    }
    state.in_flight.clone()
}

/// One refresh: reads the inner source and stores the outcome.
async fn refresh(inner: Arc<dyn TrackedSource>, state: Arc<Mutex<State>>) {
    let result = AssertUnwindSafe(inner.collect()).catch_unwind().await;
    // The data is as of its last response: a slow refresh does not make it stale on arrival.
    let finished = Instant::now();
    let finished_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(Ok(usage)) => {
            let (at, unix) = dated_back(finished, finished_unix, usage.data_age);
            state.value = Some(Cached { usage, at, unix });
            state.last_error = None;
        }
        Ok(Err(error)) => {
            let message = error.to_string();
            // Without cached data the collector fails with this very error and logs it; with
            // cached data still served, this line is the only sign of trouble until max-age. A
            // failure repeated refresh after refresh is logged once.
            let repeated = state.last_error.as_deref() == Some(message.as_str());
            if state.value.is_some() && !repeated {
                tracing::warn!(source = inner.kind().as_str(), error = %message, "refresh failed; serving the previous data until it is older than max-age");
            } else {
                tracing::debug!(source = inner.kind().as_str(), error = %message, "refresh failed");
            }
            state.last_error = Some(message);
        }
        Err(_) => {
            tracing::error!(source = inner.kind().as_str(), "refresh panicked (a bug)");
            state.last_error = Some("the refresh panicked (a bug; see the log)".to_string());
        }
    }
    state.in_flight = None;
}

#[async_trait]
impl TrackedSource for CachedSource {
    fn kind(&self) -> SourceKind {
        self.inner.kind()
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        self.arm_first_refresh();
        let in_flight = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let in_flight = self.maybe_refresh(&mut state, now);
            if let Some(usage) = self.fresh(&state, now) {
                return Ok(usage);
            }
            in_flight
        };
        if let Some(refresh) = in_flight {
            refresh.await;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        self.fresh(&state, now)
            .ok_or_else(|| self.failure(&state, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracked::{HostDiskSettings, TrackedInstance};

    struct Counting {
        calls: AtomicU64,
        delay: Duration,
        fail: AtomicBool,
    }

    #[async_trait]
    impl TrackedSource for Counting {
        fn kind(&self) -> SourceKind {
            SourceKind::Placement
        }
        async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(TrackedError::Api(format!("refresh {n} failed")));
            }
            Ok(TrackedUsage::from_local(
                vec![TrackedInstance::from_allocation(format!("refresh-{n}"), n)],
                &HostDiskSettings::default(),
            ))
        }
    }

    /// Panics on its first refresh (a bug), answers like [`Counting`] after.
    struct PanicsFirst(AtomicU64);

    #[async_trait]
    impl TrackedSource for PanicsFirst {
        fn kind(&self) -> SourceKind {
            SourceKind::Placement
        }
        async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(n > 1, "a bug in refresh {n}");
            Ok(TrackedUsage::from_local(
                vec![TrackedInstance {
                    uuid: format!("refresh-{n}"),
                    tracked_bytes: n,
                    allocated_bytes: n,
                    flavor: None,
                }],
                &HostDiskSettings::default(),
            ))
        }
    }

    #[tokio::test]
    async fn a_panicking_refresh_fails_that_scrape_and_the_next_refresh_runs() {
        let cache = CachedSource::new(
            Arc::new(PanicsFirst(AtomicU64::new(0))),
            settings(30, 10_000),
        );
        let error = cache.collect().await.unwrap_err().to_string();
        assert!(error.contains("the refresh panicked (a bug"), "{error}");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let usage = cache.collect().await.expect("the next refresh ran");
        assert_eq!(usage.instances[0].uuid, "refresh-2");
        assert_eq!(cache.refreshes(), 2);
    }

    fn counting(delay_ms: u64) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicU64::new(0),
            delay: Duration::from_millis(delay_ms),
            fail: AtomicBool::new(false),
        })
    }

    fn settings(interval_ms: u64, max_age_ms: u64) -> CacheSettings {
        CacheSettings {
            interval: Duration::from_millis(interval_ms),
            max_age: Duration::from_millis(max_age_ms),
            max_age_flag: "--collector.placement.max-age",
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let minute = Duration::from_secs(60);
        assert_eq!(jittered(minute, 0.1, 0.0), Duration::from_secs(54));
        assert_eq!(jittered(minute, 0.1, 0.5), minute);
        assert!(jittered(minute, 0.1, 0.999_999) < Duration::from_secs(66));
        let cache = CachedSource::new(counting(0), settings(1000, 3000));
        let draws: Vec<f64> = (0..1000).map(|_| cache.uniform()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }

    #[test]
    fn the_second_refresh_is_at_a_uniform_phase_and_later_ones_are_jittered() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_refresh_delay(0, minute, 0.0), Duration::ZERO);
        assert_eq!(next_refresh_delay(0, minute, 0.25), Duration::from_secs(15));
        assert!(next_refresh_delay(0, minute, 0.999_999) < minute);
        for started in [1, 2, 1000] {
            assert_eq!(
                next_refresh_delay(started, minute, 0.0),
                Duration::from_secs(54)
            );
            assert_eq!(next_refresh_delay(started, minute, 0.5), minute);
        }
    }

    /// When each of `fleet` exporters started together makes its refreshes, over `intervals`
    /// intervals of `interval_s` seconds, with the draws of `CachedSource::uniform`; `first`
    /// is the rule for the delay after the first refresh.
    fn fleet_refresh_times(
        fleet: usize,
        interval_s: f64,
        intervals: f64,
        first: impl Fn(Duration, f64) -> Duration,
    ) -> Vec<f64> {
        let cache = CachedSource::new(counting(0), settings(1000, 3000));
        let interval = Duration::from_secs_f64(interval_s);
        let mut times = Vec::new();
        for _ in 0..fleet {
            let mut at = 0.0;
            let mut started = 0;
            while at < interval_s * intervals {
                times.push(at);
                let delay = if started == 0 {
                    first(interval, cache.uniform())
                } else {
                    next_refresh_delay(started, interval, cache.uniform())
                };
                at += delay.as_secs_f64();
                started += 1;
            }
        }
        times
    }

    /// The largest number of refreshes in one second of `[from, to)` over the mean.
    fn peak_over_mean(times: &[f64], from: f64, to: f64) -> f64 {
        let mut buckets = vec![0u32; (to - from) as usize];
        for t in times.iter().filter(|t| (from..to).contains(*t)) {
            buckets[(t - from) as usize] += 1;
        }
        let mean = buckets.iter().sum::<u32>() as f64 / buckets.len() as f64;
        f64::from(*buckets.iter().max().unwrap()) / mean
    }

    #[test]
    fn a_fleet_started_together_is_spread_evenly_after_one_interval() {
        // 1,000 exporters restarted in the same second, a 60 s interval: in the second and third
        // interval, the busiest second sees at most twice the mean (binomial noise of ~17 per
        // second) with the random phase; with jitter alone it is many times the mean.
        let phased = fleet_refresh_times(1000, 60.0, 3.0, |interval, u| {
            next_refresh_delay(0, interval, u)
        });
        let jitter_only = fleet_refresh_times(1000, 60.0, 3.0, |interval, u| {
            jittered(interval, JITTER_FRACTION, u)
        });
        let phased_peak = peak_over_mean(&phased, 60.0, 180.0);
        let jitter_peak = peak_over_mean(&jitter_only, 60.0, 180.0);
        assert!(phased_peak < 2.0, "{phased_peak}");
        assert!(jitter_peak > 4.0, "{jitter_peak}");
        // Every exporter still refreshes about once per interval after the first.
        let later = phased.iter().filter(|t| (60.0..180.0).contains(*t)).count();
        assert!((1900..=2100).contains(&later), "{later}");
    }

    #[test]
    fn a_value_is_dated_back_to_its_oldest_part() {
        let finished = Instant::now();
        assert_eq!(dated_back(finished, 1000.0, None), (finished, 1000.0));
        let (at, unix) = dated_back(finished, 1000.0, Some(Duration::from_millis(2500)));
        assert_eq!(finished - at, Duration::from_millis(2500));
        assert!((unix - 997.5).abs() < 1e-9, "{unix}");
    }

    #[tokio::test]
    async fn many_scrapes_within_an_interval_cause_one_refresh() {
        let inner = counting(20);
        let cache = CachedSource::new(inner.clone(), settings(60_000, 180_000));
        for _ in 0..100 {
            let usage = cache.collect().await.unwrap();
            assert_eq!(usage.instances[0].uuid, "refresh-1");
            assert!(usage.fetched_unix.is_some());
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.refreshes(), 1);
    }

    #[tokio::test]
    async fn a_slow_refresh_serves_the_previous_value_meanwhile() {
        let inner = counting(0);
        let cache = CachedSource::new(inner.clone(), settings(50, 10_000));
        let first = cache.collect().await.unwrap();
        let first_time = first.fetched_unix.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        let slow = Arc::new(Counting {
            calls: AtomicU64::new(0),
            delay: Duration::from_secs(3600),
            fail: AtomicBool::new(false),
        });
        // Swap in a hanging source behind the same cache state.
        let hanging = CachedSource {
            inner: slow.clone(),
            settings: cache.settings,
            state: Arc::clone(&cache.state),
            random: AtomicU64::new(7),
            refreshes: Arc::new(AtomicU64::new(0)),
            first_refresh_held: false,
            first_refresh_armed: AtomicBool::new(false),
        };
        let started = Instant::now();
        let usage = hanging.collect().await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(usage.instances[0].uuid, "refresh-1");
        assert_eq!(usage.fetched_unix, Some(first_time));
        // The hanging refresh is in flight: no second one starts.
        tokio::time::sleep(Duration::from_millis(80)).await;
        hanging.collect().await.unwrap();
        assert_eq!(slow.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn data_older_than_max_age_is_dropped_and_the_error_says_why() {
        let inner = counting(0);
        let cache = CachedSource::new(inner.clone(), settings(30, 100));
        cache.collect().await.unwrap();
        inner.fail.store(true, Ordering::SeqCst);
        // Within max age the old value still serves, even though refreshes now fail.
        tokio::time::sleep(Duration::from_millis(40)).await;
        let usage = cache.collect().await.unwrap();
        assert_eq!(usage.instances[0].uuid, "refresh-1");
        tokio::time::sleep(Duration::from_millis(120)).await;
        let err = cache.collect().await.unwrap_err().to_string();
        assert!(err.contains("--collector.placement.max-age"), "{err}");
        assert!(err.contains("failed"), "{err}");
        // Recovery: the next successful refresh serves again.
        inner.fail.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        let usage = cache.collect().await.unwrap();
        assert_ne!(usage.instances[0].uuid, "refresh-1");
    }

    #[tokio::test]
    async fn the_first_failure_is_reported_as_is() {
        let inner = counting(0);
        inner.fail.store(true, Ordering::SeqCst);
        let cache = CachedSource::new(inner.clone(), settings(60_000, 180_000));
        let err = cache.collect().await.unwrap_err().to_string();
        assert_eq!(err, "refresh 1 failed");
        // Not due again yet: the same error, no new request.
        let err = cache.collect().await.unwrap_err().to_string();
        assert_eq!(err, "refresh 1 failed");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_start_delay_stays_within_the_spread() {
        let minute = Duration::from_secs(60);
        assert_eq!(start_delay(minute, 0.0), Duration::ZERO);
        assert_eq!(start_delay(minute, 0.5), Duration::from_secs(30));
        assert!(start_delay(minute, 0.999_999) < minute);
        assert_eq!(start_delay(minute, 7.0), minute);
    }

    #[test]
    fn a_fleet_restarted_with_a_start_spread_is_even_from_the_second_interval_on() {
        // 10,000 exporters restarted in the same second, each holding its first refresh back
        // by start_delay and refreshing one jittered interval after each: ~167 refreshes a
        // second, the busiest second at most 1.5x the mean from the second interval on (~1.25x
        // seen: binomial noise; without the spread the first second holds all 10,000).
        let cache = CachedSource::new(counting(0), settings(1000, 3000));
        let interval = Duration::from_secs(60);
        let mut times = Vec::new();
        for _ in 0..10_000 {
            let mut at = start_delay(interval, cache.uniform()).as_secs_f64();
            let mut started = 1;
            while at < 300.0 {
                times.push(at);
                at += next_refresh_delay(started, interval, cache.uniform()).as_secs_f64();
                started += 1;
            }
        }
        // The first interval has no start-up burst (its last seconds also hold the second
        // refreshes of the earliest exporters: up to ~1.5x there).
        let first = peak_over_mean(&times, 0.0, 60.0);
        let later = peak_over_mean(&times, 60.0, 300.0);
        assert!(first <= 2.0, "{first}");
        assert!(later <= 1.5, "{later}");
    }

    #[tokio::test]
    async fn a_held_back_first_refresh_says_when_it_starts_then_starts_on_time() {
        let inner = counting(0);
        let mut cache = CachedSource::new(inner.clone(), settings(60_000, 180_000));
        // A fixed draw: u = 0.595, so the first refresh is due about 1.19 s after start-up.
        cache.random = AtomicU64::new(12345);
        let cache = cache.with_start_spread(Duration::from_secs(2));
        let due = cache.state.lock().unwrap().next_refresh.unwrap();
        assert!(due > Instant::now() + Duration::from_millis(900), "{due:?}");
        assert!(
            due < Instant::now() + Duration::from_millis(1300),
            "{due:?}"
        );
        let err = cache.collect().await.unwrap_err().to_string();
        assert!(err.contains("the first refresh starts in 2s"), "{err}");
        assert!(err.contains("--no-collector.start-spread"), "{err}");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 0);
        // It starts at its time without waiting for a scrape.
        tokio::time::sleep_until((due + Duration::from_millis(100)).into()).await;
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        let usage = cache.collect().await.unwrap();
        assert_eq!(usage.instances[0].uuid, "refresh-1");
        // The second refresh is one jittered interval on, not at a random phase.
        let next = cache.state.lock().unwrap().next_refresh.unwrap();
        assert!(next >= Instant::now() + Duration::from_secs(50), "{next:?}");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }
}
