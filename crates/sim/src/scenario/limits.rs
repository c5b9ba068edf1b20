//! Limits on a run or a batch of runs: a wall-clock deadline and a cap on simulated requests,
//! checked by an [`Observer`] while the simulation goes. The controller sets them, so one
//! oversized scenario or sweep cannot hold a worker for ever; the CLI runs without them.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::budget::Budget;
use crate::sim::Observer;

/// What one run (or one batch of runs) may use, as configured (the controller's flags).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall time.
    pub wall: Duration,
    /// Simulated requests finished by one run.
    pub max_requests: u64,
    /// Estimated memory of one run (see [`Budget`]), MiB.
    pub max_memory_mib: u64,
}

impl Limits {
    /// The budget a run is checked against before it starts: these requests and memory, the
    /// default bounds on replicas and KV blocks.
    pub fn budget(&self) -> Budget {
        Budget {
            max_requests: self.max_requests,
            max_memory_bytes: self.max_memory_mib as f64 * 1024.0 * 1024.0,
            ..Budget::default()
        }
    }

    /// These limits for a run (or batch) starting now.
    pub fn start(self) -> RunLimits {
        RunLimits { deadline: Instant::now() + self.wall, wall: self.wall, max_requests: self.max_requests }
    }
}

/// The limits of a run under way.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Stop after this instant (shared by every run of a batch).
    pub deadline: Instant,
    /// The wall time the deadline allows (for the message).
    pub wall: Duration,
    /// Stop once one run has finished more simulated requests than this.
    pub max_requests: u64,
}

/// Stops a run on cancellation or when it exceeds its limits, and says which limit.
pub struct LimitObserver<'a> {
    cancel: Option<&'a AtomicBool>,
    limits: Option<RunLimits>,
    finished: u64,
    why: Cell<Option<String>>,
}

impl<'a> LimitObserver<'a> {
    /// Watches `cancel` (if any) and `limits` (if any).
    pub fn new(cancel: Option<&'a AtomicBool>, limits: Option<RunLimits>) -> Self {
        Self { cancel, limits, finished: 0, why: Cell::new(None) }
    }

    /// The limit that stopped the run (`None` when it was cancelled or not stopped).
    pub fn exceeded(self) -> Option<String> {
        self.why.into_inner()
    }
}

impl Observer for LimitObserver<'_> {
    fn on_progress(&mut self, _sim_us: i64, finished: u64) {
        self.finished = finished;
    }

    fn should_stop(&self) -> bool {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return true;
        }
        let Some(l) = self.limits else { return false };
        if Instant::now() > l.deadline {
            self.why.set(Some(format!("wall time over {:.0} s", l.wall.as_secs_f64())));
            return true;
        }
        if self.finished > l.max_requests {
            self.why.set(Some(format!("more than {} simulated requests", l.max_requests)));
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_on_cancel_deadline_or_requests_and_says_which() {
        let flag = AtomicBool::new(false);
        let limits = Limits { wall: Duration::from_secs(3600), max_requests: 10, max_memory_mib: 64 }.start();
        let mut o = LimitObserver::new(Some(&flag), Some(limits));
        o.on_progress(0, 10);
        assert!(!o.should_stop());
        o.on_progress(0, 11);
        assert!(o.should_stop());
        assert_eq!(o.exceeded().as_deref(), Some("more than 10 simulated requests"));
        let past = RunLimits { deadline: Instant::now() - Duration::from_millis(1), ..limits };
        let o = LimitObserver::new(None, Some(past));
        assert!(o.should_stop() && o.exceeded().unwrap().contains("wall time over 3600 s"));
        let o = LimitObserver::new(Some(&flag), None);
        flag.store(true, Ordering::Relaxed);
        assert!(o.should_stop() && o.exceeded().is_none(), "cancelled, not limited");
    }
}
