//! One task per instance: poll on a jittered interval over one kept
//! connection, fold each outcome into the instance's `Tracker`, publish the
//! verdict to its store `Slot`.
//!
//! Polls start at a random phase within the interval so a fleet's polls
//! spread over the second. A failed connection is dropped and re-made with
//! jittered exponential backoff capped at the interval, so a dead fleet never
//! becomes a connect storm. Only status changes are logged.

use super::ticks;
use crate::config::{MetricsFetch, Target};
use crate::judge::outcome::{Outcome, Status};
use crate::judge::rules::{Health, Tracker};
use crate::net::conn::{Conn, Plan};
use crate::net::extras::Refusable;
use crate::shutdown::ShutdownSignal;
use crate::state::record::{Kind, Sample};
use crate::state::store::{Slot, Store};
use crate::wire::exposition::{Exposition, FetchCounters};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, info, trace, warn};

/// Polls are due on multiples of interval / TICKS_PER_INTERVAL (within
/// [MIN_TICK, MAX_TICK]) so that many instances wake the poller thread
/// together: one wakeup serves a batch instead of one poll.
/// A 1 s interval gives 20 ms ticks: invisible next to the interval, and a
/// 200-instance fleet then wakes the thread for four polls at a time.
const TICKS_PER_INTERVAL: u32 = 50;
const MIN_TICK: Duration = Duration::from_millis(1);
const MAX_TICK: Duration = Duration::from_millis(20);

/// On demand, metrics polls continue while `/metrics` was scraped within
/// this many metrics intervals (the contract's 3: a scraper that misses
/// one or two scrapes still finds fresh data).
const SCRAPED_WITHIN_INTERVALS: u32 = 3;

/// First reconnect delay after a failure; doubles up to the interval.
const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// How often and how long to poll.
#[derive(Clone, Copy, Debug)]
pub struct PollSettings {
    pub interval: Duration,
    /// A whole poll: connect + write + read.
    pub timeout: Duration,
    /// How often a connected host-name target's name is looked up again.
    pub dns_refresh: Duration,
    /// How often a poll fetches INFO ALL for `/metrics`.
    pub metrics_interval: Duration,
    /// Whether it does so only while `/metrics` is scraped.
    pub metrics_fetch: MetricsFetch,
    /// How old a verdict may get before it is stale.
    pub stale_after: Duration,
}

impl PollSettings {
    /// The step polls are due on (see [`TICKS_PER_INTERVAL`]).
    fn tick(&self) -> Duration {
        (self.interval / TICKS_PER_INTERVAL).clamp(MIN_TICK, MAX_TICK)
    }

    /// The settings a config asks for.
    pub fn of(config: &crate::config::Config) -> PollSettings {
        PollSettings {
            interval: config.interval,
            timeout: config.timeout,
            dns_refresh: config.dns_refresh,
            metrics_interval: config.metrics_interval,
            metrics_fetch: config.metrics_fetch,
            stale_after: config.stale_after(),
        }
    }
}

/// The pollers of every watched instance, on one dedicated thread running
/// a single-threaded runtime.
///
/// Polls are tiny and many: on a multi-threaded runtime most of their CPU
/// went to waking and parking worker threads. One thread keeps every wakeup
/// local, and the HTTP side keeps its own worker threads. Tasks are added
/// and aborted from other threads through the runtime's handle, which is
/// how a config reload changes the fleet without touching unchanged
/// instances.
#[derive(Debug)]
pub struct Fleet {
    runtime: tokio::runtime::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
    store: Arc<Store>,
    /// Every poller reads its settings from here before each poll, so a
    /// reload that changes them restarts nothing.
    settings: tokio::sync::watch::Sender<PollSettings>,
    /// Each instance's target, shared with its task: one copy each.
    running: HashMap<String, (Arc<Target>, AbortHandle)>,
}

/// What a [`Fleet::apply`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub removed: usize,
    /// Same name, new URL, password or thresholds: restarted from scratch,
    /// answering with the last verdict until the first new poll.
    pub changed: usize,
    /// Only the labels changed: relabeled in place.
    pub relabeled: usize,
    /// Kept their connection and history.
    pub unchanged: usize,
    /// Names of the added and changed instances: their first verdicts are
    /// logged as one summary (see [`log_first_verdicts`]).
    pub fresh: Vec<String>,
}

impl Fleet {
    /// Start the poller thread with no instances; it runs until `shutdown`
    /// fires.
    pub fn start(
        store: Arc<Store>,
        settings: PollSettings,
        mut shutdown: ShutdownSignal,
    ) -> std::io::Result<Fleet> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let runtime = rt.handle().clone();
        let thread = std::thread::Builder::new()
            .name("redpulse-poll".into())
            .spawn(move || {
                // Tasks run while the thread sits in block_on; dropping the
                // runtime afterwards cancels every poller still running.
                rt.block_on(async {
                    tokio::select! {
                        _ = shutdown.wait() => {}
                        _ = ticks::drive() => {}
                    }
                });
            })?;
        Ok(Fleet {
            runtime,
            thread: Some(thread),
            store,
            settings: tokio::sync::watch::Sender::new(settings),
            running: HashMap::new(),
        })
    }

    /// Make the polled set equal `targets` (and the settings `settings`):
    /// start new instances, stop removed ones, restart changed ones, and
    /// leave the rest alone.
    pub fn apply(&mut self, targets: &[Arc<Target>], settings: PollSettings) -> Changes {
        let mut changes = Changes::default();
        self.settings.send_replace(settings);
        let wanted: HashMap<&str, &Target> =
            targets.iter().map(|t| (t.name.as_str(), &**t)).collect();
        self.running.retain(|name, (_, task)| {
            if wanted.contains_key(name.as_str()) {
                return true;
            }
            task.abort();
            self.store.remove(name);
            changes.removed += 1;
            false
        });
        for target in targets {
            let mut old_slot = None;
            if let Some((old, task)) = self.running.get_mut(&target.name) {
                if **old == **target {
                    changes.unchanged += 1;
                    continue;
                }
                if old.same_but_labels(target) {
                    if let Some(slot) = self.store.get(&target.name) {
                        slot.set_labels(target.labels.clone());
                    }
                    *old = target.clone();
                    changes.relabeled += 1;
                    continue;
                }
                task.abort();
                old_slot = self.store.get(&target.name);
                changes.changed += 1;
            } else {
                changes.added += 1;
            }
            changes.fresh.push(target.name.clone());
            let slot = Slot::new(
                &target.name,
                &target.addr(),
                target.tls.is_some(),
                target.labels.clone(),
            );
            if let Some(old) = &old_slot {
                slot.inherit(old);
            }
            // A restarted instance's new slot takes the old one's place in
            // one write: a health check in between must not find it gone.
            let slot = self.store.replace_slot(slot);
            let task = self.runtime.spawn(run(
                target.clone(),
                slot,
                self.store.clone(),
                self.settings.subscribe(),
                old_slot.is_some(),
            ));
            self.running
                .insert(target.name.clone(), (target.clone(), task.abort_handle()));
        }
        changes
    }

    /// Wait for the poller thread to end, once the shutdown signal given
    /// to [`Fleet::start`] has fired.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls start at a random phase within this much, at most, when a
/// restarted instance carries its last verdict: it is replaced soon, long
/// before it could turn stale.
const CARRIED_FIRST_POLL: Duration = Duration::from_secs(1);

async fn run(
    target: Arc<Target>,
    slot: Arc<Slot>,
    store: Arc<Store>,
    mut settings: tokio::sync::watch::Receiver<PollSettings>,
    carried: bool,
) {
    let polls = &store.polls;
    let mut rng = Jitter::seeded(&target.name);
    let mut tracker = Tracker::new(target.thresholds.clone());
    let mut conn: Option<Conn> = None;
    let mut failures: u32 = 0;
    let mut last_status: Option<Status> = None;
    let mut s = *settings.borrow_and_update();
    let phase = if carried {
        s.interval.min(CARRIED_FIRST_POLL)
    } else {
        s.interval
    };
    let mut next = Instant::now() + phase.mul_f64(rng.unit());
    // The first successful poll fetches the metrics sections; later ones
    // only every metrics_interval, and (on demand) only while /metrics is
    // scraped: a fleet nobody scrapes costs its servers health INFOs only.
    let mut metrics_due = Instant::now();
    let mut fetched_once = false;
    // Cumulative over this poller's metrics polls, shown with each fetch.
    let mut counters = FetchCounters::default();
    // This poller's latest verdict, kept to be warmed (below).
    let mut published: Option<Arc<crate::state::store::Published>> = None;
    loop {
        let mut tick = s.tick();
        ticks::sleep_until(on_tick(next, tick)).await;
        // Settings may have changed while this poller slept: a version
        // check per poll, the settings' lock only after a reload.
        if settings.has_changed().unwrap_or(false) {
            s = *settings.borrow_and_update();
            tick = s.tick();
        }
        let started = Instant::now();
        let metrics = started >= metrics_due
            && (!fetched_once
                || s.metrics_fetch == MetricsFetch::Always
                || store.scraped_within(
                    started.into_std(),
                    s.metrics_interval * SCRAPED_WITHIN_INTERVALS,
                ));
        let plan = Plan {
            deadline: started + s.timeout,
            metrics,
        };
        // What the poll's end writes is cold at 10,000 instances: asked
        // for now, it arrives during the round trip (BENCHMARKS.md, "Lean
        // again, fourth pass").
        slot.warm();
        tracker.warm();
        if let Some(p) = &published {
            p.warm();
        }
        let (outcome, exposition) = poll_once(&target, &mut conn, plan, s.dns_refresh, tick).await;
        let ok = matches!(outcome, Outcome::Polled { .. });
        let ended = Instant::now();
        let took = ended - started;
        polls.record(ok, took);
        if let Some(f) = exposition {
            let mut e = f.exposition;
            for r in Refusable::ALL {
                if f.refused & r as u8 != 0 {
                    counters.command_error(&r.label(&target.metrics));
                }
            }
            counters.key_checks_truncated += f.keys_truncated;
            counters.samples_dropped += u64::from(e.samples_dropped);
            e.counters = counters.clone();
            slot.set_exposition(e, started.into_std());
            metrics_due = started + s.metrics_interval;
            fetched_once = true;
        }
        // A verdict is as old as its result: stamp it when the poll ended,
        // so a poll that ran into its timeout is not born half stale.
        let health = tracker.observe(outcome, ended.into_std(), SystemTime::now());
        trace!(instance = %target.name, status = health.status.as_str(), elapsed_us = took.as_micros() as u64, "polled");
        let changed = last_status != Some(health.status);
        log_transition(&target, &health, &mut last_status);
        if let Some(recorder) = store.recorder.get() {
            slot.minute
                .lock()
                .expect("slot lock is never held across a panic")
                .add(
                    unix_minute(health.checked_at),
                    health.status,
                    latency_us(&health),
                    mem_ratio(&health),
                );
            if changed {
                recorder.record(sample_of(&slot, &health));
            }
        }
        published = Some(slot.publish_for(health, s.stale_after));

        next = if ok {
            failures = 0;
            // ±5 % keeps instances from drifting into lockstep.
            started + s.interval.mul_f64(0.95 + 0.1 * rng.unit())
        } else {
            failures = failures.saturating_add(1);
            let exp = BACKOFF_BASE.saturating_mul(1u32 << (failures - 1).min(16));
            // Capped so that, tick rounding included, the next attempt
            // starts within one interval of this one's end.
            let cap = s.interval.saturating_sub(tick);
            Instant::now() + exp.min(cap).mul_f64(0.5 + 0.5 * rng.unit())
        };
    }
}

fn latency_us(h: &Health) -> Option<u32> {
    h.latency
        .map(|l| l.as_micros().min(u32::MAX as u128) as u32)
}

/// used_memory / maxmemory, when there is a limit.
fn mem_ratio(h: &Health) -> Option<f32> {
    let s = h.snapshot.as_ref()?;
    match (s.used_memory, s.maxmemory) {
        (Some(used), Some(max)) if max > 0 => Some((used as f64 / max as f64) as f32),
        _ => None,
    }
}

fn unix_minute(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / 60)
}

/// What the history keeps of one verdict.
fn sample_of(slot: &Slot, h: &Health) -> Sample {
    let ident = slot.ident();
    Sample {
        kind: Kind::Instance,
        name: slot.name.clone(),
        at: h.checked_at,
        status: h.status,
        reason: h.reason().map(|r| r.as_str()),
        error: h.error.as_deref().map(Into::into),
        latency_us: latency_us(h),
        mem_ratio: mem_ratio(h),
        labels: (!ident.labels.is_empty()).then(|| ident.labels.clone()),
    }
}

/// What a metrics poll fetched beyond its verdict.
pub struct Fetched {
    pub exposition: Exposition,
    /// Bits of [`Refusable`] commands refused in this poll.
    pub refused: u8,
    /// Keys left out of this poll's checks past the cap.
    pub keys_truncated: u64,
}

/// One poll as `plan` says: reuse the connection, or make one first. A
/// connection that failed mid-poll is dropped. A metrics poll also gives
/// the samples and the bits of the metrics-only commands refused. The
/// poll's round trip ends at the first `tick` at or after its deadline, on
/// the timer the pollers due then share.
pub async fn poll_once(
    target: &Target,
    conn: &mut Option<Conn>,
    plan: Plan,
    dns_refresh: Duration,
    tick: Duration,
) -> (Outcome, Option<Fetched>) {
    let deadline = plan.deadline;
    if let Some(c) = conn.as_mut().filter(|c| c.lookup_due(dns_refresh)) {
        // Boxed: a lookup is rare, and its future would otherwise be room
        // in every instance's task (and an allocation in every poll).
        if !Box::pin(c.still_where_the_name_points(target, deadline, dns_refresh)).await {
            info!(instance = %target.name, addr = %target.addr(), "the name now resolves elsewhere; reconnecting");
            *conn = None;
        }
    }
    if conn.is_none() {
        // Boxed: connecting (DNS, TCP, TLS, AUTH) is rare and its future
        // is the largest part of a poll's; inline, every instance's task
        // would carry its room all the time.
        match Box::pin(Conn::connect(target, deadline)).await {
            Ok(c) => {
                let version = c
                    .server
                    .version()
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                debug!(instance = %target.name, addr = %target.addr(), version, "connected");
                *conn = Some(c);
            }
            Err(e) => {
                let failed = Outcome::Failed {
                    failure: e.failure,
                    tcp_connected: e.tcp_connected,
                };
                return (failed, None);
            }
        }
    }
    let c = conn.as_mut().expect("connection made above");
    // Boxed for the poll's duration only: the poll's state (a snapshot
    // being merged, the reply being read) is then not part of every idle
    // task; one allocation per poll is cheap next to its two syscalls.
    let expiry = ticks::sleep_until(on_tick(deadline, tick));
    let result = Box::pin(c.poll_until(plan, expiry)).await;
    let tls_peer = c.tls_peer();
    let usable = c.is_usable();
    if !usable {
        *conn = None;
    }
    match result {
        Ok(p) => {
            let polled = Outcome::Polled {
                snapshot: p.snapshot,
                latency: p.latency,
                tls: tls_peer,
            };
            let fetched = p.exposition.map(|e| Fetched {
                exposition: e,
                refused: p.refused,
                keys_truncated: p.keys_truncated,
            });
            (polled, fetched)
        }
        Err(failure) => {
            let failed = Outcome::Failed {
                failure,
                tcp_connected: usable,
            };
            (failed, None)
        }
    }
}

/// Log a status change. The first verdict is not a change: it goes into
/// the one summary line of [`log_first_verdicts`], so a fleet that starts
/// does not print a line per instance.
fn log_transition(target: &Target, h: &Health, last: &mut Option<Status>) {
    let first = last.is_none();
    if *last == Some(h.status) {
        return;
    }
    *last = Some(h.status);
    if first {
        return;
    }
    let reason = h.reason().map(|r| r.as_str());
    let error = h.error.as_deref();
    if h.status == Status::Ok {
        info!(instance = %target.name, addr = %target.addr(), status = h.status.as_str(), "instance healthy");
    } else {
        warn!(instance = %target.name, addr = %target.addr(), status = h.status.as_str(), reason, error, "instance unhealthy");
    }
}

/// Instances named one by one in the first-verdicts line at most; the rest
/// are counted.
const SUMMARY_NAMES: usize = 20;
/// How often the summary checks whether every first verdict is in.
const SUMMARY_CHECK: Duration = Duration::from_millis(100);

/// Wait until every instance in `names` has a first verdict (or `within`
/// has passed), then log one line: counts per status and the instances that
/// are not ok, worst first, by name up to [`SUMMARY_NAMES`].
pub async fn log_first_verdicts(store: Arc<Store>, names: Vec<String>, within: Duration) {
    if names.is_empty() {
        return;
    }
    let give_up = Instant::now() + within;
    let verdicts = loop {
        let now = std::time::Instant::now();
        let current: Vec<_> = names
            .iter()
            .filter_map(|n| Some((n, store.get(n)?)))
            .map(|(n, slot)| (n, slot.latest().map(|_| store.current(&slot, now))))
            .collect();
        let pending = current.iter().filter(|(_, c)| c.is_none()).count();
        if pending == 0 || Instant::now() >= give_up {
            break current;
        }
        tokio::time::sleep(SUMMARY_CHECK).await;
    };
    let mut counts = [0usize; 4];
    let mut pending = 0;
    let mut not_ok = Vec::new();
    for (name, c) in &verdicts {
        match c {
            None => pending += 1,
            Some(c) => {
                counts[c.status as usize] += 1;
                if c.status != Status::Ok {
                    not_ok.push((c.status, name.as_str(), c.reason.map(|r| r.as_str())));
                }
            }
        }
    }
    not_ok.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut listed: Vec<String> = not_ok
        .iter()
        .take(SUMMARY_NAMES)
        .map(|(status, name, reason)| {
            format!("{name} ({}: {})", status.as_str(), reason.unwrap_or("-"))
        })
        .collect();
    if not_ok.len() > SUMMARY_NAMES {
        listed.push(format!("and {} more", not_ok.len() - SUMMARY_NAMES));
    }
    let not_ok = listed.join(", ");
    // One line either way; a warning when something is already bad.
    macro_rules! summary {
        ($level:ident) => {
            $level!(
                instances = verdicts.len(),
                ok = counts[Status::Ok as usize],
                degraded = counts[Status::Degraded as usize],
                critical = counts[Status::Critical as usize],
                down = counts[Status::Down as usize],
                pending,
                not_ok,
                "first verdicts"
            )
        };
    }
    if not_ok.is_empty() && pending == 0 {
        summary!(info);
    } else {
        summary!(warn);
    }
}

/// Round `t` up to the next multiple of `tick` since the process epoch.
fn on_tick(t: Instant, tick: Duration) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let since = t.saturating_duration_since(epoch).as_nanos();
    let tick_ns = tick.as_nanos().max(1);
    let rounded = since.div_ceil(tick_ns) * tick_ns;
    epoch + Duration::from_nanos(rounded as u64)
}

/// A tiny xorshift generator: jitter needs spread, not quality, and this
/// keeps the poller free of a random-number dependency.
struct Jitter(u64);

impl Jitter {
    fn seeded(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        // FNV-1a of the name, mixed with the clock: distinct per instance
        // and per run.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        Jitter((h ^ ((nanos as u64) << 17)) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_in_range_and_spread() {
        let mut j = Jitter::seeded("cache-1");
        let samples: Vec<f64> = (0..10_000).map(|_| j.unit()).collect();
        assert!(samples.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        let low = samples.iter().filter(|&&x| x < 0.1).count();
        assert!((800..1200).contains(&low), "{low} of 10000 below 0.1");
    }

    #[test]
    fn due_times_round_up_to_ticks() {
        let tick = Duration::from_millis(5);
        let base = on_tick(Instant::now(), tick);
        assert_eq!(on_tick(base, tick), base, "a time on a tick stays");
        assert_eq!(on_tick(base + Duration::from_micros(1), tick), base + tick);
        assert_eq!(
            on_tick(base + Duration::from_micros(4999), tick),
            base + tick
        );
    }

    /// A restarted instance is never missing from the store, not even
    /// for the moment between its old slot and its new one: a health
    /// check then would answer 404 "unknown instance" for an instance the
    /// configuration never dropped.
    #[test]
    fn a_restarted_instance_is_never_missing() {
        let store = Arc::new(Store::new(Duration::from_secs(3)));
        let shutdown = crate::shutdown::Shutdown::new();
        let settings = PollSettings {
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
            dns_refresh: Duration::from_secs(3600),
            metrics_interval: Duration::from_secs(3600),
            metrics_fetch: MetricsFetch::OnDemand,
            stale_after: Duration::from_secs(3),
        };
        let mut fleet = Fleet::start(store.clone(), settings, shutdown.signal()).unwrap();
        // Nothing listens on a port of 0: a poll, should one come, fails
        // at once and stays on this machine.
        let target = |memory_critical: f64| {
            let mut t = Target::plain("x", "127.0.0.1", 0);
            t.thresholds = Arc::new(crate::config::thresholds::Thresholds {
                memory_critical,
                ..Default::default()
            });
            Arc::new(t)
        };
        fleet.apply(&[target(0.9)], settings);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut looks, mut missing) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    looks += 1;
                    missing += u64::from(store.get("x").is_none());
                }
                (looks, missing)
            })
        };
        let mut restarts = 0;
        for i in 0..20_000 {
            let changes = fleet.apply(&[target(0.9 + f64::from(i % 2 + 1) / 100.0)], settings);
            restarts += changes.changed;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (looks, missing) = reader.join().unwrap();
        assert_eq!(restarts, 20_000, "every apply restarted the instance");
        assert!(looks > 20_000, "the reader looked {looks} times");
        assert_eq!(missing, 0, "missing in {missing} of {looks} looks");
        shutdown.trigger();
        fleet.join();
    }

    #[test]
    fn different_names_get_different_phases() {
        let a = Jitter::seeded("a").unit();
        let b = Jitter::seeded("b").unit();
        assert_ne!(a, b);
    }
}

#[cfg(test)]
mod task_size {
    use super::*;

    /// Every watched instance keeps one poller task for its lifetime, so
    /// the task's size is memory per instance: rare work (connecting,
    /// re-resolving) and a poll's own state are boxed while they run.
    /// 4.6 KB before that, 1.2 KB after (the debug build's layout); the
    /// bound leaves a little room.
    const MAX_TASK_BYTES: usize = 1536;

    #[test]
    fn the_poller_task_stays_small() {
        let store = Arc::new(Store::new(Duration::from_secs(3)));
        let slot = store.insert("x", "127.0.0.1:1");
        let (_tx, rx) = tokio::sync::watch::channel(PollSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            dns_refresh: Duration::from_secs(1),
            metrics_interval: Duration::from_secs(1),
            metrics_fetch: MetricsFetch::OnDemand,
            stale_after: Duration::from_secs(3),
        });
        let task = run(
            Arc::new(Target::plain("x", "127.0.0.1", 1)),
            slot,
            store,
            rx,
            false,
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= MAX_TASK_BYTES, "a poller task takes {size} bytes");
    }
}
