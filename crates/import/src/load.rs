//! The file edge of the CLI: reading scenario files and the trace files they name. Kept apart so the
//! rest of the scenario code stays free of I/O.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::llmd::{self, Objects};
use crate::manifest::{parse_scenarios, ScenarioManifest, API_VERSION, KIND};
use blis_sim::catalog::Calibration;
use blis_sim::error::InvalidInput;

/// A scenario read from a file, with the text of its trace when it replays one from a path.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// File it came from.
    pub file: PathBuf,
    /// The manifest.
    pub manifest: ScenarioManifest,
    /// Trace CSV content, when `spec.workload.trace.path` is set.
    pub trace_text: Option<Arc<str>>,
    /// What the importers of `spec.import` approximated or ignored.
    pub import_warnings: Vec<String>,
}

/// Reads every `SimulationScenario` of `text` (found in `file`), resolving trace paths relative to
/// the file's folder.
pub fn load_text(file: &Path, text: &str) -> Result<(Vec<LoadedScenario>, Vec<String>), InvalidInput> {
    let (manifests, skipped) = parse_scenarios(text).map_err(|e| in_file(file, e))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut out = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let trace_text = match manifest.spec.workload.trace.as_ref().and_then(|t| t.path.as_ref()) {
            Some(p) => {
                let path = dir.join(p);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    InvalidInput::new(
                        format!("{}: spec.workload.trace.path", manifest.metadata.name),
                        format!("cannot read {}: {e}", path.display()),
                        "give a path to a CSV file, relative to the scenario file",
                    )
                })?;
                Some(Arc::from(text))
            }
            None => None,
        };
        out.push(LoadedScenario {
            file: file.to_path_buf(),
            manifest,
            trace_text,
            import_warnings: Vec::new(),
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

/// Reads every scenario in `paths` (files, or folders whose `.yaml`/`.yml` files are read in name
/// order) and applies their `spec.import` against the other documents of the same paths (the
/// InferencePool, Deployments, ConfigMaps... of a GitOps folder). Fails when the paths hold no
/// `SimulationScenario`, naming what they hold instead.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<LoadedScenario>, InvalidInput> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut objects = Objects::default();
    for path in paths {
        let files = if path.is_dir() { yaml_files(path)? } else { vec![path.clone()] };
        for f in &files {
            let text = read(f)?;
            let (l, s) = load_text(f, &text)?;
            out.extend(l);
            if !s.is_empty() {
                for doc in llmd::parse_documents(&text).map_err(|e| in_file(f, e))? {
                    if doc.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
                        objects.push(doc);
                    }
                }
            }
            skipped.extend(s);
        }
    }
    if out.is_empty() && !paths.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(InvalidInput::new(
            names.join(", "),
            format!(
                "holds no SimulationScenario (found: {})",
                if skipped.is_empty() { "nothing".to_string() } else { skipped.join(", ") }
            ),
            format!("add a document with apiVersion: {} and kind: {}", API_VERSION, KIND),
        ));
    }
    for l in &mut out {
        let imported = llmd::apply(&l.manifest.spec, &objects).map_err(|e| {
            in_file(
                &l.file,
                InvalidInput { field: format!("{}: {}", l.manifest.metadata.name, e.field), ..e },
            )
        })?;
        l.manifest.spec = imported.spec;
        l.import_warnings = imported.warnings;
    }
    Ok(out)
}

/// The YAML files directly in `dir`, sorted by name.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, InvalidInput> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        InvalidInput::new(dir.display().to_string(), format!("cannot be read: {e}"), "give a readable folder")
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
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
