//! Scoring a cluster stack the way `validation/cluster/README.md` says: per stage (or per file) the
//! APE of TTFT mean, TTFT p90 and output tok/s (and ITL mean where measured); the knee, the first
//! rate whose TTFT mean exceeds [`KNEE_FACTOR`] x the lowest rate's, real and predicted; the median
//! APE over the stages below the real knee and, separately, over those at or above it; the worst
//! stage.

use std::collections::BTreeMap;

use serde::Serialize;

use blis_import::cluster::Figures;

/// A stage is past the knee when its TTFT mean exceeds this multiple of the lowest rate's.
pub const KNEE_FACTOR: f64 = 5.0;

/// The scored figures, in table order.
pub const METRICS: [&str; 4] = ["ttft_mean", "ttft_p90", "output_tok_s", "itl_mean"];

/// The figures as an array in [`METRICS`] order.
pub fn values(f: &Figures) -> [Option<f64>; 4] {
    [f.ttft_mean_ms, f.ttft_p90_ms, f.output_tokens_per_s, f.itl_mean_ms]
}

/// Absolute percentage error of `predicted` against `measured`, when both are known and the
/// measurement is positive.
pub fn ape(predicted: Option<f64>, measured: Option<f64>) -> Option<f64> {
    let (p, m) = (predicted?, measured?);
    (m > 0.0 && p.is_finite()).then(|| (p - m).abs() / m * 100.0)
}

/// Median (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The knee of `(rate, ttft_mean)` points: the lowest rate whose TTFT mean exceeds
/// [`KNEE_FACTOR`] x the TTFT mean at the lowest rate of `exact`; `None` when no rate does.
/// `lower_bounds` are points whose TTFT mean is only known from below (a censored file): one
/// already past the threshold places the knee, one below it says nothing.
pub fn knee(exact: &[(f64, f64)], lower_bounds: &[(f64, f64)]) -> Option<f64> {
    let base = exact.iter().min_by(|a, b| a.0.total_cmp(&b.0))?.1;
    exact
        .iter()
        .chain(lower_bounds)
        .filter(|(_, t)| *t > KNEE_FACTOR * base)
        .map(|(r, _)| *r)
        .min_by(f64::total_cmp)
}

/// One point's TTFT means, for the knees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KneePoint {
    /// Rate (req/s).
    pub rate: f64,
    /// Measured TTFT mean (ms).
    pub measured: f64,
    /// Predicted TTFT mean (ms).
    pub predicted: f64,
    /// The measured value is a lower bound (only the requests that finished were logged).
    pub censored: bool,
}

/// One scored point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredPoint {
    /// Rate (req/s).
    pub rate: f64,
    /// APE % per metric ([`METRICS`] order).
    pub ape: [Option<f64>; 4],
}

/// The worst stage: where the largest APE of any metric is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Worst {
    /// Rate of the stage.
    pub rate: f64,
    /// Metric name.
    pub metric: &'static str,
    /// Its APE %.
    pub ape: f64,
}

/// A stack's scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    /// The measured knee (req/s).
    pub knee_measured: Option<f64>,
    /// The predicted knee (req/s).
    pub knee_predicted: Option<f64>,
    /// Stages below the measured knee (all stages when there is none).
    pub stages_below: usize,
    /// Stages at or above it.
    pub stages_above: usize,
    /// Median APE % per metric over the stages below the measured knee.
    pub median_below: BTreeMap<&'static str, f64>,
    /// Median APE % per metric over the stages at or above it.
    pub median_above: BTreeMap<&'static str, f64>,
    /// The worst stage.
    pub worst: Option<Worst>,
}

/// Scores a stack from its scored points; `knee_points` are the TTFT means of those points and
/// of its censored ones (lower bounds for the measured knee; their prediction is of the load sent).
pub fn score(points: &[ScoredPoint], knee_points: &[KneePoint]) -> Scores {
    let side = |censored: bool, f: fn(&KneePoint) -> f64| -> Vec<(f64, f64)> {
        knee_points.iter().filter(|k| k.censored == censored).map(|k| (k.rate, f(k))).collect()
    };
    let knee_measured = knee(&side(false, |k| k.measured), &side(true, |k| k.measured));
    let predicted: Vec<(f64, f64)> = knee_points.iter().map(|k| (k.rate, k.predicted)).collect();
    let knee_predicted = knee(&predicted, &[]);
    let below = |p: &ScoredPoint| knee_measured.is_none_or(|k| p.rate < k);
    let mut s = Scores { knee_measured, knee_predicted, ..Scores::default() };
    s.stages_below = points.iter().filter(|p| below(p)).count();
    s.stages_above = points.len() - s.stages_below;
    for (m, name) in METRICS.iter().enumerate() {
        let side = |want: bool| -> Vec<f64> {
            points.iter().filter(|p| below(p) == want).filter_map(|p| p.ape[m]).collect()
        };
        if let Some(v) = median(&side(true)) {
            s.median_below.insert(name, v);
        }
        if let Some(v) = median(&side(false)) {
            s.median_above.insert(name, v);
        }
    }
    for p in points {
        for (m, name) in METRICS.iter().enumerate() {
            if let Some(a) = p.ape[m] {
                if s.worst.as_ref().is_none_or(|w| a > w.ape) {
                    s.worst = Some(Worst { rate: p.rate, metric: name, ape: a });
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_knee_is_the_first_rate_past_five_times_the_lowest() {
        assert_eq!(knee(&[(10.0, 1.0), (3.0, 0.2), (20.0, 1.01), (30.0, 5.0)], &[]), Some(20.0));
        assert_eq!(knee(&[(3.0, 0.2), (10.0, 1.0)], &[]), None, "exactly 5x is not past it");
        assert_eq!(knee(&[], &[(1.0, 9.0)]), None, "no exact point, no base");
    }

    #[test]
    fn a_censored_point_places_the_knee_only_when_already_past_it() {
        let exact = [(1.0, 0.2), (4.0, 0.3)];
        assert_eq!(knee(&exact, &[(2.0, 1.5)]), Some(2.0), "a lower bound past 5x is past it");
        assert_eq!(knee(&exact, &[(2.0, 0.9)]), None, "a lower bound below 5x says nothing");
        assert_eq!(knee(&[(1.0, 0.2), (3.0, 2.0)], &[(2.0, 0.5)]), Some(3.0));
        let k = |rate, measured, predicted, censored| KneePoint { rate, measured, predicted, censored };
        let p = |rate| ScoredPoint { rate, ape: [Some(1.0), None, None, None] };
        let s = score(
            &[p(1.0), p(4.0)],
            &[
                k(1.0, 100.0, 100.0, false),
                k(2.0, 900.0, 150.0, true),
                k(3.0, 120.0, 700.0, true),
                k(4.0, 130.0, 800.0, false),
            ],
        );
        assert_eq!(
            (s.knee_measured, s.knee_predicted),
            (Some(2.0), Some(3.0)),
            "censored points count for both knees"
        );
        assert_eq!((s.stages_below, s.stages_above), (1, 1));
    }

    #[test]
    fn medians_split_at_the_measured_knee_and_the_worst_is_found() {
        let p = |rate, a: f64, b: f64| ScoredPoint { rate, ape: [Some(a), Some(b), None, None] };
        let points = [p(1.0, 10.0, 1.0), p(2.0, 30.0, 2.0), p(3.0, 50.0, 3.0), p(4.0, 5.0, 90.0)];
        let k = |rate, measured, predicted| KneePoint { rate, measured, predicted, censored: false };
        let knees = [k(1.0, 100.0, 100.0), k(2.0, 200.0, 900.0), k(3.0, 600.0, 700.0), k(4.0, 700.0, 800.0)];
        let s = score(&points, &knees);
        assert_eq!((s.knee_measured, s.knee_predicted), (Some(3.0), Some(2.0)));
        assert_eq!((s.stages_below, s.stages_above), (2, 2));
        assert_eq!(s.median_below["ttft_mean"], 20.0);
        assert_eq!(s.median_above["ttft_mean"], 27.5);
        assert_eq!(s.median_above["ttft_p90"], 46.5);
        assert!(!s.median_below.contains_key("output_tok_s"), "unmeasured metrics have no median");
        assert_eq!(s.worst, Some(Worst { rate: 4.0, metric: "ttft_p90", ape: 90.0 }));
        let none = score(&points, &[k(1.0, 1.0, 1.0), k(4.0, 2.0, 2.0)]);
        assert_eq!((none.stages_below, none.stages_above), (4, 0), "no knee: every stage is below");
    }

    #[test]
    fn ape_needs_both_values() {
        assert!((ape(Some(110.0), Some(100.0)).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(ape(None, Some(1.0)), None);
        assert_eq!(ape(Some(1.0), Some(0.0)), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }
}
