//! Helmfiles (`helmfile.yaml`, and the Go-templated `helmfile.yaml.gotmpl` of the 2025-26 guides):
//! the releases `helmfile apply` installs for one environment, with their chart, version, values
//! files (in order) and `set` entries. Environment variables read by the template are taken as unset
//! (so the template's defaults apply and the result does not depend on the shell), and named in a
//! warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::gotmpl;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::merge_patch;

/// Where a release's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValuesSource {
    /// A values file (path resolved against the helmfile's folder).
    File(PathBuf),
    /// Values written in the helmfile itself.
    Inline(Value),
}

/// One release of a helmfile.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmfileRelease {
    /// Release name.
    pub name: String,
    /// Namespace (empty: the one `helmfile -n` gives).
    pub namespace: String,
    /// Chart reference (`repo/name`, `oci://...`, URL or local path).
    pub chart: String,
    /// Chart version.
    pub version: Option<String>,
    /// Values in merge order.
    pub values: Vec<ValuesSource>,
    /// `set` entries (dotted path, value) applied after the values.
    pub set: Vec<(String, Value)>,
}

/// Whether a file name is a helmfile's.
pub fn is_helmfile_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "helmfile.yaml"
        || n == "helmfile.yml"
        || n == "helmfile.yaml.gotmpl"
        || n.ends_with(".helmfile.yaml")
        || n.ends_with(".helmfile.yaml.gotmpl")
}

fn parse_yaml(text: &str, file: &str) -> Result<Value, InvalidInput> {
    serde_yaml::from_str::<Value>(text).map_err(|e| {
        InvalidInput::new(
            file,
            format!("is not valid YAML after rendering: {e}"),
            "fix the helmfile, or pass its rendered form",
        )
    })
}

/// The releases `path` installs in `environment` (default `default`), reading the files it names
/// with `read`.
pub fn read(
    path: &Path,
    text: &str,
    environment: Option<&str>,
    env: &BTreeMap<String, String>,
    read: &dyn Fn(&Path) -> Result<String, InvalidInput>,
    warnings: &mut Vec<String>,
) -> Result<Vec<HelmfileRelease>, InvalidInput> {
    let file = path.display().to_string();
    let dir = path.parent().unwrap_or(Path::new("."));
    let env_name = environment.unwrap_or("default");
    let parts: Vec<&str> = split_documents(text);
    // Environments come first (their values feed the templates of the later parts).
    let mut env_values = json!({});
    let mut used_env: Vec<String> = Vec::new();
    let lookup = |k: &str| env.get(k).cloned();
    let missing: std::cell::RefCell<Vec<String>> = std::cell::RefCell::new(Vec::new());
    let mut docs = Vec::new();
    for part in &parts {
        let rendered = if part.contains("{{") {
            let data = gotmpl::helmfile_data(env_name, env_values.clone(), "");
            for name in env_reads(part) {
                if !used_env.contains(&name) {
                    used_env.push(name);
                }
            }
            let read_rel = |p: &str| {
                let r = read(&dir.join(p)).ok();
                if r.is_none() {
                    missing.borrow_mut().push(p.to_string());
                }
                r
            };
            gotmpl::render(part, &file, &data, &lookup, &read_rel)?
        } else {
            part.to_string()
        };
        let doc = parse_yaml(&dedupe_anchors(&rendered), &file)?;
        if let Some(envs) = doc.get("environments").and_then(Value::as_object) {
            match envs.get(env_name) {
                None if !envs.is_empty() => {
                    return Err(InvalidInput::new(
                        format!("{file}: environments"),
                        format!(
                            "has no environment {env_name:?} (it has {:?})",
                            envs.keys().collect::<Vec<_>>()
                        ),
                        "name one of its environments in spec.import.helmfileEnvironment",
                    ))
                }
                None => {}
                Some(e) => {
                    for v in e.get("values").and_then(Value::as_array).into_iter().flatten() {
                        match v {
                            Value::String(p) => {
                                let p = dir.join(p);
                                match read(&p) {
                                    Ok(t) => merge_patch(&mut env_values, &parse_yaml(&t, &p.display().to_string())?),
                                    Err(_) => warnings.push(format!(
                                        "{file}: environment {env_name} values file {} is not there; read as empty",
                                        p.display()
                                    )),
                                }
                            }
                            other => merge_patch(&mut env_values, other),
                        }
                    }
                }
            }
        }
        docs.push(doc);
    }
    let missing = missing.into_inner();
    if !missing.is_empty() {
        warnings.push(format!("{file}: files {missing:?} read by the template are not there; read as empty"));
    }
    used_env.retain(|k| !env.contains_key(k));
    if !used_env.is_empty() {
        warnings.push(format!(
            "{file}: environment variables {used_env:?} are read as unset (the template's defaults apply; set them in spec.import.helmfileEnv)"
        ));
    }
    let mut out = Vec::new();
    for doc in &docs {
        for (i, r) in doc.get("releases").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let at = format!("{file}: releases[{i}]");
            if r.get("installed").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            if let Some(cond) = r.get("condition").and_then(Value::as_str) {
                let on = cond.split('.').try_fold(&env_values, |v, k| v.get(k)).and_then(Value::as_bool);
                if on == Some(false) {
                    continue;
                }
            }
            let name = r.get("name").and_then(Value::as_str).ok_or_else(|| {
                InvalidInput::new(format!("{at}.name"), "is missing", "give every release a name")
            })?;
            let chart = r.get("chart").and_then(Value::as_str).ok_or_else(|| {
                InvalidInput::new(format!("{at}.chart"), "is missing", "give every release its chart")
            })?;
            let values = r
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| match v {
                    Value::String(p) => ValuesSource::File(dir.join(p)),
                    other => ValuesSource::Inline(other.clone()),
                })
                .collect();
            let set = r
                .get("set")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    Some((
                        s.get("name")?.as_str()?.to_string(),
                        s.get("value").cloned().unwrap_or(Value::Null),
                    ))
                })
                .collect();
            out.push(HelmfileRelease {
                name: name.to_string(),
                namespace: r.get("namespace").and_then(Value::as_str).unwrap_or("").to_string(),
                chart: chart.to_string(),
                version: r.get("version").and_then(|v| {
                    v.as_str().map(str::to_string).or_else(|| v.as_f64().map(|x| x.to_string()))
                }),
                values,
                set,
            });
        }
    }
    Ok(out)
}

/// Renames anchors defined twice (`&GKE` ... `&GKE`), which YAML allows (a later definition wins for
/// the aliases after it) and the YAML reader does not: each redefinition gets a fresh name, and the
/// aliases after it follow it.
fn dedupe_anchors(text: &str) -> String {
    let mut seen: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['&', '*']) {
        out.push_str(&rest[..i]);
        let sigil = &rest[i..i + 1];
        let after = &rest[i + 1..];
        let n =
            after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(after.len());
        let name = &after[..n];
        let at_token = i == 0 || rest[..i].ends_with([' ', '\t', '\n', '[', ',']);
        if name.is_empty() || !at_token {
            out.push_str(sigil);
            rest = after;
            continue;
        }
        let k = if sigil == "&" {
            let c = seen.entry(name.to_string()).or_insert(0);
            *c += 1;
            *c
        } else {
            seen.get(name).copied().unwrap_or(1)
        };
        out.push_str(sigil);
        out.push_str(name);
        if k > 1 {
            out.push_str(&format!("__{k}"));
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// Splits a multi-document text at `---` lines.
fn split_documents(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            parts.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// Names of the environment variables a template reads (`env "X"`, `requiredEnv "X"`).
fn env_reads(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["env \"", "requiredEnv \""] {
        let mut rest = text;
        while let Some(i) = rest.find(key) {
            let after = &rest[i + key.len()..];
            if let Some(j) = after.find('"') {
                let name = after[..j].to_string();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(
        files: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&Path) -> Result<String, InvalidInput> {
        move |p: &Path| {
            files
                .iter()
                .find(|(n, _)| p.ends_with(n))
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| InvalidInput::new(p.display().to_string(), "missing", "x"))
        }
    }

    #[test]
    fn plain_helmfile_releases() {
        let text = "releases:\n- name: gaie-x\n  chart: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool\n  version: v0.5.1\n  values: [gaie-x/values.yaml]\n- name: off\n  chart: c\n  installed: false\n- name: ms-x\n  chart: llm-d-modelservice/llm-d-modelservice\n  version: v0.2.0\n  values: [ms-x/values.yaml, {decode: {replicas: 3}}]\n  set: [{name: a.b, value: 1}]\n";
        let mut w = Vec::new();
        let r =
            read(Path::new("/f/helmfile.yaml"), text, None, &BTreeMap::new(), &reader(&[]), &mut w).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].name.as_str(), r[0].version.as_deref()), ("gaie-x", Some("v0.5.1")));
        assert_eq!(r[0].values, vec![ValuesSource::File(PathBuf::from("/f/gaie-x/values.yaml"))]);
        assert_eq!(r[1].values[1], ValuesSource::Inline(json!({"decode": {"replicas": 3}})));
        assert_eq!(r[1].set, vec![("a.b".to_string(), json!(1))]);
    }

    /// E.2: a Go-templated helmfile with environments.
    #[test]
    fn templated_helmfile_with_environments() {
        let text = r#"environments:
  default:
    values: [env/istio.yaml]
  gke:
    values: [env/gke.yaml]
---
{{- $rn := (env "RELEASE_NAME_POSTFIX") | default "x" -}}
releases:
  - name: {{ printf "ms-%s" $rn | quote }}
    chart: llm-d-modelservice/llm-d-modelservice
    version: v0.2.10
    values:
    {{- if eq .Environment.Name "gke" }}
      - ms/values_gke.yaml
    {{- else }}
      - ms/values.yaml
    {{- end }}
      - provider: {{ .Environment.Values.provider.name }}
    set:
      - name: routing.inferencePool.name
        value: {{ printf "gaie-%s" $rn | quote }}
"#;
        let files: &'static [(&str, &str)] =
            &[("env/istio.yaml", "provider: {name: istio}"), ("env/gke.yaml", "provider: {name: gke}")];
        let mut w = Vec::new();
        let r =
            read(Path::new("/g/helmfile.yaml.gotmpl"), text, None, &BTreeMap::new(), &reader(files), &mut w)
                .unwrap();
        assert_eq!(r[0].name, "ms-x");
        assert_eq!(r[0].values[0], ValuesSource::File(PathBuf::from("/g/ms/values.yaml")));
        assert_eq!(r[0].values[1], ValuesSource::Inline(json!({"provider": "istio"})));
        assert_eq!(r[0].set[0], ("routing.inferencePool.name".to_string(), json!("gaie-x")));
        assert!(w.iter().any(|x| x.contains("RELEASE_NAME_POSTFIX")), "{w:?}");
        let gke = read(
            Path::new("/g/helmfile.yaml.gotmpl"),
            text,
            Some("gke"),
            &BTreeMap::new(),
            &reader(files),
            &mut w,
        )
        .unwrap();
        assert_eq!(gke[0].values[0], ValuesSource::File(PathBuf::from("/g/ms/values_gke.yaml")));
        let e = read(
            Path::new("/g/helmfile.yaml.gotmpl"),
            text,
            Some("aws"),
            &BTreeMap::new(),
            &reader(files),
            &mut w,
        )
        .unwrap_err();
        assert!(e.problem.contains("\"aws\""), "{e}");
        // Environment variables given (spec.import.helmfileEnv) replace the template's defaults.
        let mut w2 = Vec::new();
        let env = BTreeMap::from([("RELEASE_NAME_POSTFIX".to_string(), "y".to_string())]);
        let y =
            read(Path::new("/g/helmfile.yaml.gotmpl"), text, None, &env, &reader(files), &mut w2).unwrap();
        assert_eq!(y[0].name, "ms-y");
        assert!(!w2.iter().any(|x| x.contains("RELEASE_NAME_POSTFIX")), "{w2:?}");
        assert!(is_helmfile_name("gke.helmfile.yaml") && !is_helmfile_name("values.yaml"));
        // A redefined anchor: later aliases follow the later definition.
        let t = dedupe_anchors("a: &X {v: 1}\nb: &X {v: 2}\nc: *X\nd: '&X'\n");
        let v: Value = serde_yaml::from_str(&t).unwrap();
        assert_eq!(v["c"], json!({"v": 2}));
        assert_eq!(v["d"], json!("&X"));
    }
}
