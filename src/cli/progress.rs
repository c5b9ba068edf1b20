//! The progress bar of long runs: shown on stderr once a run has lasted a second, if stderr is a
//! terminal.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use blis_sim::sim::Observer;

/// Progress of one simulation, fed by the simulator's observer calls.
pub struct Progress {
    enabled: bool,
    started: Instant,
    label: String,
    bar: Option<ProgressBar>,
    total_us: Option<i64>,
}

impl Progress {
    /// A progress display for the run `label`, `total_us` of simulated time long when known.
    pub fn new(enabled: bool, label: &str, total_us: Option<i64>) -> Self {
        Self { enabled, started: Instant::now(), label: label.to_string(), bar: None, total_us }
    }
}

impl Observer for Progress {
    fn on_progress(&mut self, sim_us: i64, finished: u64) {
        if !self.enabled || self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = match self.total_us {
                Some(t) => ProgressBar::new(t.max(1) as u64).with_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {percent}% simulated, ETA {eta} {prefix}")
                        .expect("valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {prefix}").expect("valid template"),
                ),
            };
            b.set_message(self.label.clone());
            b
        });
        if self.total_us.is_some() {
            bar.set_position(sim_us.max(0) as u64);
        } else {
            bar.tick();
        }
        bar.set_prefix(format!("({:.0} s simulated, {finished} requests done)", sim_us as f64 / 1e6));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// A bar over candidates (sweeps, policy search), when `visible`.
pub fn candidates_bar(visible: bool, label: &str) -> Option<ProgressBar> {
    visible.then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} candidates, {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message(label.to_string());
        b
    })
}
