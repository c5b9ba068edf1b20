//! What a folder of llm-d manifests deploys, read the way its README deploys it: every YAML file
//! under it (recursively); the helmfile's releases (`helmfile apply`), or the values files of the
//! llm-d charts recognised by their shape (`helm install -f base -f guide`); Kustomize sources
//! (`kubectl apply -k`, rendered with `kubectl kustomize`); local charts named by a release (`helm
//! template`); and plain Kubernetes objects. Files a helmfile or a kustomization uses are read
//! through them only. A Helm template that is not part of a chart or helmfile is skipped with a
//! warning saying how to render it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::llmd::charts::{self, ChartKind, Release};
use crate::llmd::helmfile::{self, ValuesSource};
use crate::llmd::{parse_documents, Objects};
use crate::render;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::spec::ReleaseRef;

/// Kustomization file names.
const KUSTOMIZATION: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// What the paths deploy.
#[derive(Debug, Default)]
pub struct Deployed {
    /// Files holding SimulationScenario documents (read by the caller).
    pub scenario_files: Vec<PathBuf>,
    /// The objects deployed (plain, rendered from releases and Kustomize).
    pub objects: Objects,
    /// How the folder was read and what was left out.
    pub warnings: Vec<String>,
}

/// The README nearest a scenario file (its folder, then each parent up to the folder the run was given)
/// and the catalogued GPUs its text names; `None` without a README in reach.
pub fn readme_gpus(
    scenario_file: &Path,
    roots: &[PathBuf],
) -> Option<(PathBuf, Vec<(String, &'static str)>)> {
    let roots: Vec<PathBuf> = roots.iter().filter(|r| r.is_dir()).map(|r| normalize(r)).collect();
    let mut dir = normalize(scenario_file.parent()?);
    loop {
        if !roots.iter().any(|r| dir.starts_with(r)) {
            return None;
        }
        let readme = std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    let n = n.to_ascii_lowercase();
                    n == "readme.md" || n == "readme"
                })
        });
        if let Some(r) = readme {
            let text = std::fs::read_to_string(&r).ok()?;
            return Some((r, crate::llmd::gpu::named_in_text(&text)));
        }
        dir = dir.parent()?.to_path_buf();
    }
}

/// Reads a file, naming it on failure.
pub fn read_file(p: &Path) -> Result<String, InvalidInput> {
    std::fs::read_to_string(p).map_err(|e| {
        InvalidInput::new(p.display().to_string(), format!("cannot be read: {e}"), "give a readable file")
    })
}

fn in_file(file: &Path, mut e: InvalidInput) -> InvalidInput {
    if !e.field.starts_with(&file.display().to_string()) {
        e.field = format!("{}: {}", file.display(), e.field);
    }
    e
}

/// Whether a YAML file is a Helm (Go) template.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") && text.contains("}}")
}

/// The error for a template given where rendered YAML is needed: a template is not YAML yet, so
/// it is located by the line and column of its first `{{`.
pub fn template_error(file: &Path, text: &str) -> InvalidInput {
    let at = text.find("{{").unwrap_or(0);
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    InvalidInput::new(
        file.display().to_string(),
        format!("is a Helm template ({{{{ at line {line} column {column}) that needs rendering"),
        "render it first (helm template RELEASE CHART -f values.yaml > rendered.yaml) and pass the output, or import the chart's values file in spec.import.releases",
    )
}

/// The YAML files under `dir`, recursively, in path order (hidden folders skipped).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InvalidInput> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        InvalidInput::new(dir.display().to_string(), format!("cannot be read: {e}"), "give a readable folder")
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if is_yaml_name(name) {
            out.push(p);
        }
    }
    Ok(())
}

fn is_yaml_name(name: &str) -> bool {
    [".yaml", ".yml", ".yaml.gotmpl", ".yml.gotmpl"].iter().any(|s| name.ends_with(s))
        || name == "Kustomization"
}

/// The local paths a kustomization uses (resources, bases, components, patch and generator files).
fn kustomization_refs(dir: &Path, k: &Value) -> (Vec<PathBuf>, Vec<String>) {
    let mut local = Vec::new();
    let mut remote = Vec::new();
    let mut add = |s: &str| {
        if s.contains("://") || s.starts_with("github.com/") || s.starts_with("git@") {
            remote.push(s.to_string());
        } else {
            local.push(dir.join(s));
        }
    };
    for key in ["resources", "bases", "components", "patchesStrategicMerge", "crds", "configurations"] {
        for v in k.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = v.as_str() {
                add(s);
            }
        }
    }
    for key in ["patches", "patchesJson6902", "replacements"] {
        for v in k.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = v.get("path").and_then(Value::as_str) {
                add(s);
            }
        }
    }
    for key in ["configMapGenerator", "secretGenerator"] {
        for g in k.get(key).and_then(Value::as_array).into_iter().flatten() {
            for f in ["files", "envs"] {
                for v in g.get(f).and_then(Value::as_array).into_iter().flatten() {
                    if let Some(s) = v.as_str() {
                        add(s.rsplit('=').next().unwrap_or(s));
                    }
                }
            }
        }
    }
    (local, remote)
}

/// An object without the annotation naming its file (to compare two definitions).
fn without_file(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(a) = o.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        a.remove(crate::llmd::FILE_ANNOTATION);
        if a.is_empty() {
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("annotations");
            }
        }
    }
    o
}

/// Clean `a/b/../c` to `a/c` without touching the file system. A `..` with nothing left to
/// cancel (`../shared/x`, `a/../../b`) is kept, so relative paths that climb out still resolve.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                let cancels = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if cancels {
                    out.pop();
                } else if !matches!(out.components().next_back(), Some(Component::RootDir)) {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A file name's stem for a release name (`optimized-baseline.values.yaml` -> `optimized-baseline`,
/// `gaie-x/values.yaml` -> `gaie-x`).
fn release_name(p: &Path) -> String {
    let stem = p.file_name().and_then(|n| n.to_str()).unwrap_or("values");
    let stem = stem
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml")
        .trim_end_matches(".values")
        .trim_end_matches("-values");
    if stem == "values" || stem.is_empty() {
        p.parent().and_then(|d| d.file_name()).and_then(|n| n.to_str()).unwrap_or("release").to_string()
    } else {
        stem.to_string()
    }
}

/// Renders one release: natively for the llm-d charts, with `helm template` for a local chart.
fn render_release(
    name: &str,
    chart: &str,
    version: Option<String>,
    values: Vec<ValuesSource>,
    set: Vec<(String, Value)>,
    base: &Path,
    out: &mut Deployed,
) -> Result<(), InvalidInput> {
    let local = base.join(chart);
    let is_path = chart.starts_with('.') || chart.starts_with('/') || charts::kind_of_chart(chart).is_none();
    if is_path && local.join("Chart.yaml").is_file() {
        let mut files = Vec::new();
        // Inline values go to files in a folder removed once helm has read them.
        let tmp = tempfile::Builder::new().prefix("blis-values-").tempdir().map_err(|e| {
            InvalidInput::new(
                std::env::temp_dir().display().to_string(),
                e.to_string(),
                "give a writable temp folder (TMPDIR)",
            )
        })?;
        for (i, v) in values.iter().enumerate() {
            match v {
                ValuesSource::File(p) => files.push(p.clone()),
                ValuesSource::Inline(doc) => {
                    let p = tmp.path().join(format!("{name}.{i}.yaml"));
                    std::fs::write(&p, serde_yaml::to_string(doc).unwrap_or_default()).map_err(|e| {
                        InvalidInput::new(
                            p.display().to_string(),
                            e.to_string(),
                            "give a writable temp folder",
                        )
                    })?;
                    files.push(p);
                }
            }
        }
        let set: Vec<(String, String)> = set
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        let text = render::helm_template(name, &local, "default", &files, &set)?;
        let mut docs = parse_documents(&text).map_err(|e| in_file(&local, e))?;
        let from = format!("release {name} of the chart {}", local.display());
        docs.iter_mut().for_each(|d| crate::llmd::set_file(d, &from));
        out.objects.extend(docs);
        out.warnings
            .push(format!("release {name}: rendered the local chart {} with helm template", local.display()));
        return Ok(());
    }
    let Some(kind) = charts::kind_of_chart(chart) else {
        out.warnings.push(format!(
            "release {name} of chart {chart:?} is not an llm-d chart the twin reads; left out"
        ));
        return Ok(());
    };
    let mut docs = Vec::new();
    let mut sources = Vec::new();
    for v in values {
        match v {
            ValuesSource::File(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    InvalidInput::new(
                        format!("release {name}: values"),
                        format!("names {}, which cannot be read: {e}", p.display()),
                        "point it at a values file of the folder (a path relative to the helmfile)",
                    )
                })?;
                if is_template(&text) {
                    return Err(template_error(&p, &text));
                }
                let doc: Value = serde_yaml::from_str(&text).map_err(|e| {
                    InvalidInput::new(
                        p.display().to_string(),
                        crate::yaml_error::problem(&e, &text),
                        "fix the values file (one document)",
                    )
                })?;
                sources.push(p.display().to_string());
                docs.push(doc);
            }
            ValuesSource::Inline(doc) => docs.push(doc),
        }
    }
    let mut merged = charts::merge_values(&docs);
    for (k, v) in set {
        charts::set_path(&mut merged, &k, v);
    }
    let from = format!(
        "release {name} ({})",
        if sources.is_empty() { "inline values".to_string() } else { sources.join(", ") }
    );
    let r = Release { name: name.to_string(), kind, version, values: merged, sources };
    let rendered = charts::render(&r)?;
    out.warnings.extend(rendered.warnings);
    let mut docs = rendered.objects;
    docs.iter_mut().for_each(|d| crate::llmd::set_file(d, &from));
    out.objects.extend(docs);
    Ok(())
}

/// Renders a scenario's own `import.releases`, `import.helmfile` and `import.kustomize` (paths
/// relative to `dir`) into `out`.
pub fn render_named(
    dir: &Path,
    releases: &[ReleaseRef],
    helmfile_path: Option<&str>,
    environment: Option<&str>,
    env: &BTreeMap<String, String>,
    kustomize: &[String],
    out: &mut Deployed,
) -> Result<(), InvalidInput> {
    for r in releases {
        let values = r.values.iter().map(|v| ValuesSource::File(dir.join(v))).collect();
        let set = r
            .set
            .as_ref()
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        render_release(&r.name, &r.chart, r.version.clone(), values, set, dir, out)?;
    }
    if let Some(h) = helmfile_path {
        read_helmfile(&dir.join(h), environment, env, out)?;
    }
    for k in kustomize {
        let p = dir.join(k);
        let text = render::kustomize(&p)?;
        out.objects.extend(parse_documents(&text).map_err(|e| in_file(&p, e))?);
    }
    Ok(())
}

/// Renders the releases of a helmfile; returns the values files it used.
fn read_helmfile(
    path: &Path,
    environment: Option<&str>,
    env: &BTreeMap<String, String>,
    out: &mut Deployed,
) -> Result<Vec<PathBuf>, InvalidInput> {
    let text = read_file(path)?;
    let mut warnings = Vec::new();
    let releases = helmfile::read(path, &text, environment, env, &read_file, &mut warnings)?;
    out.warnings.extend(warnings);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut used = Vec::new();
    for r in releases {
        used.extend(r.values.iter().filter_map(|v| match v {
            ValuesSource::File(p) => Some(normalize(p)),
            ValuesSource::Inline(_) => None,
        }));
        render_release(&r.name, &r.chart, r.version, r.values, r.set, dir, out)
            .map_err(|e| in_file(path, e))?;
    }
    Ok(used)
}

/// Reads what `paths` (files or folders) deploy.
pub fn read(paths: &[PathBuf]) -> Result<Deployed, InvalidInput> {
    let mut out = Deployed::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files)?;
        } else {
            let text = read_file(p)?;
            if is_template(&text)
                && !helmfile::is_helmfile_name(p.file_name().and_then(|n| n.to_str()).unwrap_or(""))
            {
                return Err(template_error(p, &text));
            }
            files.push(p.clone());
        }
    }
    let files: Vec<PathBuf> = files.iter().map(|f| normalize(f)).collect();
    let mut consumed: BTreeSet<PathBuf> = BTreeSet::new();

    // Local charts: their files are read only through `helm template`.
    let chart_dirs: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "Chart.yaml"))
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    for f in &files {
        if chart_dirs.iter().any(|d| f.starts_with(d)) {
            consumed.insert(f.clone());
        }
    }

    // Kustomize: roots are kustomizations no other kustomization uses.
    let mut kust: Vec<(PathBuf, Value)> = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| KUSTOMIZATION.contains(&n)))
    {
        let text = read_file(f)?;
        let k: Value = serde_yaml::from_str(&text).map_err(|e| {
            InvalidInput::new(
                f.display().to_string(),
                crate::yaml_error::problem(&e, &text),
                "fix the kustomization (one document)",
            )
        })?;
        consumed.insert(f.clone());
        kust.push((f.parent().unwrap_or(Path::new(".")).to_path_buf(), k));
    }
    let mut used_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for (dir, k) in &kust {
        let (local, _) = kustomization_refs(dir, k);
        for p in local {
            let p = normalize(&p);
            if files.contains(&p) {
                consumed.insert(p);
            } else {
                used_dirs.insert(p);
            }
        }
    }
    for (dir, k) in &kust {
        let component = k.get("kind").and_then(Value::as_str) == Some("Component");
        if component || used_dirs.contains(dir) {
            continue;
        }
        let (_, remote) = kustomization_refs(dir, k);
        if let Some(r) = remote.first() {
            return Err(InvalidInput::new(
                dir.join("kustomization.yaml").display().to_string(),
                format!("uses the remote resource {r}, which cannot be fetched offline"),
                format!("render it where the network is reachable (kubectl kustomize {} > rendered.yaml) and import the output", dir.display()),
            ));
        }
        let text = render::kustomize(dir)?;
        let mut docs = parse_documents(&text).map_err(|e| in_file(dir, e))?;
        docs.iter_mut()
            .for_each(|d| crate::llmd::set_file(d, &format!("the kustomization {}", dir.display())));
        out.objects.extend(docs);
        out.warnings.push(format!("rendered the kustomization {} with kubectl kustomize", dir.display()));
    }

    // Helmfiles: the default one; alternatives are named, not read.
    let helmfiles: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            !consumed.contains(*f)
                && helmfile::is_helmfile_name(f.file_name().and_then(|n| n.to_str()).unwrap_or(""))
        })
        .collect();
    let primary: Vec<&PathBuf> = helmfiles
        .iter()
        .copied()
        .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("helmfile.")))
        .collect();
    for h in &helmfiles {
        consumed.insert((*h).clone());
        if !primary.is_empty() && !primary.contains(h) {
            out.warnings.push(format!(
                "{} is an alternative helmfile; not read (name it in spec.import.helmfile to use it)",
                h.display()
            ));
        }
    }
    let chosen: Vec<&PathBuf> = if primary.is_empty() { helmfiles.clone() } else { primary };
    for h in chosen {
        for used in read_helmfile(h, None, &BTreeMap::new(), &mut out)? {
            consumed.insert(used);
        }
        // Files the helmfile names only in branches its default environment does not take (a
        // variant chosen by `env "X"` or `.Environment.Name`) are alternatives, not extra releases.
        let text = read_file(h)?;
        let dir = h.parent().unwrap_or(Path::new("."));
        let alternatives: Vec<&PathBuf> = files
            .iter()
            .filter(|f| !consumed.contains(*f))
            .filter(|f| f.strip_prefix(dir).ok().and_then(|r| r.to_str()).is_some_and(|r| text.contains(r)))
            .collect();
        for f in alternatives {
            consumed.insert(f.clone());
            out.warnings.push(format!(
                "{} is named by {} in a branch its default environment does not take; not read (choose it with spec.import.helmfile plus helmfileEnvironment or helmfileEnv)",
                f.display(),
                h.display()
            ));
        }
        // `helmfile apply` deploys what the helmfile names: other files in its sub-folders (chart
        // examples, rendered samples) are not part of the deployment. Files beside it (an
        // HTTPRoute the README applies) and scenarios are still read.
        let extra: Vec<PathBuf> = files
            .iter()
            .filter(|f| !consumed.contains(*f) && f.starts_with(dir) && f.parent() != Some(dir))
            .filter(|f| !read_file(f).is_ok_and(|t| t.contains(crate::manifest::KIND)))
            .cloned()
            .collect();
        for f in extra {
            out.warnings.push(format!(
                "{} is not deployed by {} (it names neither the file nor its folder); not read (pass it as a file to include it)",
                f.display(),
                h.display()
            ));
            consumed.insert(f);
        }
    }

    // The rest: scenarios, objects, chart values by shape, templates.
    let mut loose: Vec<(PathBuf, ChartKind, Value)> = Vec::new();
    // Which file defined each plain object: a later file's object of the same kind and name
    // replaces it, as `kubectl apply` of the folder would; that is said, not done in silence.
    let mut defined: BTreeMap<(String, String), (PathBuf, Value)> = BTreeMap::new();
    for o in out.objects.all() {
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        defined.insert(
            (kind, name),
            (PathBuf::from("the rendered releases and kustomizations"), without_file(o)),
        );
    }
    for f in files.iter().filter(|f| !consumed.contains(*f)) {
        let text = read_file(f)?;
        if is_template(&text) {
            out.warnings.push(format!(
                "{} is a Helm template (it contains {{{{ }}}}); it was skipped: render it with helm template, or import the chart's values",
                f.display()
            ));
            continue;
        }
        let docs = parse_documents(&text).map_err(|e| in_file(f, e))?;
        let mut scenario = false;
        for doc in docs {
            match doc.get("kind").and_then(Value::as_str) {
                Some(crate::manifest::KIND) => scenario = true,
                Some(kind) => {
                    let name =
                        doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                    let key = (kind.to_string(), name.clone());
                    // An identical copy (a committed rendering of the same sources) changes nothing.
                    if let Some((first, before)) = defined.insert(key, (f.clone(), doc.clone())) {
                        // Only kinds the import reads: two HTTPRoute variants change no prediction.
                        let read = crate::llmd::workload::KINDS.contains(&kind)
                            || [
                                "InferencePool",
                                "ConfigMap",
                                "InferenceObjective",
                                "InferenceModel",
                                "HorizontalPodAutoscaler",
                                "VariantAutoscaling",
                            ]
                            .contains(&kind);
                        if read && first != *f && before != doc {
                            out.warnings.push(format!(
                                "{kind} {name} is defined in {} and again in {}; the later file's replaces it, as kubectl apply of the folder would (pass only the file you deploy to use the other)",
                                first.display(),
                                f.display()
                            ));
                        }
                    }
                    let mut doc = doc;
                    crate::llmd::set_file(&mut doc, &f.display().to_string());
                    out.objects.push(doc)
                }
                None => match charts::kind_of_values(&doc) {
                    Some(k) => loose.push((f.clone(), k, doc)),
                    None => out.warnings.push(format!(
                        "{} holds no Kubernetes object or llm-d chart values; not read",
                        f.display()
                    )),
                },
            }
        }
        if scenario {
            out.scenario_files.push(f.clone());
        }
    }
    render_loose_values(loose, &mut out)?;
    Ok(out)
}

/// Values files no helmfile names, grouped into releases: all router (or GAIE) values as one release
/// merged base-first (`recipes/` and `base.values.yaml` first, as the guides' `helm install -f base
/// -f guide` does), and one release per modelservice or WVA values file.
fn render_loose_values(
    loose: Vec<(PathBuf, ChartKind, Value)>,
    out: &mut Deployed,
) -> Result<(), InvalidInput> {
    let is_base = |p: &Path| {
        p.components().any(|c| c.as_os_str() == "recipes")
            || p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("base."))
    };
    for kind in [ChartKind::Router, ChartKind::Gaie] {
        let mut group: Vec<&(PathBuf, ChartKind, Value)> =
            loose.iter().filter(|(_, k, _)| *k == kind).collect();
        if group.is_empty() {
            continue;
        }
        group.sort_by_key(|(p, _, _)| (!is_base(p), p.clone()));
        let name = group.iter().rev().map(|(p, _, _)| release_name(p)).next().unwrap_or_default();
        let values: Vec<ValuesSource> = group.iter().map(|(p, _, _)| ValuesSource::File(p.clone())).collect();
        out.warnings.push(format!(
            "values files {:?} read as one {} release {name:?}, merged in that order",
            group.iter().map(|(p, _, _)| p.display().to_string()).collect::<Vec<_>>(),
            if kind == ChartKind::Router { "llm-d-router" } else { "GAIE inferencepool" }
        ));
        let chart = if kind == ChartKind::Router { "llm-d-router" } else { "inferencepool" };
        render_release(&name, chart, None, values, Vec::new(), Path::new("."), out)?;
    }
    for kind in [ChartKind::ModelService, ChartKind::Wva] {
        let group: Vec<&(PathBuf, ChartKind, Value)> = loose.iter().filter(|(_, k, _)| *k == kind).collect();
        // Several modelservice values in one folder are variants (TPU, XPU...): `values.yaml` is the default.
        let mut chosen: Vec<&(PathBuf, ChartKind, Value)> = Vec::new();
        for g in &group {
            let dir = g.0.parent();
            let siblings: Vec<&&(PathBuf, ChartKind, Value)> =
                group.iter().filter(|x| x.0.parent() == dir).collect();
            let default = siblings.iter().find(|x| x.0.file_name().is_some_and(|n| n == "values.yaml"));
            if siblings.len() == 1 || default.is_some_and(|d| d.0 == g.0) {
                chosen.push(g);
            } else {
                out.warnings.push(format!(
                    "{} is a variant of the values beside it; not read (name it in spec.import.releases to use it)",
                    g.0.display()
                ));
            }
        }
        for (p, _, _) in chosen {
            let chart = if kind == ChartKind::ModelService {
                "llm-d-modelservice"
            } else {
                "workload-variant-autoscaler"
            };
            render_release(
                &release_name(p),
                chart,
                None,
                vec![ValuesSource::File(p.clone())],
                Vec::new(),
                Path::new("."),
                out,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GAIE values whose EPP config names `scorer` (a marker of the variant).
    fn gaie_values(scorer: &str) -> String {
        format!(
            "inferenceExtension:\n  pluginsConfigFile: c.yaml\n  pluginsCustomConfig:\n    c.yaml: |\n      apiVersion: llm-d.ai/v1alpha1\n      kind: EndpointPickerConfig\n      plugins:\n      - type: {scorer}\n      - type: max-score-picker\n      schedulingProfiles:\n      - name: default\n        plugins:\n        - pluginRef: {scorer}\n        - pluginRef: max-score-picker\ninferencePool:\n  modelServers:\n    matchLabels: {{app: x}}\n"
        )
    }

    /// A helmfile choosing between two GAIE values variants by `env "VARIANT"`: the folder reads
    /// the default branch and names the other; `spec.import.helmfileEnv` chooses the other.
    #[test]
    fn helmfile_variants_by_environment_variable() {
        let tmp = tempfile::Builder::new().prefix("blis-folder-variants-").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for (p, text) in [
            ("a/values.yaml", gaie_values("queue-scorer")),
            ("b/values.yaml", gaie_values("no-hit-lru-scorer")),
            (
                "helmfile.yaml.gotmpl",
                "releases:\n  - name: gaie-x\n    chart: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool\n    version: v1.3.0\n    values:\n    {{- if eq (env \"VARIANT\") \"b\" }}\n      - b/values.yaml\n    {{- else }}\n      - a/values.yaml\n    {{- end }}\n".to_string(),
            ),
        ] {
            std::fs::create_dir_all(dir.join(p).parent().unwrap()).unwrap();
            std::fs::write(dir.join(p), text).unwrap();
        }
        let text = |d: &Deployed| serde_json::to_string(d.objects.all()).unwrap();
        let d = read(std::slice::from_ref(&dir)).unwrap();
        assert!(!text(&d).contains("no-hit-lru-scorer"), "{}", text(&d));
        let note =
            d.warnings.iter().find(|w| w.contains("b/values.yaml is named by")).expect("variant named");
        assert!(note.contains("helmfileEnv"), "{note}");
        assert_eq!(d.objects.all().iter().filter(|o| o["kind"] == "InferencePool").count(), 1);
        let mut named = Deployed::default();
        let env = BTreeMap::from([("VARIANT".to_string(), "b".to_string())]);
        render_named(&dir, &[], Some("helmfile.yaml.gotmpl"), None, &env, &[], &mut named).unwrap();
        assert!(text(&named).contains("no-hit-lru-scorer"), "{}", text(&named));
        assert!(!named.warnings.iter().any(|w| w.contains("VARIANT")), "{:?}", named.warnings);
        tmp.close().unwrap();
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(release_name(Path::new("a/router/optimized-baseline.values.yaml")), "optimized-baseline");
        assert_eq!(release_name(Path::new("a/gaie-x/values.yaml")), "gaie-x");
        assert_eq!(normalize(Path::new("a/b/../c/./d.yaml")), PathBuf::from("a/c/d.yaml"));
        assert_eq!(normalize(Path::new("../shared/x.yaml")), PathBuf::from("../shared/x.yaml"));
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
        assert!(is_template("x: {{ .Values.x }}") && !is_template("x: '{'"));
        let (local, remote) = kustomization_refs(
            Path::new("k"),
            &serde_json::json!({"resources": ["../base", "github.com/x/y?ref=v1"], "patches": [{"path": "p.yaml"}]}),
        );
        assert_eq!(local, vec![PathBuf::from("k/../base"), PathBuf::from("k/p.yaml")]);
        assert_eq!(remote, vec!["github.com/x/y?ref=v1".to_string()]);
    }
}
