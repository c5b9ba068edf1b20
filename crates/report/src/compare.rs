//! `blis compare`: candidates side by side (predictions, gates, cost), the best value of each column
//! marked. Rows are built from the status [`Predictions`], so candidates simulated from files and
//! scenarios read from a cluster go through the same code.

use std::sync::Arc;

use crate::predictions::Predictions;
use blis_sim::scenario::{RunError, ScenarioSpec};
use blis_sim::workload::Trace;
use serde::Serialize;

/// One candidate: its name, its status-shaped predictions and whether its SLOs and gates were met.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Scenario name.
    pub name: String,
    /// Its predictions (`status.predictions`, or those of a run); `None` when it has none yet.
    pub predictions: Option<Predictions>,
    /// Every SLO and gate met (`SLOMet`); None when unknown.
    pub slo_met: Option<bool>,
}

impl Candidate {
    /// Simulates `spec` and judges its gates and class SLOs: a candidate given as a file.
    pub fn simulate(name: &str, spec: &ScenarioSpec, trace: Option<Arc<Trace>>) -> Result<Self, RunError> {
        let o = blis_import::run_spec(name, spec, trace)?;
        let gates = spec.gates.clone().unwrap_or_default();
        let met = blis_sim::metrics::gates::evaluate(&gates, &o.summary).iter().all(|g| g.passed);
        Ok(Candidate {
            name: name.to_string(),
            predictions: Some(Predictions::from(&o.summary)),
            slo_met: Some(met),
        })
    }
}

/// Which way is better for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Smaller is better (latency, cost).
    Lower,
    /// Larger is better (throughput, attainment).
    Higher,
}

/// Reads one figure of a candidate's predictions.
type Figure = fn(&Predictions) -> Option<f64>;

/// The compared columns: label, the figure, direction.
pub const COLUMNS: [(&str, Figure, Better); 9] = [
    ("TTFT p90 ms", |p| Some(p.overall.ttft_ms.p90), Better::Lower),
    ("ITL p90 ms", |p| Some(p.overall.itl_ms.p90), Better::Lower),
    ("E2E p99 ms", |p| Some(p.overall.e2e_ms.p99), Better::Lower),
    ("req/s", |p| Some(p.overall.throughput.requests_per_s), Better::Higher),
    ("goodput req/s", |p| p.overall.goodput_rps, Better::Higher),
    ("SLO attained", |p| p.slo_attainment, Better::Higher),
    ("GPUs", |p| Some(f64::from(p.cost.gpus)), Better::Lower),
    ("$/h", |p| Some(p.cost.dollars_per_hour), Better::Lower),
    ("$/1M out tok", |p| p.cost.dollars_per_million_output_tokens, Better::Lower),
];

/// One cell: the value (None when the candidate has no such figure) and whether it is the best.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Column label.
    pub column: &'static str,
    /// The figure.
    pub value: Option<f64>,
    /// Best of its column (ties all marked).
    pub best: bool,
    /// Direction of the column.
    pub better: Better,
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Candidate name.
    pub name: String,
    /// SLOs and gates met.
    pub slo_met: Option<bool>,
    /// The figures, in [`COLUMNS`] order.
    pub cells: Vec<Cell>,
}

/// Builds the rows, marking the best value of each column (only when at least two candidates have one).
pub fn rows(candidates: &[Candidate]) -> Vec<Row> {
    let values: Vec<Vec<Option<f64>>> = candidates
        .iter()
        .map(|c| COLUMNS.iter().map(|(_, figure, _)| c.predictions.as_ref().and_then(figure)).collect())
        .collect();
    let best: Vec<Option<f64>> = (0..COLUMNS.len())
        .map(|j| {
            let col: Vec<f64> = values.iter().filter_map(|r| r[j]).collect();
            if col.len() < 2 {
                return None;
            }
            col.into_iter().reduce(|a, b| match COLUMNS[j].2 {
                Better::Lower => a.min(b),
                Better::Higher => a.max(b),
            })
        })
        .collect();
    candidates
        .iter()
        .zip(&values)
        .map(|(c, vals)| Row {
            name: c.name.clone(),
            slo_met: c.slo_met,
            cells: COLUMNS
                .iter()
                .enumerate()
                .map(|(j, (label, _, better))| Cell {
                    column: label,
                    value: vals[j],
                    best: vals[j].is_some() && vals[j] == best[j],
                    better: *better,
                })
                .collect(),
        })
        .collect()
}

fn fmt(v: Option<f64>, column: &str) -> String {
    match v {
        None => "-".into(),
        Some(x) if column == "SLO attained" => format!("{:.1}%", x * 100.0),
        Some(x) if column == "GPUs" => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
    }
}

fn verdict(slo_met: Option<bool>) -> &'static str {
    match slo_met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "-",
    }
}

/// A text table; the best value of each column carries a `*`.
pub fn table(rows: &[Row]) -> String {
    let mut grid: Vec<Vec<String>> = vec![std::iter::once("candidate".to_string())
        .chain(COLUMNS.iter().map(|c| c.0.to_string()))
        .chain(std::iter::once("SLOs+gates".to_string()))
        .collect()];
    for r in rows {
        let mut line = vec![r.name.clone()];
        line.extend(
            r.cells.iter().map(|c| format!("{}{}", fmt(c.value, c.column), if c.best { "*" } else { " " })),
        );
        line.push(verdict(r.slo_met).into());
        grid.push(line);
    }
    let widths: Vec<usize> =
        (0..grid[0].len()).map(|j| grid.iter().map(|l| l[j].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for line in &grid {
        let cells: Vec<String> =
            line.iter()
                .enumerate()
                .map(|(j, c)| {
                    if j == 0 {
                        format!("{c:<w$}", w = widths[j])
                    } else {
                        format!("{c:>w$}", w = widths[j])
                    }
                })
                .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str("* best of the column\n");
    out
}

/// A GitHub-flavoured markdown table (for pull-request comments); the best values are bold.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| candidate |");
    for c in COLUMNS {
        out.push_str(&format!(" {} |", c.0));
    }
    out.push_str(" SLOs+gates |\n|---|");
    out.push_str(&"---:|".repeat(COLUMNS.len()));
    out.push_str("---|\n");
    for r in rows {
        out.push_str(&format!("| {} |", r.name.replace('|', "\\|")));
        for c in &r.cells {
            let v = fmt(c.value, c.column);
            out.push_str(&if c.best { format!(" **{v}** |") } else { format!(" {v} |") });
        }
        out.push_str(&format!(" {} |\n", verdict(r.slo_met)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, ttft: f64, rps: f64, dollars: f64, met: bool) -> Candidate {
        let mut p = Predictions::default();
        p.overall.ttft_ms.p90 = ttft;
        p.overall.throughput.requests_per_s = rps;
        p.cost.dollars_per_hour = dollars;
        Candidate { name: name.into(), predictions: Some(p), slo_met: Some(met) }
    }

    #[test]
    fn best_per_column_follows_its_direction() {
        let rows = rows(&[cand("a", 100.0, 10.0, 7.0, true), cand("b", 80.0, 9.0, 14.0, false)]);
        let best = |r: &Row, col: &str| r.cells.iter().find(|c| c.column == col).unwrap().best;
        assert!(!best(&rows[0], "TTFT p90 ms") && best(&rows[1], "TTFT p90 ms"));
        assert!(best(&rows[0], "req/s") && !best(&rows[1], "req/s"));
        assert!(best(&rows[0], "$/h") && !best(&rows[1], "$/h"));
        // A figure nobody has is never marked, nor is a candidate without predictions.
        assert!(rows.iter().all(|r| !best(r, "goodput req/s")));
        let none = Candidate { name: "c".into(), predictions: None, slo_met: None };
        let with_none = super::rows(&[cand("a", 100.0, 10.0, 7.0, true), none]);
        assert!(with_none.iter().all(|r| r.cells.iter().all(|c| !c.best)), "{with_none:?}");
        let t = table(&rows);
        let line = |name: &str| t.lines().find(|l| l.starts_with(name)).unwrap().to_string();
        assert!(
            line("b ").contains("80.00*") && line("a ").contains("100 ") && !line("a ").contains("100*"),
            "{t}"
        );
        assert!(line("b ").contains("NOT met") && line("a ").ends_with("met"), "{t}");
        let md = markdown(&rows);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 4);
        let pipes = lines[0].matches('|').count();
        assert!(lines.iter().all(|l| l.matches('|').count() == pipes), "{md}");
        assert!(lines[3].contains("**80.00**") && lines[2].contains("**10.00**"));
    }

    #[test]
    fn ties_are_all_marked_and_single_candidates_unmarked() {
        let r = rows(&[cand("a", 50.0, 1.0, 1.0, true), cand("b", 50.0, 2.0, 1.0, true)]);
        assert!(r.iter().all(|row| row.cells[0].best));
        let one = rows(&[cand("a", 50.0, 1.0, 1.0, true)]);
        assert!(one[0].cells.iter().all(|c| !c.best));
    }
}
