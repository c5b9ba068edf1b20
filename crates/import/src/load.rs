//! The file edge of the CLI: reading scenario files and the trace files they name. Kept apart so the
//! rest of the scenario code stays free of I/O.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::folder;
use crate::llmd;
use crate::manifest::{parse_scenarios, ScenarioManifest, API_VERSION, KIND};
use blis_sim::catalog::Calibration;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::spec::ImportSpec;
use blis_sim::workload::Trace;

/// A scenario read from a file, with the text of its trace when it replays one from a path.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// File it came from.
    pub file: PathBuf,
    /// The manifest.
    pub manifest: ScenarioManifest,
    /// The trace file read, when `spec.workload.trace.path` is set.
    pub trace: Option<Arc<Trace>>,
    /// What the importers of `spec.import` approximated or ignored.
    pub import_warnings: Vec<String>,
    /// The manifest each imported input came from (inputs paths).
    pub import_sources: std::collections::BTreeMap<String, String>,
}

/// Reads every `SimulationScenario` of `text` (found in `file`), resolving trace paths relative to
/// the file's folder.
pub fn load_text(file: &Path, text: &str) -> Result<(Vec<LoadedScenario>, Vec<String>), InvalidInput> {
    let (manifests, skipped) = parse_scenarios(text).map_err(|e| in_file(file, e))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut out = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let trace = match manifest.spec.workload.trace.as_ref().and_then(|t| t.path.as_ref()) {
            Some(p) => {
                let path = dir.join(p);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    InvalidInput::new(
                        format!("{}: spec.workload.trace.path", manifest.metadata.name),
                        format!("cannot read {}: {e}", path.display()),
                        "give a path to a CSV file, relative to the scenario file",
                    )
                })?;
                Some(Arc::new(Trace::parse_csv(&text)))
            }
            None => None,
        };
        out.push(LoadedScenario {
            file: file.to_path_buf(),
            manifest,
            trace,
            import_warnings: Vec::new(),
            import_sources: Default::default(),
        });
    }
    Ok((out, skipped))
}

/// Reads a scenario file.
pub fn load_file(file: &Path) -> Result<(Vec<LoadedScenario>, Vec<String>), InvalidInput> {
    load_text(file, &read(file)?)
}

fn read(file: &Path) -> Result<String, InvalidInput> {
    std::fs::read_to_string(file).map_err(|e| {
        InvalidInput::new(
            file.display().to_string(),
            format!("cannot be read: {e}"),
            "give the path of a YAML file holding SimulationScenario documents",
        )
    })
}

/// Reads every scenario in `paths` (files, or folders read recursively as their README deploys
/// them: see [`folder`]) and applies their `spec.import` against what the paths deploy (the
/// InferencePool, model servers, EPP config, autoscalers... of a GitOps folder or an llm-d guide). A
/// scenario with neither `import` nor `model` imports what the folder deploys. Fails when the paths
/// hold no `SimulationScenario`, naming what they hold instead.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<LoadedScenario>, InvalidInput> {
    let deployed = folder::read(paths)?;
    let mut out = Vec::new();
    for f in &deployed.scenario_files {
        out.extend(load_text(f, &read(f)?)?.0);
    }
    if out.is_empty() && !paths.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let kinds: Vec<String> = deployed.objects.kinds();
        return Err(InvalidInput::new(
            format!("{}: kind", names.join(", ")),
            format!(
                "holds no SimulationScenario (found: {})",
                if kinds.is_empty() { "nothing".to_string() } else { kinds.join(", ") }
            ),
            format!(
                "add a document with apiVersion: {} and kind: {} (with at least a workload)",
                API_VERSION, KIND
            ),
        ));
    }
    for l in &mut out {
        let spec = &mut l.manifest.spec;
        // Nothing named: import what the folder deploys.
        if spec.import.is_none() && spec.model.is_unset() {
            spec.import = Some(ImportSpec::default());
        }
        let mut objects = deployed.objects.clone();
        let mut warnings = deployed.warnings.clone();
        if let Some(imp) = spec.import.as_mut() {
            let dir = l.file.parent().unwrap_or(Path::new("."));
            let mut named = folder::Deployed::default();
            folder::render_named(
                dir,
                imp.releases.as_deref().unwrap_or_default(),
                imp.helmfile.as_deref(),
                imp.helmfile_environment.as_deref(),
                &imp.helmfile_env.clone().unwrap_or_default(),
                imp.kustomize.as_deref().unwrap_or_default(),
                &mut named,
            )
            .map_err(|e| {
                in_file(
                    &l.file,
                    InvalidInput {
                        field: format!("{}: spec.import: {}", l.manifest.metadata.name, e.field),
                        ..e
                    },
                )
            })?;
            // A helmfile the scenario names is read with its choices: the notes of the folder's
            // default reading of it no longer apply.
            if let Some(h) = &imp.helmfile {
                let shown = folder::normalize(&dir.join(h)).display().to_string();
                warnings.retain(|w| {
                    !(w.contains(&shown)
                        && (w.contains("environment variables") || w.contains(" is named by ")))
                });
            }
            objects.extend(named.objects.into_items());
            warnings.extend(named.warnings);
            // The files are read: what they deploy is among the objects now.
            imp.releases = None;
            imp.helmfile = None;
            imp.helmfile_environment = None;
            imp.helmfile_env = None;
            imp.kustomize = None;
        } else {
            warnings.clear();
        }
        let apply = |spec: &blis_sim::scenario::spec::ScenarioSpec| {
            llmd::apply(spec, &objects).map_err(|e| {
                in_file(
                    &l.file,
                    InvalidInput { field: format!("{}: {}", l.manifest.metadata.name, e.field), ..e },
                )
            })
        };
        let mut imported = apply(&l.manifest.spec)?;
        if imported.gpu_defaulted {
            imported = gpu_from_readme(&l.file, paths, &l.manifest.spec, imported, apply)?;
        }
        check_imported_epp(&imported, &objects)?;
        l.manifest.spec = imported.spec;
        warnings.extend(imported.warnings);
        l.import_warnings = warnings;
        l.import_sources = imported.sources;
    }
    Ok(out)
}

/// When neither the scenario nor the manifests name a GPU and the folder's README names exactly one
/// catalogued GPU ("validated on an 8xH200 cluster"), imports again with that GPU, saying so in a
/// warning and in the sources; otherwise keeps the default-GPU import (and its warning).
/// Files only: the controller imports live objects and has no README, so it keeps the default (the
/// top-level README says so next to the CLI behaviour).
fn gpu_from_readme(
    file: &Path,
    roots: &[PathBuf],
    spec: &blis_sim::scenario::spec::ScenarioSpec,
    defaulted: llmd::Imported,
    apply: impl Fn(&blis_sim::scenario::spec::ScenarioSpec) -> Result<llmd::Imported, InvalidInput>,
) -> Result<llmd::Imported, InvalidInput> {
    let Some((readme, named)) = folder::readme_gpus(file, roots) else { return Ok(defaulted) };
    let [(word, gpu)] = named.as_slice() else {
        let mut out = defaulted;
        if named.len() > 1 {
            let names: Vec<&str> = named.iter().map(|(_, n)| *n).collect();
            out.warnings.push(format!(
                "{} names several GPUs ({}); none is assumed: set spec.hardware.gpu to the GPU you run",
                readme.display(),
                names.join(", ")
            ));
        }
        return Ok(out);
    };
    let mut with_gpu = spec.clone();
    with_gpu.hardware.gpu = gpu.to_string();
    let mut out = apply(&with_gpu)?;
    let said = format!("README: {} names {word:?}", readme.display());
    for i in 0..out.spec.pools.as_ref().map_or(1, Vec::len) {
        out.sources.insert(format!("pools[{i}].gpu"), said.clone());
    }
    out.warnings.push(format!(
        "no GPU is named by the scenario or the model servers' node selection; {} names one GPU, {word:?}: simulating {gpu} (set spec.hardware.gpu to the GPU you run)",
        readme.display()
    ));
    out.gpu_defaulted = false;
    Ok(out)
}

/// Reads the endpoint-picker config the import found as the simulator will, so a refusal (an
/// unregistered plugin type...) names the file that holds it rather than the scenario.
fn check_imported_epp(imported: &llmd::Imported, objects: &llmd::Objects) -> Result<(), InvalidInput> {
    let Some(cfg) = imported.spec.router.endpoint_picker_config.as_ref() else { return Ok(()) };
    let Some(src) = imported.sources.get("router").and_then(|s| s.strip_prefix("manifest: ")) else {
        return Ok(());
    };
    let name = src
        .strip_prefix("endpoint picker ")
        .map(|r| r.split(" of InferencePool").next().unwrap_or(r))
        .or_else(|| src.strip_prefix("ConfigMap "))
        .unwrap_or(src);
    let origin = objects
        .get("ConfigMap", name)
        .or_else(|| objects.get("Deployment", name))
        .and_then(llmd::file_of)
        .map(|f| format!("{f}: {src}"))
        .unwrap_or_else(|| src.to_string());
    let opts = blis_sim::scenario::EppReadOptions {
        allow_unregistered_plugins: imported.spec.router.allow_unregistered_plugins.unwrap_or(false),
    };
    crate::epp::parse(cfg, &opts, &mut Vec::new()).map(|_| ()).map_err(|e| {
        let at = e.field.strip_prefix("spec.router.endpointPickerConfig").unwrap_or(&e.field);
        // The whole config is wrong: it is what the importer read as the endpointPickerConfig.
        let at = Some(at.trim_start_matches('.')).filter(|a| !a.is_empty()).unwrap_or("endpointPickerConfig");
        InvalidInput { field: format!("{origin}: {at}"), ..e }
    })
}

fn in_file(file: &Path, mut e: InvalidInput) -> InvalidInput {
    e.field = format!("{}: {}", file.display(), e.field);
    e
}

/// Reads a calibration profile file written by `blis calibrate` and checks its coefficients.
pub fn load_calibration(path: &Path) -> Result<Calibration, InvalidInput> {
    let name = path.display().to_string();
    let fix = "give a profile file written by blis calibrate";
    let text = std::fs::read_to_string(path)
        .map_err(|e| InvalidInput::new(&name, format!("cannot be read: {e}"), fix))?;
    let c: Calibration =
        serde_yaml::from_str(&text).map_err(|e| InvalidInput::new(&name, e.to_string(), fix))?;
    c.coefficients.validate().map_err(|e| e.under(&name))?;
    Ok(c)
}
