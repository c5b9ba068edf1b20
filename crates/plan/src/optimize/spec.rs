//! The `PolicySearch` file: which scenario, which knobs, what to minimise under which constraints,
//! on which seeds, with how many evaluations.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use blis_import::manifest::API_VERSION;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::ScenarioSpec;

/// Kind of a policy-search manifest.
pub const KIND: &str = "PolicySearch";

/// A `PolicySearch` as written in a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySearchManifest {
    /// Must be `twin.blis.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `PolicySearch`.
    pub kind: String,
    /// Name (used for the emitted scenario).
    #[serde(default)]
    pub metadata: blis_import::manifest::Metadata,
    /// The search.
    pub spec: PolicySearchSpec,
}

/// What to search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySearchSpec {
    /// The baseline scenario file (relative to this file), holding one `SimulationScenario`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_file: Option<String>,
    /// The baseline scenario's spec, inline (instead of `scenarioFile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<ScenarioSpec>,
    /// JSON merge patch applied to every candidate (not the baseline): the policy family, e.g.
    /// `{router: {admission: {probabilistic: {signal: queueDepth, curve: power}}}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
    /// The knobs the search tunes.
    pub knobs: Vec<KnobSpec>,
    /// What to minimise or maximise.
    pub objective: ObjectiveSpec,
    /// Conditions the winner must meet on the tuning seeds.
    #[serde(default)]
    pub constraints: Vec<ConstraintSpec>,
    /// Scenario seeds every candidate runs on (common random numbers); the metric is their mean.
    pub tuning_seeds: Vec<u64>,
    /// Seeds the winner and the baseline are checked on after the search (never tuned on).
    pub check_seeds: Vec<u64>,
    /// Candidates to evaluate (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<i64>,
    /// Candidates per generation (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<i64>,
    /// Seed of the search's own draws (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Further metrics to show in the before/after table.
    #[serde(default)]
    pub report: Vec<String>,
}

/// One tuned knob: a dotted path into the scenario spec (see [`blis_sim::scenario::patch`]) and its range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KnobSpec {
    /// Path, e.g. `router.admission.probabilistic.startSaturation`.
    pub path: String,
    /// Lowest value.
    pub min: f64,
    /// Highest value.
    pub max: f64,
    /// `linear` (default) or `log` (for ranges spanning orders of magnitude; needs min > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<KnobScale>,
    /// Whether the knob takes whole numbers.
    #[serde(default)]
    pub integer: bool,
}

/// How a knob's range is explored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KnobScale {
    /// Evenly.
    Linear,
    /// Evenly in the logarithm.
    Log,
}

/// The objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectiveSpec {
    /// Metric path into a run's JSON summary, e.g. `classes[name=critical].ttft_ms.p90`.
    pub metric: String,
    /// `minimize` (default) or `maximize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
}

/// Direction of the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Goal {
    /// Lower is better.
    Minimize,
    /// Higher is better.
    Maximize,
}

/// A bound on a metric (mean over the tuning seeds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConstraintSpec {
    /// Metric path, as for the objective.
    pub metric: String,
    /// The metric must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The metric must be at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Bounds are multiples of the baseline's value of the metric (e.g. `min: 0.9` = 90 % of baseline).
    #[serde(default)]
    pub relative_to_baseline: bool,
}

impl ConstraintSpec {
    /// The absolute bounds given the baseline's value.
    pub fn bounds(&self, baseline: f64) -> (Option<f64>, Option<f64>) {
        let k = |b: Option<f64>| b.map(|b| if self.relative_to_baseline { b * baseline } else { b });
        (k(self.min), k(self.max))
    }

    /// How far `value` is outside the bounds, relative to the bound's size (0 inside).
    pub fn violation(&self, value: f64, baseline: f64) -> f64 {
        if !value.is_finite() {
            return f64::MAX;
        }
        let (lo, hi) = self.bounds(baseline);
        let rel = |gap: f64, bound: f64| gap.max(0.0) / bound.abs().max(1e-9);
        lo.map_or(0.0, |l| rel(l - value, l)) + hi.map_or(0.0, |h| rel(value - h, h))
    }
}

/// Most evaluations one search may ask for.
pub const MAX_BUDGET: i64 = 100_000;

impl PolicySearchSpec {
    /// Checks everything that does not need the scenario; errors name fields under `spec.`.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        match (&self.scenario_file, &self.scenario) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(InvalidInput::new(
                    "spec.scenarioFile",
                    "give exactly one of scenarioFile and scenario",
                    "name the baseline SimulationScenario file, or put its spec under spec.scenario",
                ))
            }
            _ => {}
        }
        if self.knobs.is_empty() {
            return Err(InvalidInput::new(
                "spec.knobs",
                "is empty",
                "list at least one knob: {path: router.admission.probabilistic.startSaturation, min: 0, max: 2}",
            ));
        }
        for (i, k) in self.knobs.iter().enumerate() {
            let f = |x: &str| format!("spec.knobs[{i}].{x}");
            if !(k.min.is_finite() && k.max.is_finite() && k.min < k.max) {
                return Err(InvalidInput::new(
                    f("max"),
                    format!("the range must be finite with min < max (got {} .. {})", k.min, k.max),
                    "give min below max",
                ));
            }
            if k.scale == Some(KnobScale::Log) && k.min <= 0.0 {
                return Err(InvalidInput::new(
                    f("min"),
                    format!("a log-scale knob needs min > 0 (got {})", k.min),
                    "raise min above 0 or use scale: linear",
                ));
            }
            if k.integer && k.max.floor() < k.min.ceil() {
                return Err(InvalidInput::new(
                    f("max"),
                    "the range holds no whole number",
                    "widen the range",
                ));
            }
            if self.knobs[..i].iter().any(|o| o.path == k.path) {
                return Err(InvalidInput::new(
                    f("path"),
                    format!("{} is tuned twice", k.path),
                    "list each path once",
                ));
            }
        }
        for (i, c) in self.constraints.iter().enumerate() {
            let f = |x: &str| format!("spec.constraints[{i}].{x}");
            if c.min.is_none() && c.max.is_none() {
                return Err(InvalidInput::new(f("min"), "the constraint has no bound", "give min or max"));
            }
            for (name, b) in [("min", c.min), ("max", c.max)] {
                if b.is_some_and(|b| !b.is_finite()) {
                    return Err(InvalidInput::new(f(name), "must be a finite number", "give a finite bound"));
                }
            }
        }
        if self.tuning_seeds.is_empty() {
            return Err(InvalidInput::new(
                "spec.tuningSeeds",
                "is empty",
                "list the seeds to tune on, e.g. [1, 2]",
            ));
        }
        if self.check_seeds.is_empty() {
            return Err(InvalidInput::new(
                "spec.checkSeeds",
                "is empty",
                "list held-out seeds to check the winner on, e.g. [101, 102, 103, 104, 105]",
            ));
        }
        if let Some(s) = self.check_seeds.iter().find(|s| self.tuning_seeds.contains(s)) {
            return Err(InvalidInput::new(
                "spec.checkSeeds",
                format!("seed {s} is also a tuning seed"),
                "use held-out seeds the search never tunes on",
            ));
        }
        self.budget()?;
        self.population()?;
        Ok(())
    }

    /// Evaluations in all (default 200).
    pub fn budget(&self) -> Result<usize, InvalidInput> {
        match self.budget.unwrap_or(200) {
            b @ 1..=MAX_BUDGET => Ok(b as usize),
            b => Err(InvalidInput::new(
                "spec.budget",
                format!("must be 1 to {MAX_BUDGET} (got {b})"),
                "use e.g. 200",
            )),
        }
    }

    /// Candidates per generation (default 16).
    pub fn population(&self) -> Result<usize, InvalidInput> {
        match self.population.unwrap_or(16) {
            p @ 2..=1000 => Ok(p as usize),
            p => Err(InvalidInput::new(
                "spec.population",
                format!("must be 2 to 1000 (got {p})"),
                "use e.g. 16",
            )),
        }
    }
}

/// Reads a `PolicySearch` document.
pub fn parse(text: &str) -> Result<PolicySearchManifest, InvalidInput> {
    let m: PolicySearchManifest = serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| {
            let path = e.path().to_string();
            InvalidInput::new(
                if path == "." { "(document)".to_string() } else { path },
                e.into_inner().to_string(),
                "write a PolicySearch as in examples/admission-case-study/search.yaml",
            )
        })?;
    if m.kind != KIND {
        return Err(InvalidInput::new("kind", format!("is {:?}", m.kind), format!("set kind: {KIND}")));
    }
    if m.api_version != API_VERSION {
        return Err(InvalidInput::new(
            "apiVersion",
            format!("is {:?}", m.api_version),
            format!("set apiVersion: {API_VERSION}"),
        ));
    }
    m.spec.validate()?;
    Ok(m)
}

impl KnobSpec {
    /// The knob's value at `u` in [0, 1], rounded to 4 significant digits (whole numbers for integer
    /// knobs) so the emitted config reads cleanly and reproduces exactly what was evaluated.
    pub fn value_at(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        let v = match self.scale {
            Some(KnobScale::Log) => (self.min.ln() + u * (self.max.ln() - self.min.ln())).exp(),
            _ => self.min + u * (self.max - self.min),
        };
        let v = if self.integer { v.round() } else { round_sig(v, 4) };
        v.clamp(
            if self.integer { self.min.ceil() } else { self.min },
            if self.integer { self.max.floor() } else { self.max },
        )
    }

    /// Where `v` sits in [0, 1] (the inverse of [`Self::value_at`] before rounding).
    pub fn position_of(&self, v: f64) -> f64 {
        let u = match self.scale {
            Some(KnobScale::Log) => (v.max(self.min).ln() - self.min.ln()) / (self.max.ln() - self.min.ln()),
            _ => (v - self.min) / (self.max - self.min),
        };
        u.clamp(0.0, 1.0)
    }

    /// The JSON value to set: a whole number for integer knobs.
    pub fn json(&self, v: f64) -> Value {
        if self.integer {
            Value::from(v as i64)
        } else {
            Value::from(v)
        }
    }
}

/// `v` rounded to `digits` significant digits.
fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    let r = (v * scale).round() / scale;
    // Re-parse the shortest decimal so the value survives a YAML round trip bit for bit.
    format!("{r}").parse().unwrap_or(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knob(min: f64, max: f64, scale: Option<KnobScale>, integer: bool) -> KnobSpec {
        KnobSpec { path: "x".into(), min, max, scale, integer }
    }

    #[test]
    fn knob_values_stay_in_range_and_invert() {
        for k in [
            knob(0.0, 4.0, None, false),
            knob(0.01, 100.0, Some(KnobScale::Log), false),
            knob(1.0, 64.0, None, true),
        ] {
            let mut last = f64::MIN;
            for i in 0..=100 {
                let u = f64::from(i) / 100.0;
                let v = k.value_at(u);
                assert!(v >= k.min && v <= k.max, "{v}");
                assert!(v >= last, "not monotone");
                last = v;
                if !k.integer {
                    assert!((k.position_of(v) - u).abs() < 1e-3, "{u} -> {v} -> {}", k.position_of(v));
                }
            }
        }
        assert_eq!(knob(1.0, 64.0, None, true).json(3.0), serde_json::json!(3));
        assert_eq!(round_sig(0.123456, 4), 0.1235);
        assert_eq!(round_sig(98765.0, 2), 99000.0);
    }

    #[test]
    fn constraint_violation_is_zero_inside_and_grows_outside() {
        let c = ConstraintSpec { metric: "m".into(), min: Some(0.9), max: None, relative_to_baseline: true };
        assert_eq!(c.bounds(20.0), (Some(18.0), None));
        assert_eq!(c.violation(18.0, 20.0), 0.0);
        assert!(c.violation(17.0, 20.0) > 0.0);
        assert!(c.violation(9.0, 20.0) > c.violation(17.0, 20.0));
        assert_eq!(c.violation(f64::NAN, 20.0), f64::MAX);
        let c =
            ConstraintSpec { metric: "m".into(), min: None, max: Some(100.0), relative_to_baseline: false };
        assert_eq!(c.violation(50.0, 1.0), 0.0);
        assert!(c.violation(150.0, 1.0) > 0.0);
    }

    #[test]
    fn bad_searches_name_the_field() {
        let good = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/admission-case-study/search.yaml"
        ));
        parse(good).unwrap();
        for (edit, field) in [
            ("budget: 200", "budget: 0", "spec.budget"),
            ("checkSeeds: [101", "checkSeeds: [1", "spec.checkSeeds"),
            ("min: 0, max: 0.3", "min: 0.5, max: 0.3", "spec.knobs[0].max"),
            ("scale: log", "scale: exponential", "spec.knobs[2].scale"),
            ("kind: PolicySearch", "kind: Sweep", "kind"),
            ("scenarioFile: baseline.yaml", "scenarioFile: null", "spec.scenarioFile"),
        ]
        .map(|(a, b, f)| ((a, b), f))
        {
            assert!(good.contains(edit.0), "{}", edit.0);
            let e = parse(&good.replacen(edit.0, edit.1, 1)).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }
}

/// A search read from a file, with its baseline scenario.
#[derive(Debug, Clone)]
pub struct LoadedSearch {
    /// The search.
    pub manifest: PolicySearchManifest,
    /// The baseline scenario's spec.
    pub base: ScenarioSpec,
    /// The trace of the baseline, when it replays a trace file.
    pub trace: Option<std::sync::Arc<blis_sim::workload::Trace>>,
}

/// Reads a `PolicySearch` file and its baseline (`scenarioFile` is relative to the search file).
pub fn load(file: &std::path::Path) -> Result<LoadedSearch, InvalidInput> {
    let at = |e: InvalidInput| InvalidInput { field: format!("{}: {}", file.display(), e.field), ..e };
    let text = std::fs::read_to_string(file).map_err(|e| {
        InvalidInput::new(
            file.display().to_string(),
            format!("cannot be read: {e}"),
            "give a PolicySearch file",
        )
    })?;
    let manifest = parse(&text).map_err(at)?;
    let (base, trace) = match (&manifest.spec.scenario, &manifest.spec.scenario_file) {
        (Some(s), _) => (s.clone(), None),
        (None, Some(p)) => {
            let path = file.parent().unwrap_or(std::path::Path::new(".")).join(p);
            let mut loaded = blis_import::load::load_paths(std::slice::from_ref(&path))?;
            if loaded.len() != 1 {
                return Err(at(InvalidInput::new(
                    "spec.scenarioFile",
                    format!("{} holds {} scenarios", path.display(), loaded.len()),
                    "point at a file with exactly one SimulationScenario",
                )));
            }
            let l = loaded.remove(0);
            (l.manifest.spec, l.trace)
        }
        (None, None) => {
            return Err(at(InvalidInput::new(
                "spec.scenarioFile",
                "is missing",
                "name the baseline SimulationScenario file",
            )))
        }
    };
    Ok(LoadedSearch { manifest, base, trace })
}
