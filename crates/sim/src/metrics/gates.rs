//! Gates: pass/fail checks on a prediction that GitOps tooling can hold a rollout on. Evaluated by a
//! pure function over the [`Summary`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Summary;
use crate::error::InvalidInput;

/// What a failing gate does to the scenario's readiness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Enforcement {
    /// A failing gate (or missed class SLO) makes the scenario not Ready and Stalled, so
    /// `kubectl wait --for=condition=Ready` and Flux fail fast.
    Enforce,
    /// Failing gates are reported in `SLOMet` and `gateResults` only (default).
    #[default]
    Report,
}

/// Limits a prediction must meet. A limit left out is not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatesSpec {
    /// Minimum fraction (0..=1) of SLO-bearing requests meeting their class SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attainment_target: Option<f64>,
    /// Every class with an SLO must meet it (default true when any gate section is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_class_slos: Option<bool>,
    /// Maximum p90 time to first token over all requests (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttft_p90_ms: Option<f64>,
    /// Maximum p90 inter-token latency over all requests (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_itl_p90_ms: Option<f64>,
    /// Maximum p99 end-to-end latency over all requests (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_e2e_p99_ms: Option<f64>,
    /// Maximum price per million output tokens ($).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dollars_per_million_output_tokens: Option<f64>,
    /// Maximum price of the deployment per hour ($).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dollars_per_hour: Option<f64>,
    /// `Enforce` or `Report` (default).
    #[serde(default)]
    pub enforcement: Enforcement,
}

/// The verdict of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateResult {
    /// Gate name (the spec field, e.g. `maxTtftP90Ms`).
    pub name: String,
    /// Whether the prediction meets it.
    pub passed: bool,
    /// The predicted value (absent when the run produced none, which fails the gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<f64>,
    /// The limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// One line for humans.
    pub message: String,
}

impl GatesSpec {
    /// Checks every limit is usable, naming the bad field (relative to `spec.gates`).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if let Some(a) = self.attainment_target {
            if !(0.0..=1.0).contains(&a) {
                return Err(InvalidInput::new(
                    "attainmentTarget",
                    format!("must be a fraction in [0, 1] (got {a})"),
                    "use e.g. 0.95 for 95% of requests",
                ));
            }
        }
        for (field, v) in [
            ("maxTtftP90Ms", self.max_ttft_p90_ms),
            ("maxItlP90Ms", self.max_itl_p90_ms),
            ("maxE2eP99Ms", self.max_e2e_p99_ms),
            ("maxDollarsPerMillionOutputTokens", self.max_dollars_per_million_output_tokens),
            ("maxDollarsPerHour", self.max_dollars_per_hour),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(InvalidInput::new(
                        field,
                        format!("must be a positive number (got {v})"),
                        "give a positive limit or leave it out",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn upper(name: &str, actual: Option<f64>, limit: Option<f64>, unit: &str) -> Option<GateResult> {
    let limit = limit?;
    let passed = actual.is_some_and(|a| a <= limit);
    let message = match actual {
        Some(a) => {
            format!("{name}: predicted {a:.3}{unit} {} limit {limit}{unit}", if passed { "<=" } else { ">" })
        }
        None => format!("{name}: no prediction (no completed requests)"),
    };
    Some(GateResult { name: name.to_string(), passed, actual, limit: Some(limit), message })
}

/// Evaluates the gates over a summary, in a fixed order. Class SLOs count as the gate
/// `classSLOs` unless `requireClassSlos` is false.
pub fn evaluate(gates: &GatesSpec, s: &Summary) -> Vec<GateResult> {
    let mut out = Vec::new();
    if gates.require_class_slos.unwrap_or(true) {
        if let Some(met) = s.slo_met {
            let missed: Vec<&str> =
                s.classes.iter().filter(|c| c.slo_met == Some(false)).map(|c| c.name.as_str()).collect();
            out.push(GateResult {
                name: "classSLOs".into(),
                passed: met,
                actual: None,
                limit: None,
                message: if met {
                    "every class meets its SLO".into()
                } else {
                    format!("classes missing their SLO: {}", missed.join(", "))
                },
            });
        }
    }
    if let Some(t) = gates.attainment_target {
        let a = s.slo_attainment;
        let passed = a.is_some_and(|a| a >= t);
        out.push(GateResult {
            name: "attainmentTarget".into(),
            passed,
            actual: a,
            limit: Some(t),
            message: match a {
                Some(a) => format!(
                    "attainmentTarget: predicted {a:.4} {} target {t}",
                    if passed { ">=" } else { "<" }
                ),
                None => "attainmentTarget: no class has an SLO".into(),
            },
        });
    }
    let done = s.overall.requests.completed > 0;
    let when = |v: f64| done.then_some(v);
    out.extend(upper("maxTtftP90Ms", when(s.overall.ttft_ms.p90), gates.max_ttft_p90_ms, " ms"));
    out.extend(upper("maxItlP90Ms", when(s.overall.itl_ms.p90), gates.max_itl_p90_ms, " ms"));
    out.extend(upper("maxE2eP99Ms", when(s.overall.e2e_ms.p99), gates.max_e2e_p99_ms, " ms"));
    out.extend(upper(
        "maxDollarsPerMillionOutputTokens",
        s.cost.dollars_per_million_output_tokens,
        gates.max_dollars_per_million_output_tokens,
        " $",
    ));
    out.extend(upper("maxDollarsPerHour", Some(s.cost.dollars_per_hour), gates.max_dollars_per_hour, " $"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summary::{Cost, Stats};

    fn summary(ttft_p90: f64, dollars: f64) -> Summary {
        let mut overall = Stats::default();
        overall.requests.completed = 10;
        overall.ttft_ms.p90 = ttft_p90;
        Summary {
            duration_s: 1.0,
            overall,
            slo_attainment: Some(0.8),
            slo_met: Some(true),
            kv_cache: Default::default(),
            cost: Cost { gpus: 1, dollars_per_hour: dollars, ..Default::default() },
            classes: vec![],
            pools: vec![],
            routing: vec![],
            replica_timeline: vec![],
            disaggregated: 0,
            kv_transfer_ms_mean: 0.0,
            stages: vec![],
        }
    }

    #[test]
    fn limits_pass_and_fail() {
        let g =
            GatesSpec { max_ttft_p90_ms: Some(100.0), max_dollars_per_hour: Some(3.0), ..Default::default() };
        let r = evaluate(&g, &summary(90.0, 4.0));
        let by = |n: &str| r.iter().find(|x| x.name == n).unwrap().passed;
        assert!(by("classSLOs"));
        assert!(by("maxTtftP90Ms"));
        assert!(!by("maxDollarsPerHour"));
        let g = GatesSpec { attainment_target: Some(0.9), ..Default::default() };
        assert!(
            !evaluate(&g, &summary(1.0, 1.0)).iter().find(|x| x.name == "attainmentTarget").unwrap().passed
        );
    }

    #[test]
    fn validation_names_the_field() {
        let g = GatesSpec { max_itl_p90_ms: Some(-1.0), ..Default::default() };
        assert_eq!(g.validate().unwrap_err().field, "maxItlP90Ms");
        let g = GatesSpec { attainment_target: Some(1.5), ..Default::default() };
        assert_eq!(g.validate().unwrap_err().field, "attainmentTarget");
    }
}
