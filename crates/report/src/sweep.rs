//! The sweep ranking as a text table: one row per candidate, best first, then the winner and why
//! the others lost.

use std::fmt::Write;

use crate::html::{self, CandidateView, RunView, SweepView};
use blis_plan::sweep::SweepReport;

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.digits$}"))
}

/// Renders a ranked sweep. Shows at most `limit` rows (all when `None`).
pub fn render(r: &SweepReport, limit: Option<usize>) -> String {
    let mut out = String::new();
    let mode = match r.search {
        Some(m) => format!(
            ", search {}",
            serde_json::to_value(m).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        ),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "Sweep {}: {} candidates, {} pass the gates; minimise {}{mode}; seed {} for every candidate, {} replication(s)",
        r.sweep,
        r.candidates,
        r.feasible,
        r.objective.label(),
        r.seed,
        r.replications
    );
    let name_w = r.ranking.iter().map(|x| x.result.name.len()).max().unwrap_or(9).clamp(9, 48);
    let rate_col = r.search == Some(blis_plan::sweep::spec::SearchMode::Saturation);
    let _ = writeln!(
        out,
        "\n{:>4}  {:<name_w$}  {:>4}  {:>12}  {:>5}  {:>8}  {:>9}  {:>8}  {:>9}{}  {:>6}  verdict",
        "rank",
        "candidate",
        "ok",
        "objective",
        "GPUs",
        "$/h",
        "TTFT p90",
        "ITL p90",
        "E2E p99",
        if rate_col { "  max req/s" } else { "" },
        "pareto",
    );
    for x in r.ranking.iter().take(limit.unwrap_or(usize::MAX)) {
        let f = x.result.figures.as_ref();
        let mut name = x.result.name.clone();
        if name.len() > name_w {
            name.truncate(name_w - 1);
            name.push('~');
        }
        let objective = match (x.objective, x.result.objective_ci95) {
            (Some(v), Some(ci)) => format!("{v:.4}±{ci:.4}"),
            (v, _) => opt(v, 4),
        };
        let _ = writeln!(
            out,
            "{:>4}  {:<name_w$}  {:>4}  {:>12}  {:>5}  {:>8}  {:>9}  {:>8}  {:>9}{}  {:>6}  {}",
            x.rank,
            name,
            if x.result.feasible { "yes" } else { "no" },
            objective,
            f.map_or("-".into(), |f| f.gpus.to_string()),
            opt(f.map(|f| f.dollars_per_hour), 2),
            opt(f.map(|f| f.ttft_p90_ms), 1),
            opt(f.map(|f| f.itl_p90_ms), 1),
            opt(f.map(|f| f.e2e_p99_ms), 0),
            if rate_col { format!("  {:>10}", opt(x.result.max_rate, 3)) } else { String::new() },
            if x.pareto { "*" } else { "" },
            x.verdict
        );
    }
    if let Some(n) = limit.filter(|n| *n < r.ranking.len()) {
        let _ = writeln!(out, "  ... {} more (use --output json for all)", r.ranking.len() - n);
    }
    match &r.best {
        Some(b) => {
            let _ = writeln!(out, "\nwinner: {b}");
        }
        None => {
            let _ = writeln!(out, "\nno candidate passes the gates");
        }
    }
    let shown = limit.unwrap_or(usize::MAX).min(r.pareto.len());
    let _ = writeln!(
        out,
        "Pareto set (cost vs TTFT p90 vs ITL p90), {} candidates: {}{}",
        r.pareto.len(),
        r.pareto[..shown].join(", "),
        if shown < r.pareto.len() { ", ..." } else { "" }
    );
    out
}

/// The sweep as one self-contained HTML page: Pareto plot, ranking, inputs, and the full charts of
/// `detail` (e.g. the winner simulated once more with its records kept).
pub fn render_html(r: &SweepReport, inputs_yaml: &str, detail: Option<RunView>) -> String {
    let mut feasible_rank = 0u32;
    let candidates = r
        .ranking
        .iter()
        .map(|x| {
            let f = x.result.figures.as_ref();
            let rank = x.result.feasible.then(|| {
                feasible_rank += 1;
                feasible_rank
            });
            CandidateView {
                name: &x.result.name,
                rank,
                feasible: x.result.feasible,
                pareto: x.pareto,
                dollars_per_million_tokens: f.and_then(|f| f.dollars_per_million_tokens),
                dollars_per_hour: f.map_or(0.0, |f| f.dollars_per_hour),
                gpus: f.map_or(0, |f| f.gpus),
                ttft_p90_ms: f.map_or(f64::NAN, |f| f.ttft_p90_ms),
                itl_p90_ms: f.map_or(f64::NAN, |f| f.itl_p90_ms),
                e2e_p90_ms: f.map_or(f64::NAN, |f| f.e2e_p90_ms),
                failed_gates: x.result.failed.clone(),
                slo_attainment: f.and_then(|f| f.slo_attainment),
            }
        })
        .collect();
    let objective = format!("minimise {}", r.objective.label());
    html::render_sweep(&SweepView {
        title: &r.sweep,
        objective: &objective,
        candidates,
        inputs_yaml,
        details: detail.into_iter().collect(),
    })
}
