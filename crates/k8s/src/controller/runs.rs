//! The runs in flight inside the controller, one per object uid: what inputs each runs and the flag
//! that cancels it. Shared by the scenario and sweep reconcilers.
//!
//! A run stays registered until its result is written to the API server (its [`RunGuard`] drops
//! then), so a reconcile that reads a cache lagging behind that write finds the run rather than
//! starting a second one; after the write, the reconciler confirms against the API server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One run: the hash of the inputs it simulates and its cancellation flag.
struct Run {
    hash: String,
    cancel: Arc<AtomicBool>,
}

/// The registry of runs in flight, keyed by object uid.
#[derive(Default)]
pub struct Runs(Mutex<HashMap<String, Run>>);

impl Runs {
    /// True while a run of exactly these inputs is registered for `uid`.
    pub fn running(&self, uid: &str, hash: &str) -> bool {
        self.0.lock().expect("lock").get(uid).is_some_and(|r| r.hash == hash)
    }

    /// Registers a run of `hash` for `uid`, cancelling the one it replaces; returns its flag.
    pub fn start(&self, uid: &str, hash: &str) -> Arc<AtomicBool> {
        let cancel = Arc::new(AtomicBool::new(false));
        let old = self
            .0
            .lock()
            .expect("lock")
            .insert(uid.into(), Run { hash: hash.into(), cancel: cancel.clone() });
        if let Some(old) = old {
            old.cancel.store(true, Ordering::Relaxed);
        }
        cancel
    }

    /// Cancels and forgets the run of `uid`, if any.
    pub fn cancel(&self, uid: &str) {
        if let Some(r) = self.0.lock().expect("lock").remove(uid) {
            r.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// True while the run with flag `cancel` is still the registered, uncancelled run of `uid`
    /// (so its result may be written).
    pub fn is_current(&self, uid: &str, cancel: &Arc<AtomicBool>) -> bool {
        self.0
            .lock()
            .expect("lock")
            .get(uid)
            .is_some_and(|r| Arc::ptr_eq(&r.cancel, cancel) && !cancel.load(Ordering::Relaxed))
    }

    /// Forgets the run with flag `cancel` unless a newer run of `uid` replaced it.
    fn forget(&self, uid: &str, cancel: &Arc<AtomicBool>) {
        let mut runs = self.0.lock().expect("lock");
        if runs.get(uid).is_some_and(|r| Arc::ptr_eq(&r.cancel, cancel)) {
            runs.remove(uid);
        }
    }

    /// Number of registered runs.
    pub fn len(&self) -> usize {
        self.0.lock().expect("lock").len()
    }

    /// True when no run is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forgets its run when dropped: hold it until the run's result (or its failure) is written.
pub struct RunGuard<'a> {
    runs: &'a Runs,
    uid: String,
    cancel: Arc<AtomicBool>,
}

impl<'a> RunGuard<'a> {
    /// Guards the run of `uid` whose flag is `cancel`.
    pub fn new(runs: &'a Runs, uid: &str, cancel: &Arc<AtomicBool>) -> Self {
        Self { runs, uid: uid.into(), cancel: cancel.clone() }
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.runs.forget(&self.uid, &self.cancel);
    }
}

/// Sets `cancel` once `gone` (polled every `period`) says the run's object is gone or replaced: the
/// backstop for a delete the watch never delivered (one made while the watch was down). Deletes
/// seen by the watch cancel at once through [`Runs::cancel`]. Abort the task when the run ends.
pub fn cancel_when_gone<F, Fut>(
    period: Duration,
    cancel: Arc<AtomicBool>,
    gone: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            if gone().await {
                cancel.store(true, Ordering::Relaxed);
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_run_cancels_the_older_and_survives_its_guard() {
        let runs = Runs::default();
        let a = runs.start("u", "h1");
        let guard_a = RunGuard::new(&runs, "u", &a);
        assert!(runs.running("u", "h1") && runs.is_current("u", &a));
        let b = runs.start("u", "h2");
        assert!(a.load(Ordering::Relaxed), "replaced run is cancelled");
        assert!(!runs.is_current("u", &a) && runs.is_current("u", &b));
        drop(guard_a);
        assert!(runs.running("u", "h2"), "the old run's guard must not forget the new run");
        drop(RunGuard::new(&runs, "u", &b));
        assert!(runs.is_empty(), "a finished run is forgotten");
    }

    #[test]
    fn a_run_stays_registered_until_its_guard_drops() {
        let runs = Runs::default();
        let a = runs.start("u", "h");
        let guard = RunGuard::new(&runs, "u", &a);
        // The result is being written: a reconcile on a stale cache must see the run.
        assert!(runs.running("u", "h"));
        drop(guard);
        assert!(!runs.running("u", "h"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_backstop_cancels_once_the_object_is_gone() {
        let cancel = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let p = polls.clone();
        let task = cancel_when_gone(Duration::from_secs(1), cancel.clone(), move || {
            let n = p.fetch_add(1, Ordering::Relaxed) + 1;
            async move { n >= 3 }
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!cancel.load(Ordering::Relaxed), "present at the first two polls");
        task.await.unwrap();
        assert!(cancel.load(Ordering::Relaxed));
        assert_eq!(polls.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn cancel_sets_the_flag_and_forgets() {
        let runs = Runs::default();
        let a = runs.start("u", "h");
        runs.start("v", "h");
        runs.cancel("u");
        assert!(a.load(Ordering::Relaxed) && !runs.is_current("u", &a));
        assert_eq!(runs.len(), 1);
        runs.cancel("missing");
        assert_eq!(runs.len(), 1);
    }
}
