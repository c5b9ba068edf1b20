//! Lazy arrival-time streams: one arrival at a time, constant memory, integer microseconds.
//!
//! Staged processes run each stage at its own rate. For Poisson, gamma and constant processes a stage
//! change restarts the gap at the stage boundary (exact for Poisson, which is memoryless). The
//! normalized-exponential process places exactly `n = round(rate x duration)` arrivals in each stage:
//! the normalised partial sums of exponential gaps are distributed like sorted uniform points, so the
//! arrivals are generated as the order statistics of `n` uniforms on the stage, one at a time, each
//! from the previous (the minimum of the `m` points left above `u` is `u + (1 - u)(1 - V^(1/m))`).
//! The per-second Poisson process (inference-perf's `poisson`) draws a Poisson count for each
//! one-second slot and spreads it over the slot with exponential gaps rescaled to fill it, until the
//! stage's `floor(rate x duration)` requests are out.
//!
//! Stages run back to back, or, with `betweenStages.drain`, the stream stops after each stage until
//! [`ArrivalStream::release`] names the next stage's start (the generator does, once every request of
//! the stage has finished and the pause has passed).

use rand::Rng;
use rand_distr::{Distribution, Exp1, Gamma, Poisson};

use super::spec::{ArrivalProcess, ArrivalSpec};
use crate::rng::SimRng;

/// Converts seconds to whole microseconds, saturating (inputs are validated finite and positive).
pub(crate) fn secs_to_us(s: f64) -> i64 {
    (s * 1e6).round() as i64
}

#[derive(Clone, Debug)]
struct Stage {
    /// Length of the stage's window (µs).
    span_us: i64,
    rate: f64,
    /// Exact arrival count (normalized-exponential and per-second Poisson).
    count: u64,
}

#[derive(Clone, Debug)]
enum Kind {
    Poisson,
    /// Gamma with unit scale; gaps are this times `cv^2 / rate`.
    Gamma(Gamma<f64>, f64),
    Constant,
    NormalizedExponential,
    PoissonPerSecond,
}

/// A lazy stream of non-decreasing arrival times (µs) for one arrival process.
#[derive(Clone, Debug)]
pub(crate) struct ArrivalStream {
    kind: Kind,
    stages: Vec<Stage>,
    idx: usize,
    /// Start of the current stage (µs).
    origin_us: i64,
    /// Arrivals must come before this time (the run's horizon).
    horizon_us: i64,
    last_us: i64,
    /// Exact (unrounded) offset of the last arrival from the current stage's start, in µs.
    offset_exact: f64,
    /// Arrivals already placed in this stage.
    placed: u64,
    /// Normalized-exponential: the last uniform point.
    u: f64,
    /// Per-second Poisson: start of the current one-second slot (µs after the stage start) and the
    /// rest of the slot's arrival offsets, as cumulative fractions of the slot, next last.
    slot_us: f64,
    slot_open: bool,
    slot_left: Vec<f64>,
    /// Stages wait for [`Self::release`] instead of following each other.
    gated: bool,
    waiting: bool,
    done: bool,
    rng: SimRng,
}

impl ArrivalStream {
    /// Builds the stream for a validated spec; `horizon_s` caps it (stop starting arrivals after it).
    /// Returns `None` only for a spec that validation rejects.
    pub(crate) fn new(spec: &ArrivalSpec, horizon_s: Option<f64>, rng: SimRng) -> Option<Self> {
        let horizon_us = horizon_s.map(secs_to_us).unwrap_or(i64::MAX);
        let per_second = spec.process == ArrivalProcess::PoissonPerSecond;
        let exact = |rate: f64, d: f64, given: Option<i64>| match given {
            Some(n) => n.max(0) as u64,
            None if per_second => (rate * d).floor().max(0.0) as u64,
            None => (rate * d).round().max(0.0) as u64,
        };
        let mut stages = Vec::new();
        match (&spec.rate_per_second, &spec.stages) {
            (Some(rate), None) => {
                let count = horizon_s.map(|d| exact(*rate, d, None)).unwrap_or(u64::MAX);
                stages.push(Stage { span_us: horizon_us, rate: *rate, count });
            }
            (None, Some(list)) if !list.is_empty() => {
                for s in list {
                    let span_us = secs_to_us(s.duration_seconds).max(1);
                    let count = exact(s.rate_per_second, s.duration_seconds, s.requests);
                    stages.push(Stage { span_us, rate: s.rate_per_second, count });
                }
            }
            _ => return None,
        }
        let kind = match spec.process {
            ArrivalProcess::Poisson => Kind::Poisson,
            ArrivalProcess::Constant => Kind::Constant,
            ArrivalProcess::NormalizedExponential => Kind::NormalizedExponential,
            ArrivalProcess::PoissonPerSecond => Kind::PoissonPerSecond,
            ArrivalProcess::Gamma => {
                let cv = spec.cv?;
                let cv2 = cv * cv;
                Kind::Gamma(Gamma::new(1.0 / cv2, 1.0).ok()?, cv2)
            }
        };
        Some(Self {
            kind,
            stages,
            idx: 0,
            origin_us: 0,
            horizon_us,
            last_us: 0,
            offset_exact: 0.0,
            placed: 0,
            u: 0.0,
            slot_us: 0.0,
            slot_open: false,
            slot_left: Vec::new(),
            gated: spec.between_stages.as_ref().is_some_and(|b| b.drain),
            waiting: false,
            done: false,
            rng,
        })
    }

    /// Gap to the next arrival in (fractional) microseconds at `rate` per second.
    fn gap_us(&mut self, rate: f64) -> f64 {
        let mean_us = 1e6 / rate;
        match &self.kind {
            Kind::Poisson => {
                let e: f64 = Exp1.sample(&mut self.rng);
                e * mean_us
            }
            Kind::Gamma(g, cv2) => g.sample(&mut self.rng) * cv2 * mean_us,
            Kind::Constant | Kind::NormalizedExponential | Kind::PoissonPerSecond => mean_us,
        }
    }

    /// The next arrival time, or `None` once the process (or the horizon) is over, or while a drained
    /// stage waits for [`Self::release`].
    pub(crate) fn next_arrival(&mut self) -> Option<i64> {
        loop {
            if self.done || self.waiting {
                return None;
            }
            let t = match self.kind {
                Kind::NormalizedExponential => self.next_normalized(),
                Kind::PoissonPerSecond => self.next_per_second(),
                _ => self.next_renewal(),
            };
            match t {
                Some(t) if t < self.horizon_us => {
                    self.last_us = t;
                    return Some(t);
                }
                Some(_) => {
                    self.done = true;
                    return None;
                }
                None if self.idx + 1 >= self.stages.len() => {
                    self.done = true;
                    return None;
                }
                None if self.gated => {
                    self.waiting = true;
                    return None;
                }
                None => {
                    // Back to back: the next stage starts when this one's window ends (or, for a
                    // per-second process that ran late, at its last arrival).
                    let end = self.origin_us.saturating_add(self.stages[self.idx].span_us);
                    let start = match self.kind {
                        Kind::PoissonPerSecond if self.placed > 0 => end.max(self.last_us),
                        _ => end,
                    };
                    self.begin_stage(start);
                }
            }
        }
    }

    fn begin_stage(&mut self, start_us: i64) {
        self.idx += 1;
        self.origin_us = start_us;
        self.offset_exact = 0.0;
        self.placed = 0;
        self.u = 0.0;
        self.slot_us = 0.0;
        self.slot_open = false;
        self.slot_left.clear();
    }

    /// Whether the stream has finished a drained stage and waits for [`Self::release`].
    pub(crate) fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// Starts the next stage at `at_us` after a drained stage (no-op unless waiting).
    pub(crate) fn release(&mut self, at_us: i64) {
        if self.waiting {
            self.waiting = false;
            self.begin_stage(at_us.max(self.last_us));
        }
    }

    /// Index of the stage of the last arrival handed out.
    pub(crate) fn stage(&self) -> usize {
        self.idx
    }

    /// Start time of the current stage (µs).
    pub(crate) fn stage_start_us(&self) -> i64 {
        self.origin_us
    }

    /// The current stage's nominal rate and window length (s), and its exact count when it has one.
    pub(crate) fn stage_shape(&self) -> (f64, f64, Option<u64>) {
        let s = &self.stages[self.idx];
        let exact = matches!(self.kind, Kind::NormalizedExponential | Kind::PoissonPerSecond);
        (s.rate, s.span_us as f64 / 1e6, exact.then_some(s.count).filter(|&c| c != u64::MAX))
    }

    fn next_renewal(&mut self) -> Option<i64> {
        let stage = &self.stages[self.idx];
        let (start, rate) = (self.origin_us, stage.rate);
        let end = start.saturating_add(stage.span_us);
        let offset = self.offset_exact + self.gap_us(rate);
        // Gaps are at least 1 µs; rounding the exact offset avoids accumulating rounding drift.
        let t = start.saturating_add(crate::float::round(offset) as i64).max(self.last_us.saturating_add(1));
        if t < end {
            self.offset_exact = offset;
            return Some(t);
        }
        None
    }

    fn next_normalized(&mut self) -> Option<i64> {
        let stage = &self.stages[self.idx];
        if self.placed >= stage.count {
            return None;
        }
        let left = (stage.count - self.placed) as f64;
        let span = stage.span_us;
        let v = 1.0 - self.rng.random::<f64>(); // in (0, 1]
        let step = -(v.ln() / left).exp_m1(); // 1 - v^(1/left), in [0, 1)
        self.u += (1.0 - self.u) * step;
        self.placed += 1;
        let offset = ((span as f64) * self.u).floor() as i64;
        let t = self.origin_us + offset.clamp(0, span - 1);
        Some(t.max(self.last_us))
    }

    fn next_per_second(&mut self) -> Option<i64> {
        let (count, rate) = (self.stages[self.idx].count, self.stages[self.idx].rate);
        if self.placed >= count {
            return None;
        }
        while self.slot_left.is_empty() {
            if self.slot_open {
                self.slot_us += 1e6;
            }
            self.slot_open = true;
            let n = Poisson::new(rate).map_or(0.0, |p| p.sample(&mut self.rng)) as usize;
            // An empty second passes without arrivals.
            let mut sum = 0.0;
            for _ in 0..n {
                let g: f64 = Exp1.sample(&mut self.rng);
                sum += g;
                self.slot_left.push(sum);
            }
            // Cumulative fractions of the slot, stored last-first so the next one pops off the end.
            self.slot_left.reverse();
            for c in &mut self.slot_left {
                *c /= sum;
            }
        }
        let frac = self.slot_left.pop()?;
        self.placed += 1;
        let t = self.origin_us.saturating_add((self.slot_us + frac * 1e6).round() as i64);
        Some(t.max(self.last_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::workload::spec::StageSpec;

    fn spec(process: ArrivalProcess, rate: f64, cv: Option<f64>) -> ArrivalSpec {
        ArrivalSpec { process, rate_per_second: Some(rate), stages: None, cv, between_stages: None }
    }

    fn take(s: &ArrivalSpec, horizon: Option<f64>, n: usize, seed: u64) -> Vec<i64> {
        let mut a = ArrivalStream::new(s, horizon, rng::stream(seed, "test.arrival")).unwrap();
        std::iter::from_fn(|| a.next_arrival()).take(n).collect()
    }

    fn gaps(ts: &[i64]) -> Vec<f64> {
        let mut prev = 0;
        ts.iter()
            .map(|&t| {
                let g = (t - prev) as f64;
                prev = t;
                g
            })
            .collect()
    }

    fn mean_cv(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
        (m, var.sqrt() / m)
    }

    #[test]
    fn poisson_rate_and_cv() {
        let ts = take(&spec(ArrivalProcess::Poisson, 20.0, None), None, 20_000, 1);
        assert_eq!(ts.len(), 20_000);
        let rate = 20_000.0 / (*ts.last().unwrap() as f64 / 1e6);
        assert!((rate - 20.0).abs() / 20.0 < 0.03, "rate {rate}");
        let (_, cv) = mean_cv(&gaps(&ts));
        assert!((cv - 1.0).abs() < 0.05, "cv {cv}");
    }

    #[test]
    fn gamma_rate_and_cv() {
        for target in [0.5, 2.0, 3.5] {
            let ts = take(&spec(ArrivalProcess::Gamma, 50.0, Some(target)), None, 20_000, 2);
            let rate = 20_000.0 / (*ts.last().unwrap() as f64 / 1e6);
            assert!((rate - 50.0).abs() / 50.0 < 0.06, "cv {target}: rate {rate}");
            let (_, cv) = mean_cv(&gaps(&ts));
            assert!((cv - target).abs() / target < 0.10, "target {target}: measured {cv}");
        }
    }

    #[test]
    fn constant_gaps_are_exact() {
        let ts = take(&spec(ArrivalProcess::Constant, 4.0, None), None, 1000, 3);
        assert_eq!(ts[0], 250_000);
        assert!(gaps(&ts).iter().all(|&g| g == 250_000.0));
        let ts = take(&spec(ArrivalProcess::Constant, 3.0, None), None, 3000, 3);
        assert_eq!(*ts.last().unwrap(), 1_000_000_000, "no rounding drift");
    }

    #[test]
    fn horizon_stops_arrivals() {
        let ts = take(&spec(ArrivalProcess::Poisson, 100.0, None), Some(10.0), usize::MAX, 4);
        assert!(ts.iter().all(|&t| t < 10_000_000));
        assert!((ts.len() as f64 - 1000.0).abs() < 120.0, "{}", ts.len());
    }

    #[test]
    fn normalized_exponential_exact_counts_per_stage() {
        let s = ArrivalSpec {
            process: ArrivalProcess::NormalizedExponential,
            rate_per_second: None,
            stages: Some(vec![
                StageSpec { rate_per_second: 5.0, duration_seconds: 600.0, requests: None },
                StageSpec { rate_per_second: 10.0, duration_seconds: 600.0, requests: None },
                StageSpec { rate_per_second: 0.35, duration_seconds: 10.0, requests: None },
            ]),
            cv: None,
            between_stages: None,
        };
        for seed in 0..5 {
            let ts = take(&s, None, usize::MAX, seed);
            assert_eq!(ts.len(), 3000 + 6000 + 4);
            assert!(ts.windows(2).all(|w| w[0] <= w[1]));
            assert!(ts[..3000].iter().all(|&t| (0..600_000_000).contains(&t)));
            assert!(ts[3000..9000].iter().all(|&t| (600_000_000..1_200_000_000).contains(&t)));
            assert!(ts[9000..].iter().all(|&t| (1_200_000_000..1_210_000_000).contains(&t)));
            // Gaps inside a stage look exponential (cv ~ 1).
            let inner: Vec<f64> = ts[3000..9000].windows(2).map(|w| (w[1] - w[0]) as f64).collect();
            let (m, cv) = mean_cv(&inner);
            assert!((m - 100_000.0).abs() / 100_000.0 < 0.05, "mean gap {m}");
            assert!((cv - 1.0).abs() < 0.1, "cv {cv}");
        }
    }

    #[test]
    fn staged_poisson_follows_each_rate() {
        let s = ArrivalSpec {
            process: ArrivalProcess::Poisson,
            rate_per_second: None,
            stages: Some(vec![
                StageSpec { rate_per_second: 10.0, duration_seconds: 500.0, requests: None },
                StageSpec { rate_per_second: 40.0, duration_seconds: 500.0, requests: None },
            ]),
            cv: None,
            between_stages: None,
        };
        let ts = take(&s, None, usize::MAX, 5);
        let first = ts.iter().filter(|&&t| t < 500_000_000).count() as f64;
        let second = ts.len() as f64 - first;
        assert!((first - 5000.0).abs() < 300.0, "{first}");
        assert!((second - 20_000.0).abs() < 600.0, "{second}");
        assert!(ts.iter().all(|&t| t < 1_000_000_000));
    }
}
