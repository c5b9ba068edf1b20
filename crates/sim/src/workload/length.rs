//! Samplers for token counts, turn counts and think times, built once from a validated [`LengthDist`].

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};

use super::spec::LengthDist;
use crate::rng::SimRng;

/// A ready-to-draw form of a [`LengthDist`] (parameters converted, cumulative weights precomputed).
#[derive(Clone, Debug)]
pub(crate) enum Sampler {
    Fixed(f64),
    /// Inclusive integer range.
    Uniform(i64, i64),
    Normal(Normal<f64>, Clamp),
    LogNormal(LogNormal<f64>, Clamp),
    Exponential(Exp<f64>, Clamp),
    /// Values and the running sum of their weights (inverse-CDF lookup).
    Empirical {
        values: Vec<f64>,
        cumulative: Vec<f64>,
    },
}

/// Optional clamping bounds applied to a continuous sample before rounding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clamp {
    lo: f64,
    hi: f64,
}

impl Clamp {
    fn new(min: Option<f64>, max: Option<f64>) -> Self {
        Self { lo: min.unwrap_or(f64::NEG_INFINITY), hi: max.unwrap_or(f64::INFINITY) }
    }

    fn apply(self, x: f64) -> f64 {
        x.max(self.lo).min(self.hi)
    }
}

impl Sampler {
    /// Builds the sampler; `None` only for parameters that [`super::spec::validate`] rejects.
    pub(crate) fn new(d: &LengthDist) -> Option<Self> {
        Some(match d {
            LengthDist::Fixed { value } => Sampler::Fixed(*value),
            LengthDist::Uniform { min, max } => {
                let (lo, hi) = (min.round() as i64, max.round() as i64);
                if lo > hi {
                    return None;
                }
                Sampler::Uniform(lo, hi)
            }
            LengthDist::Normal { mean, std_dev, min, max } => {
                Sampler::Normal(Normal::new(*mean, *std_dev).ok()?, Clamp::new(*min, *max))
            }
            LengthDist::Lognormal { mean, std_dev, mu, sigma, min, max } => {
                let (mu, sigma) = match (mean, std_dev, mu, sigma) {
                    (Some(m), Some(s), None, None) => {
                        // Moments of the log-normal itself -> parameters of the underlying normal.
                        let var_log = (1.0 + (s / m).powi(2)).ln();
                        (m.ln() - var_log / 2.0, var_log.sqrt())
                    }
                    (None, None, Some(mu), Some(sigma)) => (*mu, *sigma),
                    _ => return None,
                };
                Sampler::LogNormal(LogNormal::new(mu, sigma).ok()?, Clamp::new(*min, *max))
            }
            LengthDist::Exponential { mean, min, max } => {
                Sampler::Exponential(Exp::new(1.0 / mean).ok()?, Clamp::new(*min, *max))
            }
            LengthDist::Empirical { values } => {
                let mut acc = 0.0;
                let cumulative: Vec<f64> = values
                    .iter()
                    .map(|p| {
                        acc += p.weight;
                        acc
                    })
                    .collect();
                if !(acc.is_finite() && acc > 0.0) {
                    return None;
                }
                Sampler::Empirical { values: values.iter().map(|p| p.value).collect(), cumulative }
            }
        })
    }

    /// One real-valued draw (before rounding).
    pub(crate) fn sample_f64(&self, rng: &mut SimRng) -> f64 {
        match self {
            Sampler::Fixed(v) => *v,
            Sampler::Uniform(lo, hi) => rng.random_range(*lo..=*hi) as f64,
            Sampler::Normal(d, c) => c.apply(d.sample(rng)),
            Sampler::LogNormal(d, c) => c.apply(d.sample(rng)),
            Sampler::Exponential(d, c) => c.apply(d.sample(rng)),
            Sampler::Empirical { values, cumulative } => {
                let total = cumulative.last().copied().unwrap_or(0.0);
                let u = rng.random::<f64>() * total;
                // First value whose cumulative weight exceeds u (zero-weight values are never picked).
                let i = cumulative.partition_point(|&c| c <= u).min(values.len().saturating_sub(1));
                values.get(i).copied().unwrap_or(1.0)
            }
        }
    }

    /// A rounded count of at least 1 (tokens, turns).
    pub(crate) fn sample_count(&self, rng: &mut SimRng) -> u32 {
        let x = crate::float::round(self.sample_f64(rng));
        // `as` saturates (and maps NaN to 0), so this never panics.
        (x as u32).max(1)
    }

    /// A non-negative duration in microseconds, from a distribution in milliseconds.
    pub(crate) fn sample_ms_as_us(&self, rng: &mut SimRng) -> i64 {
        let us = crate::float::round(self.sample_f64(rng) * 1000.0);
        (us as i64).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::workload::spec::EmpiricalPoint;

    fn draws(d: &LengthDist, n: usize) -> Vec<u32> {
        let s = Sampler::new(d).expect("valid distribution");
        let mut r = rng::stream(7, "test.length");
        (0..n).map(|_| s.sample_count(&mut r)).collect()
    }

    fn mean(xs: &[u32]) -> f64 {
        xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64
    }

    #[test]
    fn fixed_is_constant_and_at_least_one() {
        assert!(draws(&LengthDist::Fixed { value: 42.0 }, 100).iter().all(|&x| x == 42));
        assert!(draws(&LengthDist::Fixed { value: 0.2 }, 10).iter().all(|&x| x == 1));
    }

    #[test]
    fn uniform_covers_inclusive_range_with_right_mean() {
        let xs = draws(&LengthDist::Uniform { min: 10.0, max: 20.0 }, 50_000);
        assert_eq!(*xs.iter().min().unwrap(), 10);
        assert_eq!(*xs.iter().max().unwrap(), 20);
        assert!((mean(&xs) - 15.0).abs() < 0.1, "mean {}", mean(&xs));
    }

    #[test]
    fn normal_is_clamped_and_centred() {
        let d = LengthDist::Normal { mean: 250.0, std_dev: 50.0, min: Some(200.0), max: Some(300.0) };
        let xs = draws(&d, 50_000);
        assert!(xs.iter().all(|&x| (200..=300).contains(&x)));
        assert!(xs.iter().filter(|&&x| x == 200).count() > 5000, "lower clamp should collect ~16% of mass");
        assert!((mean(&xs) - 250.0).abs() < 1.5, "mean {}", mean(&xs));
        let free = draws(&LengthDist::Normal { mean: 600.0, std_dev: 100.0, min: None, max: None }, 50_000);
        assert!((mean(&free) - 600.0).abs() < 3.0);
    }

    #[test]
    fn lognormal_mean_sd_form_hits_target_mean() {
        let d = LengthDist::Lognormal {
            mean: Some(600.0),
            std_dev: Some(200.0),
            mu: None,
            sigma: None,
            min: None,
            max: None,
        };
        let xs = draws(&d, 100_000);
        let m = mean(&xs);
        assert!((m - 600.0).abs() / 600.0 < 0.01, "mean {m}");
        let var = xs.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((var.sqrt() - 200.0).abs() / 200.0 < 0.05, "sd {}", var.sqrt());
    }

    #[test]
    fn lognormal_mu_sigma_form_and_clamp() {
        let d = LengthDist::Lognormal {
            mean: None,
            std_dev: None,
            mu: Some(5.0),
            sigma: Some(1.0),
            min: Some(16.0),
            max: Some(1000.0),
        };
        let xs = draws(&d, 50_000);
        assert!(xs.iter().all(|&x| (16..=1000).contains(&x)));
        // Median of the underlying log-normal is e^mu (clamping does not move it).
        let mut s = xs.clone();
        s.sort_unstable();
        let med = f64::from(s[s.len() / 2]);
        assert!((med - 5f64.exp()).abs() / 5f64.exp() < 0.03, "median {med}");
    }

    #[test]
    fn exponential_mean_and_bounds() {
        let xs = draws(&LengthDist::Exponential { mean: 300.0, min: None, max: None }, 100_000);
        assert!((mean(&xs) - 300.0).abs() / 300.0 < 0.02, "mean {}", mean(&xs));
        let ys = draws(&LengthDist::Exponential { mean: 300.0, min: Some(50.0), max: Some(400.0) }, 10_000);
        assert!(ys.iter().all(|&y| (50..=400).contains(&y)));
    }

    #[test]
    fn empirical_frequencies_follow_weights() {
        let d = LengthDist::Empirical {
            values: vec![
                EmpiricalPoint { value: 100.0, weight: 1.0 },
                EmpiricalPoint { value: 200.0, weight: 0.0 },
                EmpiricalPoint { value: 300.0, weight: 3.0 },
            ],
        };
        let xs = draws(&d, 40_000);
        let f100 = xs.iter().filter(|&&x| x == 100).count() as f64 / 40_000.0;
        assert!(xs.iter().all(|&x| x == 100 || x == 300), "zero-weight value drawn");
        assert!((f100 - 0.25).abs() < 0.01, "freq {f100}");
    }

    #[test]
    fn think_time_may_be_zero() {
        let s = Sampler::new(&LengthDist::Fixed { value: 0.0 }).unwrap();
        let mut r = rng::stream(1, "t");
        assert_eq!(s.sample_ms_as_us(&mut r), 0);
        let s = Sampler::new(&LengthDist::Fixed { value: 2.5 }).unwrap();
        assert_eq!(s.sample_ms_as_us(&mut r), 2500);
    }
}
