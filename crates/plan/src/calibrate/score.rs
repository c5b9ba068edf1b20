//! Scoring predictions against measurements, exactly as the validation README prescribes: APE per metric
//! on the pooled summary, ITL as a ratio of means, aggregation over experiments by median (plus mean and
//! worst case).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use blis_import::experiment::{Experiment, LatencySummary};
use blis_sim::metrics::SimOutput;

/// Number of scored metrics.
pub const NUM_METRICS: usize = 7;
/// Metric names, in [`Metrics`] order.
pub const METRIC_NAMES: [&str; NUM_METRICS] =
    ["e2e_mean", "e2e_p90", "e2e_p99", "ttft_mean", "ttft_p90", "ttft_p99", "itl_mean"];

/// The seven scored numbers (ms): e2e mean/p90/p99, ttft mean/p90/p99, itl mean. `None` = not available.
pub type Metrics = [Option<f64>; NUM_METRICS];

/// Percentile `p` (0..1) by linear interpolation between order statistics of sorted `x`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * f
}

/// The metrics of a simulated run (completed requests).
pub fn predicted(out: &SimOutput) -> Metrics {
    let n = out.completed.len();
    if n == 0 {
        return [None; NUM_METRICS];
    }
    let ms = |us: i64| us as f64 / 1e3;
    // Means sum in record order; the percentiles sort the integer microseconds (ms is monotonic in
    // them, so the sorted ms are the same).
    let mean = |us: &mut dyn Iterator<Item = i64>| us.map(ms).sum::<f64>() / n as f64;
    let e2e_mean = mean(&mut out.completed.iter().map(|r| r.e2e_us));
    let ttft_mean = mean(&mut out.completed.iter().map(|r| r.ttft_us));
    let out_mean = out.completed.iter().map(|r| f64::from(r.output_tokens)).sum::<f64>() / n as f64;
    // Only the ranks from the 90th percentile's up are needed: they are put in order, the ones
    // below them just before (unordered).
    let top = (0.9 * (n - 1) as f64).floor() as usize;
    let ranked_ms = |us: &mut dyn Iterator<Item = i64>| {
        let mut v: Vec<i64> = us.collect();
        v.select_nth_unstable(top);
        v[top..].sort_unstable();
        v.into_iter().map(ms).collect::<Vec<f64>>()
    };
    let e2e = ranked_ms(&mut out.completed.iter().map(|r| r.e2e_us));
    let ttft = ranked_ms(&mut out.completed.iter().map(|r| r.ttft_us));
    [
        Some(e2e_mean),
        Some(percentile(&e2e, 0.9)),
        Some(percentile(&e2e, 0.99)),
        Some(ttft_mean),
        Some(percentile(&ttft, 0.9)),
        Some(percentile(&ttft, 0.99)),
        Some((e2e_mean - ttft_mean) / (out_mean - 1.0).max(1.0)),
    ]
}

/// The metrics of a recorded summary (measured, or another simulator's prediction).
pub fn from_summary(s: &LatencySummary, itl: Option<f64>) -> Metrics {
    [
        Some(s.e2e_ms.mean),
        s.e2e_ms.p90,
        s.e2e_ms.p99,
        Some(s.ttft_ms.mean),
        s.ttft_ms.p90,
        s.ttft_ms.p99,
        itl.or(s.itl_ms.map(|i| i.mean)),
    ]
}

/// The measured metrics of an experiment.
pub fn measured(e: &Experiment) -> Metrics {
    from_summary(&e.measured.summary, Some(e.measured_itl()))
}

/// Absolute percentage errors of `pred` against `meas`.
pub fn ape(pred: &Metrics, meas: &Metrics) -> Metrics {
    let mut a = [None; NUM_METRICS];
    for k in 0..NUM_METRICS {
        if let (Some(p), Some(m)) = (pred[k], meas[k]) {
            if m != 0.0 && p.is_finite() {
                a[k] = Some(100.0 * (p - m).abs() / m.abs());
            }
        }
    }
    a
}

/// Median, mean and max of each metric's APE over a set of experiments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    /// Experiments aggregated.
    pub count: usize,
    /// Median APE per metric.
    pub median: Metrics,
    /// Mean APE per metric.
    pub mean: Metrics,
    /// Worst APE per metric.
    pub max: Metrics,
}

/// Aggregates APE rows.
pub fn aggregate<'a>(rows: impl Iterator<Item = &'a Metrics>) -> Aggregate {
    let rows: Vec<&Metrics> = rows.collect();
    let mut agg = Aggregate {
        count: rows.len(),
        median: [None; NUM_METRICS],
        mean: [None; NUM_METRICS],
        max: [None; NUM_METRICS],
    };
    for k in 0..NUM_METRICS {
        let mut v: Vec<f64> = rows.iter().filter_map(|r| r[k]).collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        agg.median[k] = Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 });
        agg.mean[k] = Some(v.iter().sum::<f64>() / n as f64);
        agg.max[k] = v.last().copied();
    }
    agg
}

/// One scored experiment.
#[derive(Debug, Clone)]
pub struct Scored {
    /// Experiment id.
    pub id: String,
    /// Model.
    pub model: String,
    /// GPU.
    pub gpu: String,
    /// Whether it was a fitting experiment (`train-*`/`extra-*`) or held out (`eval-*`).
    pub set: &'static str,
    /// Our prediction.
    pub predicted: Metrics,
    /// The measurement.
    pub measured: Metrics,
    /// Our APE.
    pub ape: Metrics,
    /// The reference simulator's published prediction, if any.
    pub reference: Option<Metrics>,
    /// Its APE.
    pub reference_ape: Option<Metrics>,
    /// Derived knobs and modelling choices.
    pub derived: Vec<String>,
    /// Warnings from scenario resolution.
    pub warnings: Vec<String>,
    /// Wall time of the simulation, s.
    pub wall_s: f64,
}

fn nested(m: &Metrics) -> Value {
    json!({
        "e2e_ms": {"mean": m[0], "p90": m[1], "p99": m[2]},
        "ttft_ms": {"mean": m[3], "p90": m[4], "p99": m[5]},
        "itl_ms": {"mean": m[6]},
    })
}

fn agg_json(a: &Aggregate) -> Value {
    json!({"count": a.count, "median": nested(&a.median), "mean": nested(&a.mean), "max": nested(&a.max)})
}

/// All the aggregates a report shows.
pub struct Report {
    /// The scored experiments.
    pub rows: Vec<Scored>,
    /// Over all experiments.
    pub all: Aggregate,
    /// Per GPU.
    pub by_gpu: BTreeMap<String, Aggregate>,
    /// Per set (`eval`, `fit`).
    pub by_set: BTreeMap<String, Aggregate>,
    /// The reference simulator over the experiments it published predictions for.
    pub reference: Aggregate,
    /// Ours over the same experiments.
    pub ours_on_reference: Aggregate,
    /// Reference per GPU.
    pub reference_by_gpu: BTreeMap<String, Aggregate>,
}

impl Report {
    /// Aggregates scored rows.
    pub fn new(rows: Vec<Scored>) -> Report {
        let all = aggregate(rows.iter().map(|r| &r.ape));
        let mut by_gpu = BTreeMap::new();
        let mut reference_by_gpu = BTreeMap::new();
        let gpus: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.gpu.as_str()).collect();
        for g in gpus {
            by_gpu.insert(g.to_string(), aggregate(rows.iter().filter(|r| r.gpu == g).map(|r| &r.ape)));
            let refs: Vec<&Metrics> =
                rows.iter().filter(|r| r.gpu == g).filter_map(|r| r.reference_ape.as_ref()).collect();
            if !refs.is_empty() {
                reference_by_gpu.insert(g.to_string(), aggregate(refs.into_iter()));
            }
        }
        let mut by_set = BTreeMap::new();
        for s in ["eval", "fit"] {
            let a = aggregate(rows.iter().filter(|r| r.set == s).map(|r| &r.ape));
            if a.count > 0 {
                by_set.insert(s.to_string(), a);
            }
        }
        let reference = aggregate(rows.iter().filter_map(|r| r.reference_ape.as_ref()));
        let ours_on_reference = aggregate(rows.iter().filter(|r| r.reference_ape.is_some()).map(|r| &r.ape));
        Report { rows, all, by_gpu, by_set, reference, ours_on_reference, reference_by_gpu }
    }

    /// The JSON document of `blis validate --output json`.
    pub fn to_json(&self) -> Value {
        let exps: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "model": r.model, "gpu": r.gpu, "set": r.set,
                    "predicted": nested(&r.predicted), "measured": nested(&r.measured), "ape": nested(&r.ape),
                    "reference_predicted": r.reference.as_ref().map(nested),
                    "reference_ape": r.reference_ape.as_ref().map(nested),
                    "derived": r.derived, "warnings": r.warnings,
                })
            })
            .collect();
        let by_gpu: serde_json::Map<String, Value> =
            self.by_gpu.iter().map(|(k, v)| (k.clone(), agg_json(v))).collect();
        let by_set: serde_json::Map<String, Value> =
            self.by_set.iter().map(|(k, v)| (k.clone(), agg_json(v))).collect();
        let ref_by_gpu: serde_json::Map<String, Value> =
            self.reference_by_gpu.iter().map(|(k, v)| (k.clone(), agg_json(v))).collect();
        json!({
            "experiments": exps,
            "summary": {
                "count": self.all.count,
                "median": nested(&self.all.median), "mean": nested(&self.all.mean), "max": nested(&self.all.max),
                "by_gpu": by_gpu, "by_set": by_set,
            },
            "reference": {
                "name": "blis_trained_physics",
                "summary": agg_json(&self.reference),
                "ours_on_same_experiments": agg_json(&self.ours_on_reference),
                "by_gpu": ref_by_gpu,
            },
        })
    }

    /// A plain-text table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<34} {:<14} {:>4} | {:>15} {:>15} {:>15} {:>13} {:>13} {:>13} {:>11}",
            "experiment",
            "gpu",
            "set",
            "e2e mean",
            "e2e p90",
            "e2e p99",
            "ttft mean",
            "ttft p90",
            "ttft p99",
            "itl mean"
        );
        let _ = writeln!(s, "{:<58} | (each: predicted/measured ms, APE % ours [reference])", "");
        for r in &self.rows {
            let mut line = format!("{:<34} {:<14} {:>4} |", trunc(&r.id, 34), trunc(&r.gpu, 14), r.set);
            for k in 0..NUM_METRICS {
                let refa = r.reference_ape.and_then(|a| a[k]).map_or(String::new(), |x| format!("[{x:.0}]"));
                let _ = write!(line, " {:>6}/{:<6}", f(r.predicted[k]), f(r.measured[k]));
                let _ = write!(line, " {:>4}{:<5}", f(r.ape[k]), refa);
            }
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "derived or assumed (unknown knobs and modelling choices):");
        for r in &self.rows {
            let _ = writeln!(s, "  {}: {}", r.id, r.derived.join("; "));
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<40} {:>4} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8}",
            "APE % (median / mean / max)",
            "n",
            "e2e",
            "e2e p90",
            "e2e p99",
            "ttft",
            "ttft p90",
            "ttft p99",
            "itl"
        );
        let mut agg_lines = |label: &str, a: &Aggregate| {
            for (what, m) in [("median", &a.median), ("mean", &a.mean), ("max", &a.max)] {
                let mut line = format!("{:<40} {:>4}", format!("{label} {what}"), a.count);
                for (k, w) in [8, 8, 8, 9, 9, 9, 8].iter().enumerate() {
                    let _ = write!(line, " {:>w$}", f(m[k]), w = *w);
                }
                let _ = writeln!(s, "{line}");
            }
        };
        agg_lines("all", &self.all);
        for (k, a) in &self.by_set {
            agg_lines(&format!("set {k}"), a);
        }
        for (k, a) in &self.by_gpu {
            agg_lines(&format!("gpu {k}"), a);
        }
        if self.reference.count > 0 {
            agg_lines("ours, where reference published", &self.ours_on_reference);
            agg_lines("reference blis_trained_physics", &self.reference);
            for (k, a) in &self.reference_by_gpu {
                agg_lines(&format!("reference gpu {k}"), a);
            }
        }
        s
    }
}

fn trunc(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The percentiles of a run, read from its partly ordered latencies, are those of the fully
    /// sorted ones (any count of records, ties and unordered input included).
    #[test]
    fn predicted_percentiles_are_those_of_the_sorted_latencies() {
        for n in [1usize, 2, 3, 10, 11, 99, 1000, 9001] {
            let mut out = SimOutput::default();
            let mut x = 0x2545_f491_4f6c_dd1du64;
            for i in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let ttft = (x % 5000) as i64;
                out.completed.push(blis_sim::metrics::RequestRecord {
                    id: i as u64,
                    class: 0,
                    instance: 0,
                    arrival_us: 0,
                    ttft_us: ttft,
                    e2e_us: ttft + (x >> 40) as i64 % 100_000,
                    itl_sum_us: 0,
                    queue_us: 0,
                    input_tokens: 1,
                    output_tokens: 2,
                    cached_tokens: 0,
                    preemptions: 0,
                });
            }
            let sorted = |f: fn(&blis_sim::metrics::RequestRecord) -> i64| {
                let mut v: Vec<f64> = out.completed.iter().map(|r| f(r) as f64 / 1e3).collect();
                v.sort_by(f64::total_cmp);
                v
            };
            let (e2e, ttft) = (sorted(|r| r.e2e_us), sorted(|r| r.ttft_us));
            let m = predicted(&out);
            let want = [
                percentile(&e2e, 0.9),
                percentile(&e2e, 0.99),
                percentile(&ttft, 0.9),
                percentile(&ttft, 0.99),
            ];
            assert_eq!([m[1], m[2], m[4], m[5]], want.map(Some), "{n} records");
        }
    }

    #[test]
    fn percentile_interpolates() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert!((percentile(&v, 0.9) - 3.7).abs() < 1e-12);
    }

    #[test]
    fn ape_and_aggregate() {
        let p = [Some(110.0), None, None, Some(90.0), None, None, Some(10.0)];
        let m = [Some(100.0), Some(1.0), None, Some(100.0), None, None, Some(10.0)];
        let a = ape(&p, &m);
        assert_eq!(a[0], Some(10.0));
        assert_eq!(a[1], None);
        assert!((a[3].unwrap() - 10.0).abs() < 1e-9);
        let b = [Some(20.0), None, None, Some(0.0), None, None, Some(0.0)];
        let agg = aggregate([a, b].iter());
        assert_eq!(agg.median[0], Some(15.0));
        assert_eq!(agg.max[0], Some(20.0));
        assert_eq!(agg.median[1], None);
    }
}
