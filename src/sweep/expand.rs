//! Expanding a sweep spec into its candidates: stable indices (the expansion order) and stable names
//! (what was changed), each a typed, seeded scenario spec. Shards, the controller and reports all
//! refer to candidates by these indices and names.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde_json::Value;

use super::spec::{SearchMode, SweepParameter, DEFAULT_RATE_PATH};
use crate::api::SimulationSweepSpec;
use crate::error::InvalidInput;
use crate::scenario::patch::{self, Edit};
use crate::scenario::ScenarioSpec;

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
pub fn sweep_seed(spec: &SimulationSweepSpec) -> u64 {
    spec.seed.or(spec.base.seed).unwrap_or(DEFAULT_SEED)
}

/// Every candidate of `spec`, in a stable order. Errors name the offending field under `spec.`.
pub fn expand(spec: &SimulationSweepSpec) -> Result<Vec<Candidate>, InvalidInput> {
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
        patch::apply(base, &[Edit::Set { path: p.path.clone(), value: v.clone() }], &format!("spec.parameters[{i}]"))
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
fn bases(spec: &SimulationSweepSpec) -> Result<Vec<(String, ScenarioSpec)>, InvalidInput> {
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
            edits.extend(c.set.iter().map(|(path, value)| Edit::Set { path: path.clone(), value: value.clone() }));
            Ok((c.name.clone(), patch::apply(&spec.base, &edits, &field)?))
        })
        .collect()
}

/// The value combinations: the full grid (first parameter slowest), or `samples` random draws.
fn points(spec: &SimulationSweepSpec, lists: &[Vec<Value>], seed: u64) -> Result<Vec<Vec<Value>>, InvalidInput> {
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
    let mut rng = crate::rng::stream(seed, "sweep-samples");
    Ok((0..n)
        .map(|_| {
            spec.parameters
                .iter()
                .zip(lists)
                .map(|(p, list)| match &p.random {
                    Some(r) => {
                        let integer =
                            r.integer.unwrap_or(r.from.fract() == 0.0 && r.to.fract() == 0.0);
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
    let given = usize::from(!p.values.is_empty()) + usize::from(p.range.is_some()) + usize::from(p.random.is_some());
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
