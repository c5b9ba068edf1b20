//! Changing a scenario spec by path or by JSON merge patch: the one way sweeps, the optimiser and
//! "deployed plus my change" overlays derive a candidate from a base, so all of them agree on what a
//! path means and every candidate still goes through the single validate step.
//!
//! Paths are dotted camelCase field names as in the manifest, with `[i]` for a list index and
//! `[name=x]` for the list element whose `name` is `x`: `replicas`, `vllm.maxNumSeqs`,
//! `workload.classes[0].arrival.ratePerSecond`, `pools[name=decode].replicas`.

use serde_json::{Map, Value};

use crate::error::InvalidInput;
use crate::scenario::ScenarioSpec;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Named(String),
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() && (rest.is_empty() || steps.is_empty()) {
            return Err(format!("empty field name in path `{path}`"));
        }
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| format!("unclosed `[` in path `{path}`"))?;
            if !rest.starts_with('[') {
                return Err(format!("unexpected `{rest}` in path `{path}`"));
            }
            let inner = &rest[1..close];
            if let Some(name) = inner.strip_prefix("name=") {
                steps.push(Step::Named(name.to_string()));
            } else {
                let i = inner.parse::<usize>().map_err(|_| {
                    format!("`[{inner}]` in path `{path}` is neither an index nor `[name=...]`")
                })?;
                steps.push(Step::Index(i));
            }
            rest = &rest[close + 1..];
        }
    }
    Ok(steps)
}

/// Sets `path` in the JSON `root` to `value`, creating missing objects along the way (not list
/// elements: an index or name must exist).
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let steps = parse_path(path)?;
    let mut cur = root;
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        cur = match step {
            Step::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Map::new());
                }
                let obj = cur
                    .as_object_mut()
                    .ok_or_else(|| format!("`{k}` in `{path}`: parent is not an object"))?;
                if last {
                    obj.insert(k.clone(), value);
                    return Ok(());
                }
                obj.entry(k.clone()).or_insert(Value::Null)
            }
            Step::Index(n) => {
                let arr =
                    cur.as_array_mut().ok_or_else(|| format!("`[{n}]` in `{path}`: parent is not a list"))?;
                let len = arr.len();
                let slot = arr
                    .get_mut(*n)
                    .ok_or_else(|| format!("`[{n}]` in `{path}`: the list has {len} items"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            Step::Named(name) => {
                let arr = cur
                    .as_array_mut()
                    .ok_or_else(|| format!("`[name={name}]` in `{path}`: parent is not a list"))?;
                let slot = arr
                    .iter_mut()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some(name.as_str()))
                    .ok_or_else(|| format!("`[name={name}]` in `{path}`: no item has that name"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
    }
    Err(format!("empty path `{path}`"))
}

/// The value at `path` in `root`, if there is one.
pub fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for step in parse_path(path).ok()? {
        cur = match step {
            Step::Key(k) => cur.get(&k)?,
            Step::Index(i) => cur.get(i)?,
            Step::Named(n) => {
                cur.as_array()?.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(n.as_str()))?
            }
        };
    }
    Some(cur)
}

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge key by key, `null` deletes,
/// anything else (lists included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Which edit to make to a spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Set one field by path.
    Set {
        /// Path as described in the module docs.
        path: String,
        /// New value.
        value: Value,
    },
    /// Merge a JSON merge patch into the spec.
    Merge(Value),
}

/// `base` with `edits` applied in order, read back into a typed spec. `field` names where the edits
/// came from (e.g. `spec.parameters[2]`) so an error points the user at the edit, not the base.
pub fn apply(base: &ScenarioSpec, edits: &[Edit], field: &str) -> Result<ScenarioSpec, InvalidInput> {
    let mut v = serde_json::to_value(base).map_err(|e| {
        InvalidInput::new(field, format!("the base scenario cannot be encoded: {e}"), "report a bug")
    })?;
    for edit in edits {
        match edit {
            Edit::Set { path, value } => set_path(&mut v, path, value.clone()).map_err(|e| {
                InvalidInput::new(
                    field,
                    e,
                    "use a dotted camelCase path such as `vllm.maxNumSeqs` or `pools[name=decode].replicas`",
                )
            })?,
            Edit::Merge(p) => merge_patch(&mut v, p),
        }
    }
    serde_path_to_error::deserialize::<_, ScenarioSpec>(&v).map_err(|e| {
        InvalidInput::new(
            format!("{field}: spec.{}", e.path()),
            format!("the edited scenario is not valid here: {}", e.inner()),
            "change the value or path so the result is a valid scenario spec",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_path_walks_keys_indices_and_names() {
        let mut v =
            json!({"a": {"b": 1}, "pools": [{"name": "p", "replicas": 1}, {"name": "d", "replicas": 2}]});
        set_path(&mut v, "a.b", json!(5)).unwrap();
        set_path(&mut v, "a.c.d", json!("x")).unwrap();
        set_path(&mut v, "pools[1].replicas", json!(7)).unwrap();
        set_path(&mut v, "pools[name=p].replicas", json!(3)).unwrap();
        assert_eq!(v["a"], json!({"b": 5, "c": {"d": "x"}}));
        assert_eq!(v["pools"][0]["replicas"], json!(3));
        assert_eq!(v["pools"][1]["replicas"], json!(7));
        assert_eq!(get_path(&v, "pools[name=d].replicas"), Some(&json!(7)));
        assert_eq!(get_path(&v, "pools[5]"), None);
    }

    #[test]
    fn set_path_errors_name_the_problem() {
        let mut v = json!({"pools": [{"name": "p"}], "x": 1});
        assert!(set_path(&mut v, "pools[3].replicas", json!(1)).unwrap_err().contains("has 1 items"));
        assert!(set_path(&mut v, "pools[name=q].replicas", json!(1)).unwrap_err().contains("no item"));
        assert!(set_path(&mut v, "x.y", json!(1)).unwrap_err().contains("not an object"));
        assert!(set_path(&mut v, "a..b", json!(1)).is_err());
        assert!(set_path(&mut v, "pools[x]", json!(1)).is_err());
        assert!(set_path(&mut v, "pools[0", json!(1)).is_err());
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut v = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut v, &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"m": 1}}));
        assert_eq!(v, json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"m": 1}}));
    }

    #[test]
    fn apply_yields_a_typed_spec_or_a_field_error() {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart.yaml"));
        let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let base: &ScenarioSpec = &serde_yaml::from_value(doc["spec"].clone()).unwrap();
        let out = apply(
            base,
            &[
                Edit::Set { path: "replicas".into(), value: json!(3) },
                Edit::Merge(json!({"vllm": {"maxNumSeqs": 64}})),
            ],
            "spec.candidates[0]",
        )
        .unwrap();
        assert_eq!(out.replicas, Some(3));
        assert_eq!(out.vllm.max_num_seqs, Some(64));
        assert_eq!(out.model, base.model);
        let err =
            apply(base, &[Edit::Set { path: "replicas".into(), value: json!("many") }], "spec.parameters[1]")
                .unwrap_err();
        assert!(err.field.starts_with("spec.parameters[1]"), "{err}");
        assert!(err.field.contains("replicas"), "{err}");
    }
}
