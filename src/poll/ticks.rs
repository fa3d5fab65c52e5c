//! Due-time batching on the poller thread: the pollers due at one tick are
//! woken by one timer, not one timer each.
//!
//! Every poller's next poll is rounded up to a tick (20 ms at a 1 s
//! interval), so at 10,000 instances some 200 pollers share each tick. With
//! a tokio timer per poller the timer wheel was the largest user-space item
//! in the poller's profile; here a poller files its waker under its tick,
//! and one [`drive`] task sleeps to the earliest tick and wakes that tick's
//! pollers together. Everything lives on the poller thread: a thread-local
//! queue, no locks. Sleeps and the driver must run on the same thread.
//! A sleep dropped before its instant (a poll's timeout when the reply came
//! first) takes its waker back out, so it never wakes its task for nothing.

use crate::cache::prefetch;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::time::Instant;

#[derive(Default)]
struct Queue {
    /// Wakers of the sleeps due at each instant; None where a sleep was
    /// dropped before it (indices stay put: a sleep knows its own).
    due: BTreeMap<Instant, Vec<Option<Waker>>>,
    /// The instant the driver's timer is set for, if any.
    armed: Option<Instant>,
    /// The driver, to re-arm when an earlier instant is filed.
    driver: Option<Waker>,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// A sleep until `at` that shares its timer with every other sleep until
/// the same instant on this thread. Round `at` to a tick for sharing.
pub fn sleep_until(at: Instant) -> TickSleep {
    TickSleep {
        at,
        filed: None,
        done: false,
    }
}

/// The future of [`sleep_until`].
#[derive(Debug)]
pub struct TickSleep {
    at: Instant,
    /// Where its waker sits in the queue under `at`, once filed.
    filed: Option<usize>,
    /// Returned Ready: the driver has taken the waker (or is about to).
    done: bool,
}

impl Future for TickSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            self.done = true;
            return Poll::Ready(());
        }
        if self.filed.is_none() {
            // A task's waker does not change while it sleeps on the one
            // thread, so filing once is enough.
            let at = self.at;
            let (index, driver) = QUEUE.with(|q| {
                let mut q = q.borrow_mut();
                let wakers = q.due.entry(at).or_default();
                wakers.push(Some(cx.waker().clone()));
                let index = wakers.len() - 1;
                let driver = if q.armed.is_none_or(|armed| at < armed) {
                    q.driver.take()
                } else {
                    None
                };
                (index, driver)
            });
            if let Some(d) = driver {
                d.wake();
            }
            self.filed = Some(index);
        }
        Poll::Pending
    }
}

impl Drop for TickSleep {
    fn drop(&mut self) {
        let Some(index) = self.filed.filter(|_| !self.done) else {
            return;
        };
        let at = self.at;
        // An instant's list is taken whole when it comes, so a list still
        // filed under `at` is the one this sleep's index points into.
        // try_with: a sleep dropped while the thread ends finds no queue.
        let waker = QUEUE
            .try_with(|q| {
                q.borrow_mut()
                    .due
                    .get_mut(&at)
                    .and_then(|wakers| wakers.get_mut(index))
                    .and_then(Option::take)
            })
            .ok()
            .flatten();
        // Dropped outside the borrow.
        drop(waker);
    }
}

/// Pollers woken at a time: each chunk's tasks run before the driver wakes
/// the next, and the next chunk's task memory is asked for while they run.
/// Measured at 10,000 instances (BENCHMARKS.md, "Lean again, fourth
/// pass"): 8 and 16 alike, 32 and waking a whole tick at once less good.
const WAKE_CHUNK: usize = 16;

/// How much of a poller's task to ask for ahead: tokio's task header, the
/// poller's future after it (about 1.2 KB) and the task's trailer.
const TASK_BYTES: usize = 24 * crate::cache::LINE;

/// Ask the CPU for the task memory of the pollers these wakers wake: for
/// tokio's tasks a waker's data is the task's header, which its future
/// follows; for any other waker a wasted hint, never a fault.
fn prefetch_tasks<'a>(wakers: impl Iterator<Item = &'a Waker>) {
    for waker in wakers {
        prefetch(waker.data().cast(), TASK_BYTES);
    }
}

/// Wake every sleep whose instant has come, forever. Run it once on the
/// thread whose tasks use [`sleep_until`].
///
/// A tick's pollers are woken [`WAKE_CHUNK`] at a time: the driver wakes a
/// chunk, asks the CPU for the next chunk's task memory, and yields, so
/// the chunk runs (tokio's current-thread scheduler runs tasks in the
/// order they were woken) while those lines arrive. At 10,000 instances a
/// poller's task is cold when its tick comes; its cache misses were a
/// good part of a poll's user time.
pub async fn drive() {
    let mut timer = Box::pin(tokio::time::sleep_until(Instant::now()));
    let mut waking: VecDeque<Waker> = VecDeque::new();
    std::future::poll_fn(move |cx| loop {
        if !waking.is_empty() {
            let chunk = WAKE_CHUNK.min(waking.len());
            prefetch_tasks(waking.iter().skip(chunk).take(WAKE_CHUNK));
            for waker in waking.drain(..chunk) {
                waker.wake();
            }
            if !waking.is_empty() {
                // After the chunk just woken.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let now = Instant::now();
        let (due, next) = QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            let later = match now.checked_add(std::time::Duration::from_nanos(1)) {
                Some(after) => q.due.split_off(&after),
                None => BTreeMap::new(),
            };
            let due = std::mem::replace(&mut q.due, later);
            q.driver = Some(cx.waker().clone());
            q.armed = q.due.keys().next().copied();
            (due, q.armed)
        });
        // Woken outside the borrow, above: a wake only schedules the task.
        waking.extend(due.into_values().flatten().flatten());
        if !waking.is_empty() {
            prefetch_tasks(waking.iter().take(WAKE_CHUNK));
            continue;
        }
        let Some(at) = next else {
            // Nothing filed: a sleep that files wakes this driver.
            return Poll::Pending;
        };
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn every_sleep_wakes_at_or_soon_after_its_instant() {
        runtime().block_on(async {
            tokio::spawn(drive());
            let start = Instant::now();
            let mut tasks = Vec::new();
            // Several sleeps per instant, instants out of order, some filed
            // earlier than the one the driver is armed for.
            for i in [7u64, 3, 9, 3, 1, 7, 0, 12, 5, 5] {
                let at = start + Duration::from_millis(10 * i);
                tasks.push(tokio::spawn(async move {
                    sleep_until(at).await;
                    Instant::now().duration_since(at)
                }));
            }
            for t in tasks {
                let late = tokio::time::timeout(Duration::from_secs(2), t)
                    .await
                    .expect("a sleep never woke")
                    .unwrap();
                assert!(late < Duration::from_millis(50), "woke {late:?} late");
            }
        });
    }

    #[test]
    fn more_sleeps_than_a_chunk_at_one_instant_all_wake() {
        runtime().block_on(async {
            tokio::spawn(drive());
            // Nothing else is filed: a chunk that did not bring the driver
            // back for the next one would leave the rest asleep for good.
            let at = Instant::now() + Duration::from_millis(30);
            let count = 3 * WAKE_CHUNK + 5;
            let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(sleep_until(at))).collect();
            for t in tasks {
                tokio::time::timeout(Duration::from_secs(2), t)
                    .await
                    .expect("a sleep past the first chunk never woke")
                    .unwrap();
            }
            assert!(Instant::now() >= at);
        });
    }

    #[test]
    fn an_earlier_instant_filed_later_rearms_the_driver() {
        runtime().block_on(async {
            tokio::spawn(drive());
            let start = Instant::now();
            let far = tokio::spawn(sleep_until(start + Duration::from_secs(30)));
            tokio::time::sleep(Duration::from_millis(20)).await;
            let near = start + Duration::from_millis(60);
            tokio::time::timeout(Duration::from_millis(500), sleep_until(near))
                .await
                .expect("the driver stayed armed for the far instant");
            assert!(Instant::now() >= near);
            assert!(!far.is_finished());
            far.abort();
        });
    }

    #[test]
    fn a_sleep_dropped_before_its_instant_takes_its_waker_back() {
        runtime().block_on(async {
            let at = Instant::now() + Duration::from_secs(30);
            let filed = || {
                QUEUE.with(|q| {
                    q.borrow()
                        .due
                        .get(&at)
                        .map_or(0, |w| w.iter().flatten().count())
                })
            };
            let mut first = Box::pin(sleep_until(at));
            let mut second = Box::pin(sleep_until(at));
            std::future::poll_fn(|cx| {
                assert!(first.as_mut().poll(cx).is_pending());
                assert!(second.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            assert_eq!(filed(), 2);
            // A poll's timeout, dropped when the reply came first: its
            // task must not be woken at the instant for nothing.
            drop(first);
            assert_eq!(filed(), 1, "the dropped sleep's waker stayed filed");
            drop(second);
            assert_eq!(filed(), 0);
        });
    }

    #[test]
    fn a_past_instant_is_ready_at_once() {
        runtime().block_on(async {
            // No driver at all: nothing needs to be filed.
            tokio::time::timeout(
                Duration::from_millis(100),
                sleep_until(Instant::now() - Duration::from_millis(1)),
            )
            .await
            .unwrap();
        });
    }
}
