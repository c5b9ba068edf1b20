//! Lazy arrival-time streams: one arrival at a time, constant memory, integer microseconds.
//!
//! Staged processes run each stage at its own rate. For Poisson, gamma and constant processes a stage
//! change restarts the gap at the stage boundary (exact for Poisson, which is memoryless). The
//! normalized-exponential process places exactly `n = round(rate x duration)` arrivals in each stage:
//! the normalised partial sums of exponential gaps are distributed like sorted uniform points, so the
//! arrivals are generated as the order statistics of `n` uniforms on the stage, one at a time, each
//! from the previous (the minimum of the `m` points left above `u` is `u + (1 - u)(1 - V^(1/m))`).

use rand::Rng;
use rand_distr::{Distribution, Exp1, Gamma};

use super::spec::{ArrivalProcess, ArrivalSpec};
use crate::rng::SimRng;

/// Converts seconds to whole microseconds, saturating (inputs are validated finite and positive).
pub(crate) fn secs_to_us(s: f64) -> i64 {
    (s * 1e6).round() as i64
}

#[derive(Clone, Debug)]
struct Stage {
    start_us: i64,
    end_us: i64,
    rate: f64,
    /// Exact arrival count (normalized-exponential only).
    count: u64,
}

#[derive(Clone, Debug)]
enum Kind {
    Poisson,
    /// Gamma with unit scale; gaps are this times `cv^2 / rate`.
    Gamma(Gamma<f64>, f64),
    Constant,
    NormalizedExponential,
}

/// A lazy stream of non-decreasing arrival times (µs) for one arrival process.
#[derive(Clone, Debug)]
pub(crate) struct ArrivalStream {
    kind: Kind,
    stages: Vec<Stage>,
    idx: usize,
    /// Arrivals must come before this time (the run's horizon).
    end_us: i64,
    last_us: i64,
    /// Exact (unrounded) offset of the last arrival from the current stage's start, in µs.
    offset_exact: f64,
    /// Normalized-exponential: arrivals already placed in this stage, and the last uniform point.
    placed: u64,
    u: f64,
    done: bool,
    rng: SimRng,
}

impl ArrivalStream {
    /// Builds the stream for a validated spec; `horizon_s` caps it (stop starting arrivals after it).
    /// Returns `None` only for a spec that validation rejects.
    pub(crate) fn new(spec: &ArrivalSpec, horizon_s: Option<f64>, rng: SimRng) -> Option<Self> {
        let horizon_us = horizon_s.map(secs_to_us).unwrap_or(i64::MAX);
        let mut stages = Vec::new();
        match (&spec.rate_per_second, &spec.stages) {
            (Some(rate), None) => {
                let count = horizon_s.map(|d| (rate * d).round().max(0.0) as u64).unwrap_or(0);
                stages.push(Stage { start_us: 0, end_us: horizon_us, rate: *rate, count });
            }
            (None, Some(list)) if !list.is_empty() => {
                let mut start = 0i64;
                for s in list {
                    let end = start.saturating_add(secs_to_us(s.duration_seconds).max(1));
                    let count = (s.rate_per_second * s.duration_seconds).round().max(0.0) as u64;
                    stages.push(Stage { start_us: start, end_us: end, rate: s.rate_per_second, count });
                    start = end;
                }
            }
            _ => return None,
        }
        let end_us = stages.last().map_or(0, |s| s.end_us).min(horizon_us);
        let kind = match spec.process {
            ArrivalProcess::Poisson => Kind::Poisson,
            ArrivalProcess::Constant => Kind::Constant,
            ArrivalProcess::NormalizedExponential => Kind::NormalizedExponential,
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
            end_us,
            last_us: 0,
            offset_exact: 0.0,
            placed: 0,
            u: 0.0,
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
            Kind::Constant | Kind::NormalizedExponential => mean_us,
        }
    }

    /// The next arrival time, or `None` once the process (or the horizon) is over.
    pub(crate) fn next_arrival(&mut self) -> Option<i64> {
        if self.done {
            return None;
        }
        let t = match self.kind {
            Kind::NormalizedExponential => self.next_normalized(),
            _ => self.next_renewal(),
        };
        match t {
            Some(t) if t < self.end_us => {
                self.last_us = t;
                Some(t)
            }
            _ => {
                self.done = true;
                None
            }
        }
    }

    fn next_renewal(&mut self) -> Option<i64> {
        loop {
            let stage = self.stages.get(self.idx)?;
            let (start, end, rate) = (stage.start_us, stage.end_us, stage.rate);
            let offset = self.offset_exact + self.gap_us(rate);
            // Gaps are at least 1 µs; rounding the exact offset avoids accumulating rounding drift.
            let t = start.saturating_add(offset.round() as i64).max(self.last_us.saturating_add(1));
            if t < end {
                self.offset_exact = offset;
                return Some(t);
            }
            self.idx += 1;
            // The next stage's first arrival comes one gap after its start (after every earlier arrival).
            self.offset_exact = 0.0;
        }
    }

    fn next_normalized(&mut self) -> Option<i64> {
        loop {
            let stage = self.stages.get(self.idx)?;
            if self.placed < stage.count {
                let left = (stage.count - self.placed) as f64;
                let v = 1.0 - self.rng.random::<f64>(); // in (0, 1]
                let step = -(v.ln() / left).exp_m1(); // 1 - v^(1/left), in [0, 1)
                self.u += (1.0 - self.u) * step;
                self.placed += 1;
                let span = stage.end_us - stage.start_us;
                let offset = ((span as f64) * self.u).floor() as i64;
                let t = stage.start_us + offset.clamp(0, span - 1);
                return Some(t.max(self.last_us));
            }
            self.idx += 1;
            self.placed = 0;
            self.u = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::workload::spec::StageSpec;

    fn spec(process: ArrivalProcess, rate: f64, cv: Option<f64>) -> ArrivalSpec {
        ArrivalSpec { process, rate_per_second: Some(rate), stages: None, cv }
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
                StageSpec { rate_per_second: 5.0, duration_seconds: 600.0 },
                StageSpec { rate_per_second: 10.0, duration_seconds: 600.0 },
                StageSpec { rate_per_second: 0.35, duration_seconds: 10.0 },
            ]),
            cv: None,
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
                StageSpec { rate_per_second: 10.0, duration_seconds: 500.0 },
                StageSpec { rate_per_second: 40.0, duration_seconds: 500.0 },
            ]),
            cv: None,
        };
        let ts = take(&s, None, usize::MAX, 5);
        let first = ts.iter().filter(|&&t| t < 500_000_000).count() as f64;
        let second = ts.len() as f64 - first;
        assert!((first - 5000.0).abs() < 300.0, "{first}");
        assert!((second - 20_000.0).abs() < 600.0, "{second}");
        assert!(ts.iter().all(|&t| t < 1_000_000_000));
    }
}
