//! One shutdown signal for the whole process. `main` creates a
//! [`Shutdown`] once and triggers it once (SIGTERM/SIGINT); the poller
//! thread, the HTTP server and the simulator each hold a
//! [`ShutdownSignal`] and stop when it fires. Dropping the `Shutdown`
//! counts as firing, so nothing can wait forever on a trigger that will
//! never come.

use tokio::sync::watch;

/// The trigger. Not `Clone`: one owner decides when the process stops.
#[derive(Debug)]
pub struct Shutdown(watch::Sender<bool>);

/// A handle that waits for the trigger. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl Shutdown {
    /// A trigger that has not fired.
    pub fn new() -> Self {
        Shutdown(watch::channel(false).0)
    }

    /// A handle for a part of the process that must stop on the trigger.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.0.subscribe())
    }

    /// Fire: every handle's [`ShutdownSignal::wait`] returns.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSignal {
    /// Return once the trigger fired (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped: stop as well.
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    /// Whether the trigger has fired.
    pub fn fired(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_signal_returns_after_one_trigger_and_late_ones_at_once() {
        let s = Shutdown::new();
        let mut a = s.signal();
        let mut b = a.clone();
        let waiting = tokio::spawn(async move { a.wait().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "returned before the trigger");
        s.trigger();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), b.wait())
            .await
            .unwrap();
        assert!(s.signal().fired());
    }

    #[tokio::test]
    async fn dropping_the_trigger_releases_the_waiters() {
        let s = Shutdown::new();
        let mut a = s.signal();
        drop(s);
        tokio::time::timeout(Duration::from_secs(1), a.wait())
            .await
            .unwrap();
    }
}
