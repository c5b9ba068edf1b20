//! Expanding a sweep spec into its candidates: stable indices (the expansion order) and stable names
//! (what was changed), each a typed, seeded scenario spec. Shards, the controller and reports all
//! refer to candidates by these indices and names.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde_json::Value;

use super::spec::{SearchMode, SweepParameter, DEFAULT_RATE_PATH};
use crate::sweep::spec::SweepSpec;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::{self, Edit};
use blis_sim::scenario::ScenarioSpec;

/// Sweeps larger than this need an explicit `maxCandidates`.
pub const DEFAULT_MAX_CANDIDATES: u32 = 10_000;
/// The seed candidates get when neither the sweep nor the base names one.
pub const DEFAULT_SEED: u64 = 42;

/// One candidate of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Position in the expansion order (stable for a given spec).
    pub index: usize,
    /// Stable name: the explicit candidate's name and/or `path=value` settings.
    pub name: String,
    /// The swept settings, by path.
    pub settings: BTreeMap<String, Value>,
    /// The base with the candidate's edits and the sweep seed applied.
    pub spec: ScenarioSpec,
}

/// The seed every candidate runs with (common random numbers).
pub fn sweep_seed(spec: &SweepSpec) -> u64 {
    spec.seed.or(spec.base.seed).unwrap_or(DEFAULT_SEED)
}

/// Every candidate of `spec`, in a stable order. Errors name the offending field under `spec.`.
pub fn expand(spec: &SweepSpec) -> Result<Vec<Candidate>, InvalidInput> {
    let seed = sweep_seed(spec);
    let lists = spec
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| values_of(p).map_err(|e| e.under(&format!("spec.parameters[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let points = points(spec, &lists, seed)?;
    let bases = bases(spec)?;
    let max = spec.max_candidates.unwrap_or(DEFAULT_MAX_CANDIDATES) as usize;
    let total = bases.len().saturating_mul(points.len());
    if total > max {
        return Err(InvalidInput::new(
            "spec.maxCandidates",
            format!("the sweep expands to {total} candidates, more than the limit {max}"),
            "raise maxCandidates, remove values, or use `samples` to draw a random subset",
        ));
    }
    let rate_edit = match &spec.search {
        Some(s) if s.mode == SearchMode::CheapestForRate => {
            let rate = s.target_rate.filter(|r| r.is_finite() && *r > 0.0).ok_or_else(|| {
                InvalidInput::new(
                    "spec.search.targetRate",
                    "cheapestForRate needs a positive target rate",
                    "set targetRate (requests per second)",
                )
            })?;
            let path = s.rate_path.clone().unwrap_or_else(|| DEFAULT_RATE_PATH.to_string());
            Some(Edit::Set { path, value: Value::from(rate) })
        }
        _ => None,
    };
    let mut out = Vec::with_capacity(total);
    for (bname, base) in &bases {
        for point in &points {
            let edits: Vec<Edit> = spec
                .parameters
                .iter()
                .zip(point)
                .map(|(p, v)| Edit::Set { path: p.path.clone(), value: v.clone() })
                .collect();
            let mut cand = patch::apply(base, &edits, "spec.parameters")
                .map_err(|e| culprit(base, &spec.parameters, point).unwrap_or(e))?;
            if let Some(edit) = &rate_edit {
                cand = patch::apply(&cand, std::slice::from_ref(edit), "spec.search.ratePath")?;
            }
            cand.seed = Some(seed);
            let settings: BTreeMap<String, Value> =
                spec.parameters.iter().zip(point).map(|(p, v)| (p.path.clone(), v.clone())).collect();
            let name = candidate_name(bname, &spec.parameters, point);
            out.push(Candidate { index: out.len(), name, settings, spec: cand });
        }
    }
    Ok(out)
}

/// Which single parameter edit fails on its own, named `spec.parameters[i]`.
fn culprit(base: &ScenarioSpec, params: &[SweepParameter], point: &[Value]) -> Option<InvalidInput> {
    params.iter().zip(point).enumerate().find_map(|(i, (p, v))| {
        patch::apply(
            base,
            &[Edit::Set { path: p.path.clone(), value: v.clone() }],
            &format!("spec.parameters[{i}]"),
        )
        .err()
        .map(|mut e| {
            e.problem = format!("setting `{}` to {v}: {}", p.path, e.problem);
            e
        })
    })
}

fn candidate_name(base: &str, params: &[SweepParameter], point: &[Value]) -> String {
    let settings: Vec<String> = params
        .iter()
        .zip(point)
        .map(|(p, v)| match v {
            Value::String(s) => format!("{}={s}", p.path),
            other => format!("{}={other}", p.path),
        })
        .collect();
    match (base.is_empty(), settings.is_empty()) {
        (true, true) => "base".to_string(),
        (true, false) => settings.join(","),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{}", settings.join(",")),
    }
}

/// The explicit candidates as specs (or the base alone), by name.
fn bases(spec: &SweepSpec) -> Result<Vec<(String, ScenarioSpec)>, InvalidInput> {
    if spec.candidates.is_empty() {
        return Ok(vec![(String::new(), spec.base.clone())]);
    }
    let mut seen = BTreeSet::new();
    spec.candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let field = format!("spec.candidates[{i}]");
            if c.name.is_empty() || !seen.insert(c.name.as_str()) {
                return Err(InvalidInput::new(
                    format!("{field}.name"),
                    format!("is empty or repeated ({:?})", c.name),
                    "give every candidate its own name",
                ));
            }
            let mut edits: Vec<Edit> = c.patch.iter().map(|p| Edit::Merge(p.clone())).collect();
            edits.extend(
                c.set.iter().map(|(path, value)| Edit::Set { path: path.clone(), value: value.clone() }),
            );
            Ok((c.name.clone(), patch::apply(&spec.base, &edits, &field)?))
        })
        .collect()
}

/// The value combinations: the full grid (first parameter slowest), or `samples` random draws.
fn points(spec: &SweepSpec, lists: &[Vec<Value>], seed: u64) -> Result<Vec<Vec<Value>>, InvalidInput> {
    let Some(n) = spec.samples else {
        if let Some(i) = spec.parameters.iter().position(|p| p.random.is_some()) {
            return Err(InvalidInput::new(
                format!("spec.parameters[{i}].random"),
                "random parameters need a number of samples",
                "set spec.samples, or give values or a range instead",
            ));
        }
        let total = lists.iter().map(Vec::len).try_fold(1usize, |a, n| a.checked_mul(n));
        let max = spec.max_candidates.unwrap_or(DEFAULT_MAX_CANDIDATES) as usize;
        if total.is_none_or(|t| t > max) {
            return Err(InvalidInput::new(
                "spec.maxCandidates",
                format!("the parameter grid has more than {max} combinations"),
                "raise maxCandidates, remove values, or use `samples` to draw a random subset",
            ));
        }
        let mut out = vec![Vec::new()];
        for list in lists {
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    list.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push(v.clone());
                        p
                    })
                })
                .collect();
        }
        return Ok(out);
    };
    if n == 0 {
        return Err(InvalidInput::new("spec.samples", "must be at least 1", "give a positive number"));
    }
    let mut rng = blis_sim::rng::stream(seed, "sweep-samples");
    Ok((0..n)
        .map(|_| {
            spec.parameters
                .iter()
                .zip(lists)
                .map(|(p, list)| match &p.random {
                    Some(r) => {
                        let integer = r.integer.unwrap_or(r.from.fract() == 0.0 && r.to.fract() == 0.0);
                        if integer {
                            Value::from(rng.random_range(r.from as i64..=r.to as i64))
                        } else {
                            Value::from(r.from + rng.random::<f64>() * (r.to - r.from))
                        }
                    }
                    None => list[rng.random_range(0..list.len())].clone(),
                })
                .collect()
        })
        .collect())
}

/// The explicit values of a list or range parameter (empty for a random one). Errors are relative
/// to the parameter.
fn values_of(p: &SweepParameter) -> Result<Vec<Value>, InvalidInput> {
    if p.path.is_empty() {
        return Err(InvalidInput::new("path", "is empty", "name a field, e.g. `replicas`"));
    }
    let given =
        usize::from(!p.values.is_empty()) + usize::from(p.range.is_some()) + usize::from(p.random.is_some());
    if given != 1 {
        return Err(InvalidInput::new(
            "values",
            format!("the parameter `{}` gives {given} of values, range and random", p.path),
            "give exactly one of values, range or random",
        ));
    }
    if let Some(r) = &p.random {
        if !(r.from.is_finite() && r.to.is_finite() && r.from <= r.to) {
            return Err(InvalidInput::new(
                "random",
                format!("bounds [{}, {}] are not an interval", r.from, r.to),
                "give finite bounds with from <= to",
            ));
        }
        return Ok(Vec::new());
    }
    let Some(r) = &p.range else {
        return Ok(p.values.clone());
    };
    if !(r.from.is_finite() && r.to.is_finite() && r.step.is_finite() && r.step > 0.0 && r.from <= r.to) {
        return Err(InvalidInput::new(
            "range",
            format!("from {} to {} step {} is not a range", r.from, r.to, r.step),
            "give finite from <= to and a positive step",
        ));
    }
    let n = ((r.to - r.from) / r.step + 1e-9).floor() as usize + 1;
    if n > 1_000_000 {
        return Err(InvalidInput::new("range.step", format!("gives {n} values"), "use a larger step"));
    }
    let integer = [r.from, r.to, r.step].iter().all(|x| x.fract() == 0.0);
    Ok((0..n)
        .map(|k| {
            let v = r.from + k as f64 * r.step;
            if integer {
                Value::from(v as i64)
            } else {
                Value::from((v * 1e9).round() / 1e9)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sweep(extra: Value) -> SweepSpec {
        let text =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sweeps/sweep-replicas.yaml"));
        let (_, spec) = crate::sweep::parse_sweep(text).unwrap();
        let mut v = serde_json::to_value(&spec).unwrap();
        patch::merge_patch(&mut v, &extra);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn grid_is_every_combination_first_parameter_slowest_with_one_seed() {
        let spec = sweep(json!({"seed": 9}));
        let c = expand(&spec).unwrap();
        assert_eq!(c.len(), 4 * 3);
        assert!(c.iter().enumerate().all(|(i, c)| c.index == i));
        assert!(c.iter().all(|c| c.spec.seed == Some(9)), "common random numbers: one seed");
        assert_eq!(c[0].name, "replicas=1,vllm.maxNumSeqs=64");
        assert_eq!(c[4].name, "replicas=2,vllm.maxNumSeqs=128");
        assert_eq!(c[4].spec.replicas, Some(2));
        assert_eq!(c[4].spec.vllm.max_num_seqs, Some(128));
        let names: BTreeSet<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), c.len(), "names are unique");
        assert_eq!(expand(&spec).unwrap(), c, "expansion is stable");
    }

    #[test]
    fn explicit_candidates_cross_the_grid_and_cheapest_for_rate_sets_the_rate() {
        let spec = sweep(json!({
            "parameters": [{"path": "replicas", "values": [1, 2]}],
            "candidates": [{"name": "small", "patch": {"vllm": {"maxNumSeqs": 32}}},
                           {"name": "tp2", "set": {"hardware.tensorParallelism": 2}}],
            "search": {"mode": "cheapestForRate", "targetRate": 7.5}
        }));
        let c = expand(&spec).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[1].name, "small/replicas=2");
        assert_eq!(c[1].spec.vllm.max_num_seqs, Some(32));
        assert_eq!(c[2].spec.hardware.tensor_parallelism, Some(2));
        let rate = serde_json::to_value(&c[3].spec).unwrap()["workload"]["arrival"]["ratePerSecond"].clone();
        assert_eq!(rate, json!(7.5));
    }

    #[test]
    fn random_samples_are_seeded_and_within_bounds() {
        let spec = sweep(json!({
            "samples": 20,
            "parameters": [{"path": "replicas", "random": {"from": 1, "to": 6}},
                           {"path": "workload.arrival.ratePerSecond", "random": {"from": 5.0, "to": 9.5}}]
        }));
        let a = expand(&spec).unwrap();
        assert_eq!(a.len(), 20);
        for c in &a {
            assert!((1..=6).contains(&c.spec.replicas.unwrap()));
            let r = c.settings["workload.arrival.ratePerSecond"].as_f64().unwrap();
            assert!((5.0..=9.5).contains(&r), "{r}");
        }
        assert_eq!(expand(&spec).unwrap(), a);
        let b = expand(&sweep(json!({"samples": 20, "seed": 1, "parameters": spec.parameters}))).unwrap();
        assert_ne!(
            a.iter().map(|c| &c.settings).collect::<Vec<_>>(),
            b.iter().map(|c| &c.settings).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = |extra: Value| expand(&sweep(extra)).unwrap_err();
        let e = err(
            json!({"parameters": [{"path": "replicas", "values": [1]}, {"path": "vllm.maxNumSeq", "values": [1]}]}),
        );
        assert!(e.field.starts_with("spec.parameters[1]"), "{e}");
        let e = err(json!({"parameters": [{"path": "replicas", "values": ["many"]}]}));
        assert!(e.field.starts_with("spec.parameters[0]"), "{e}");
        let e = err(json!({"parameters": [{"path": "replicas", "range": {"from": 3, "to": 1, "step": 1}}]}));
        assert_eq!(e.field, "spec.parameters[0].range");
        let e = err(json!({"parameters": [{"path": "replicas", "random": {"from": 1, "to": 3}}]}));
        assert_eq!(e.field, "spec.parameters[0].random");
        let e = err(json!({"maxCandidates": 5}));
        assert_eq!(e.field, "spec.maxCandidates");
        let e = err(json!({"candidates": [{"name": "a"}, {"name": "a"}]}));
        assert_eq!(e.field, "spec.candidates[1].name");
    }

    #[test]
    fn ranges_give_evenly_spaced_values() {
        let p = |from: f64, to: f64, step: f64| SweepParameter {
            path: "x".into(),
            range: Some(super::super::spec::ParameterRange { from, to, step }),
            ..Default::default()
        };
        assert_eq!(values_of(&p(2.0, 8.0, 2.0)).unwrap(), vec![json!(2), json!(4), json!(6), json!(8)]);
        assert_eq!(values_of(&p(0.1, 0.3, 0.1)).unwrap(), vec![json!(0.1), json!(0.2), json!(0.3)]);
    }
}
