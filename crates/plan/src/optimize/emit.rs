//! What a search hands the operator: the before/after table (tuning and held-out seeds apart, so
//! over-fitting shows) and ready-to-apply YAML: the full `SimulationScenario` with the winning
//! policy, its gateway section, and its `EndpointPickerConfig` when it has one.

use std::fmt::Write as _;

use super::SearchResult;
use blis_import::manifest::Metadata;
use blis_import::manifest::{API_VERSION, KIND};
use blis_sim::scenario::ScenarioSpec;

/// The result as a human-readable report.
pub fn table(r: &SearchResult) -> String {
    let mut o = String::new();
    let seeds = |s: &[u64]| s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        o,
        "Policy search {}: {} evaluations ({} per generation, search seed {}); {} feasible, {} invalid",
        r.name, r.evaluations, r.population, r.search_seed, r.feasible_candidates, r.invalid_candidates
    );
    let _ = writeln!(
        o,
        "Objective: {} {} on tuning seeds [{}]; held-out check seeds [{}]",
        match r.goal {
            super::spec::Goal::Minimize => "minimise",
            super::spec::Goal::Maximize => "maximise",
        },
        r.objective,
        seeds(&r.tuning_seeds),
        seeds(&r.check_seeds)
    );
    let _ = writeln!(
        o,
        "\nWinner{}:",
        if r.winner_feasible { "" } else { " (NO candidate met the constraints; least violating shown)" }
    );
    for k in &r.knobs {
        let _ = writeln!(o, "  {} = {}", k.path, k.value);
    }
    let w = r.baseline_tuning.metrics.iter().map(String::len).max().unwrap_or(6).max(6);
    for (title, base, win) in [
        ("tuning seeds", &r.baseline_tuning, &r.winner_tuning),
        ("held-out seeds (not tuned on)", &r.baseline_check, &r.winner_check),
    ] {
        let _ = writeln!(o, "\nMean over {title} [{}]:", seeds(&base.seeds));
        let _ = writeln!(o, "  {:<w$}  {:>10}  {:>10}  {:>8}", "metric", "baseline", "optimised", "change");
        for (m, name) in base.metrics.iter().enumerate() {
            let (b, a) = (base.mean(m), win.mean(m));
            let change = if b != 0.0 && b.is_finite() && a.is_finite() {
                format!("{:+.1}%", (a - b) / b.abs() * 100.0)
            } else {
                "-".into()
            };
            let _ = writeln!(o, "  {name:<w$}  {:>10}  {:>10}  {change:>8}", num(b), num(a));
        }
    }
    if !r.constraints.is_empty() {
        let _ = writeln!(o, "\nConstraints (bounds from the baseline on the tuning seeds):");
        for c in &r.constraints {
            let bound = match (c.min, c.max) {
                (Some(l), Some(h)) => format!("in [{}, {}]", num(l), num(h)),
                (Some(l), None) => format!(">= {}", num(l)),
                (None, Some(h)) => format!("<= {}", num(h)),
                (None, None) => String::new(),
            };
            let v = |b: bool| if b { "met" } else { "MISSED" };
            let _ = writeln!(
                o,
                "  {} {bound}: tuning {}, held-out {}",
                c.metric,
                v(c.tuning_met),
                v(c.check_met)
            );
        }
    }
    o
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// The winner as a `SimulationScenario` manifest named `name`.
pub fn scenario_yaml(name: &str, spec: &ScenarioSpec) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc<'a> {
        api_version: &'a str,
        kind: &'a str,
        metadata: Metadata,
        spec: &'a ScenarioSpec,
    }
    let doc = Doc {
        api_version: API_VERSION,
        kind: KIND,
        metadata: Metadata { name: name.to_string(), namespace: None },
        spec,
    };
    serde_yaml::to_string(&doc).unwrap_or_default()
}

/// The winner's gateway section (`spec.router`: admission, objectives, endpoint picker config): the
/// part an operator carries to the cluster.
pub fn router_yaml(spec: &ScenarioSpec) -> String {
    serde_yaml::to_string(&serde_json::json!({ "router": spec.router })).unwrap_or_default()
}

/// The winner's `EndpointPickerConfig` as YAML, when the scenario has one.
pub fn endpoint_picker_yaml(spec: &ScenarioSpec) -> Option<String> {
    match spec.router.endpoint_picker_config.as_ref()? {
        serde_json::Value::String(s) => Some(s.clone()),
        v => serde_yaml::to_string(v).ok(),
    }
}
