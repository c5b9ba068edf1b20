//! The mapping between a run's [`Summary`] (snake_case, as `blis run --output json` prints it) and
//! the status `predictions` (camelCase, whole-run figures under `overall`), in both directions, so
//! the end-to-end tests can check the status equals the CLI's output for the same file and seed.

use serde_json::{Map, Value};

use blis_sim::metrics::Summary;
use blis_sim::scenario::Inputs;

/// Keys whose values are kept as they are (already camelCase, or maps keyed by data, not names).
const OPAQUE: [&str; 5] = ["slo", "rejected_by_reason", "rejectedByReason", "shed_by_reason", "shedByReason"];

/// `snake_case` -> `camelCase`.
pub fn camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = false;
    for ch in s.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// `camelCase` -> `snake_case`.
pub fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for ch in s.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Renames every object key of `v` with `f`, leaving the values of [`OPAQUE`] keys alone.
pub fn rename_keys(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = if OPAQUE.contains(&k.as_str()) { v } else { rename_keys(v, f) };
                    (f(&k), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| rename_keys(x, f)).collect()),
        other => other,
    }
}

/// The status `predictions` of a summary: its JSON with the whole-run figures (flattened in the
/// CLI output) moved under `overall`, keys in camelCase.
pub fn from_summary(s: &Summary) -> Value {
    let mut all = match serde_json::to_value(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut overall = Map::new();
    if let Ok(Value::Object(o)) = serde_json::to_value(&s.overall) {
        for k in o.keys() {
            if let Some(v) = all.remove(k) {
                overall.insert(k.clone(), v);
            }
        }
    }
    all.insert("overall".into(), Value::Object(overall));
    rename_keys(Value::Object(all), &camel)
}

/// The status `normalizedInputs.resolved` of resolved inputs.
pub fn from_inputs(i: &Inputs) -> Value {
    rename_keys(serde_json::to_value(i).unwrap_or(Value::Null), &camel)
}

/// Rebuilds the `blis run --output json` object of one scenario from its status fields: `name`,
/// `seed`, `inputs`, `warnings` and the summary with whole-run figures flattened.
pub fn to_report_json(
    name: &str,
    seed: Option<u64>,
    resolved: &Value,
    warnings: &[String],
    predictions: &Value,
) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), Value::String(name.into()));
    out.insert("seed".into(), seed.map(Value::from).unwrap_or(Value::Null));
    out.insert("inputs".into(), rename_keys(resolved.clone(), &snake));
    out.insert("warnings".into(), Value::from(warnings.to_vec()));
    if let Value::Object(p) = rename_keys(predictions.clone(), &snake) {
        for (k, v) in p {
            match (k.as_str(), v) {
                ("overall", Value::Object(o)) => out.extend(o),
                (_, v) => {
                    out.insert(k, v);
                }
            }
        }
    }
    Value::Object(out)
}

/// JSON equality where numbers compare as f64 (the API server may write `150.0` back as `150`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScenarioReport;
    use blis_import::manifest::parse_scenarios;
    use blis_sim::scenario;
    use blis_sim::sim::{NoObserver, SimOptions};

    #[test]
    fn case_conversion_round_trips() {
        for k in ["ttft_ms", "dollars_per_million_output_tokens", "p90", "requests_per_s", "kv_cache"] {
            assert_eq!(snake(&camel(k)), k);
        }
        assert_eq!(camel("requests_per_s"), "requestsPerS");
    }

    #[test]
    fn status_predictions_rebuild_the_cli_json() {
        let text = include_str!("../../../examples/quickstart.yaml")
            .replace("durationSeconds: 60", "durationSeconds: 5");
        let (m, _) = parse_scenarios(&text).unwrap();
        let r = blis_import::resolve("quickstart", &m[0].spec).unwrap();
        let o = scenario::simulate(&r, None, &SimOptions::default(), &mut NoObserver).unwrap();
        let cli = serde_json::to_value(ScenarioReport::new(&r, o.summary.clone())).unwrap();
        let p = from_summary(&o.summary);
        assert!(p["overall"]["ttftMs"]["p90"].is_number());
        assert!(p["cost"]["dollarsPerHour"].is_number());
        let inputs = from_inputs(&Inputs::of(&r));
        let back = to_report_json("quickstart", Some(r.seed), &inputs, &r.warnings, &p);
        assert!(json_eq(&cli, &back), "{cli:#}\n!=\n{back:#}");
    }
}
