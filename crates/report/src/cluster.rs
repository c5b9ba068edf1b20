//! The cluster validation report: per stack, every stage (or file) predicted beside measured with
//! its APEs, then the knee and the median and worst scores; as text and as JSON.

use std::fmt::Write;

use serde_json::Value;

use blis_plan::cluster::score::{values, METRICS};
use blis_plan::cluster::{ClusterReport, StackResult};

/// Column headings of the metrics, in [`METRICS`] order.
const HEADINGS: [&str; 4] = ["TTFT mean ms", "TTFT p90 ms", "output tok/s", "ITL mean ms"];

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
        None => "-".into(),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.1}%"))
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "none".into(), |x| format!("{x}"))
}

fn stack_table(s: &StackResult, out: &mut String) {
    let _ = writeln!(out, "== {} / {}", s.experiment, s.stack);
    if let Some(r) = &s.not_scored {
        let _ = writeln!(out, "  NOT SCORED: {r}");
    }
    for n in &s.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    let shown: Vec<usize> =
        (0..4).filter(|&k| s.points.iter().any(|p| values(&p.measured)[k].is_some())).collect();
    let mut head = format!("  {:<16} {:>6}", "point", "n");
    for &k in &shown {
        let _ = write!(head, " | {:^26}", HEADINGS[k]);
    }
    let _ = writeln!(out, "{}", head.trim_end());
    let mut sub = format!("  {:<16} {:>6}", "", "");
    for _ in &shown {
        let _ = write!(sub, " | {:>8} {:>8} {:>8}", "meas", "pred", "APE");
    }
    let _ = writeln!(out, "{sub}");
    for p in &s.points {
        let m = values(&p.measured);
        let pr = p.predicted.as_ref().map(values).unwrap_or([None; 4]);
        let n = p.measured.n.map_or_else(|| "-".into(), |n| n.to_string());
        let mut line = format!("  {:<16} {:>6}", p.label, n);
        for &k in &shown {
            let _ = write!(line, " | {:>8} {:>8} {:>8}", num(m[k]), num(pr[k]), pct(p.ape[k]));
        }
        if let Some(u) = &p.unscored {
            let _ = write!(line, "  not scored: {u}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if s.not_scored.is_some() {
        let _ = writeln!(out);
        return;
    }
    let sc = &s.scores;
    let _ = writeln!(
        out,
        "  knee (TTFT mean > 5x the lowest rate's): measured {}, predicted {}",
        rate(sc.knee_measured),
        rate(sc.knee_predicted)
    );
    for (what, n, map) in [
        ("below the measured knee", sc.stages_below, &sc.median_below),
        ("at or above it", sc.stages_above, &sc.median_above),
    ] {
        let parts: Vec<String> =
            METRICS.iter().filter_map(|m| map.get(m).map(|v| format!("{m} {v:.1}%"))).collect();
        let body = if parts.is_empty() { "-".to_string() } else { parts.join(", ") };
        let _ = writeln!(out, "  median APE {what} ({n} stages): {body}");
    }
    match &sc.worst {
        Some(w) => {
            let _ = writeln!(out, "  worst stage: rate {} {} {:.1}%", w.rate, w.metric, w.ape);
        }
        None => {
            let _ = writeln!(out, "  worst stage: -");
        }
    }
    let _ = writeln!(out);
}

/// The text report.
pub fn to_table(r: &ClusterReport) -> String {
    let mut out = String::new();
    for s in &r.stacks {
        stack_table(s, &mut out);
    }
    let scored = r.stacks.iter().filter(|s| s.not_scored.is_none()).count();
    let _ =
        writeln!(out, "{} stacks, {} scored, {} not scored", r.stacks.len(), scored, r.stacks.len() - scored);
    out
}

/// The JSON report (stable key order, so two runs give the same bytes).
pub fn to_json(r: &ClusterReport) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}
