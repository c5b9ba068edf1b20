//! An llm-d guide's published benchmark: the per-rate markdown table of
//! `guides/<guide>/benchmark-results/<run>/README.md` (one column per stack and figure: `<stack>
//! Output`, `<stack> TTFT mean`, `<stack> TTFT p90`; TTFT in seconds) and the llm-d-benchmark
//! inference-perf profile beside it (`llm-d-benchmark-workload-profiles/*.yaml.in`, the one whose
//! stages hold every rate of the table). Each table row is one stage of the profile (the first
//! not-yet-used stage after the previous row's with that rate: the warm-up is not in the table).
//!
//! The guide's "Summary across the full ladder" table is not inference-perf's summary (it averages
//! the stages), so it is not scored. The folder holds no manifests: the deployment is given
//! (`--deployment`, or `from.deployment` of a ClusterExperiment file).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ClusterExperiment, Figures, Point, Run, Stack};
use crate::folder::read_file;
use blis_sim::error::InvalidInput;
use blis_sim::workload::WorkloadProfileSpec;

/// The README with the per-rate table, if `folder` is a guide's benchmark folder.
pub fn table_file(folder: &Path) -> Option<PathBuf> {
    let guides = folder.join("guides");
    let mut found = Vec::new();
    for g in std::fs::read_dir(&guides).ok()?.filter_map(|e| e.ok()) {
        let results = g.path().join("benchmark-results");
        let Ok(rd) = std::fs::read_dir(&results) else { continue };
        for r in rd.filter_map(|e| e.ok()) {
            let readme = r.path().join("README.md");
            if readme.is_file() {
                found.push(readme);
            }
        }
    }
    found.sort();
    found.into_iter().next()
}

/// One stack's column indexes in the table.
#[derive(Debug, Clone, PartialEq)]
struct StackColumns {
    name: String,
    output: Option<usize>,
    ttft_mean: usize,
    ttft_p90: Option<usize>,
}

/// A parsed per-rate table: rates and, per stack, one figures row per rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Rates (req/s), in row order.
    pub rates: Vec<f64>,
    /// Stack name → figures per row.
    pub stacks: Vec<(String, Vec<Figures>)>,
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    t.split('|').map(|c| c.trim().to_string()).collect()
}

fn number(cell: &str) -> Option<f64> {
    cell.replace(',', "").trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Parses the per-rate table of a guide's benchmark README (the first table whose header starts
/// with `Rate`). Errors name the file and the row or column.
pub fn parse_table(text: &str, file: &str) -> Result<Table, InvalidInput> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(h) = lines.iter().position(|l| {
        l.trim_start().starts_with('|') && cells(l).first().is_some_and(|c| c.eq_ignore_ascii_case("rate"))
    }) else {
        return Err(InvalidInput::new(
            file,
            "has no per-rate table (a markdown table whose first column is Rate)",
            "give the guide's benchmark-results README with its per-rate breakdown",
        ));
    };
    let header = cells(lines[h]);
    let mut cols: Vec<StackColumns> = Vec::new();
    for (i, c) in header.iter().enumerate().skip(1) {
        let lower = c.to_ascii_lowercase();
        let (stack, what) = if let Some(s) = lower.strip_suffix(" ttft mean") {
            (s, "mean")
        } else if let Some(s) = lower.strip_suffix(" ttft p90") {
            (s, "p90")
        } else if let Some(s) = lower.strip_suffix(" output") {
            (s, "output")
        } else {
            return Err(InvalidInput::new(
                format!("{file}: table column {:?}", c),
                "is not a known column",
                "columns are Rate, then `<stack> Output`, `<stack> TTFT mean`, `<stack> TTFT p90`",
            ));
        };
        let name = c[..stack.len()].to_string();
        let entry = match cols.iter_mut().position(|s| s.name == name) {
            Some(k) => &mut cols[k],
            None => {
                cols.push(StackColumns {
                    name: name.clone(),
                    output: None,
                    ttft_mean: usize::MAX,
                    ttft_p90: None,
                });
                cols.last_mut().expect("just pushed")
            }
        };
        match what {
            "mean" => entry.ttft_mean = i,
            "p90" => entry.ttft_p90 = Some(i),
            _ => entry.output = Some(i),
        }
    }
    if let Some(s) = cols.iter().find(|s| s.ttft_mean == usize::MAX) {
        return Err(InvalidInput::new(
            format!("{file}: table"),
            format!("has no `{} TTFT mean` column", s.name),
            "every stack needs its TTFT mean column",
        ));
    }
    let mut rates = Vec::new();
    let mut per_stack: Vec<Vec<Figures>> = vec![Vec::new(); cols.len()];
    for (k, line) in lines.iter().enumerate().skip(h + 1) {
        if !line.trim_start().starts_with('|') {
            break;
        }
        let row = cells(line);
        if row.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' '))) {
            continue;
        }
        let at = |col: usize| {
            format!("{file}: line {}, column {:?}", k + 1, header.get(col).map_or("", String::as_str))
        };
        if row.len() != header.len() {
            return Err(InvalidInput::new(
                format!("{file}: line {}", k + 1),
                format!("has {} cells, the header {}", row.len(), header.len()),
                "give one cell per column",
            ));
        }
        let rate = number(&row[0]).filter(|r| *r > 0.0).ok_or_else(|| {
            InvalidInput::new(at(0), "is not a positive number", "give the stage's request rate")
        })?;
        rates.push(rate);
        for (s, c) in cols.iter().enumerate() {
            let get = |col: usize| {
                number(&row[col])
                    .ok_or_else(|| InvalidInput::new(at(col), "is not a number", "give the measured value"))
            };
            let mean = get(c.ttft_mean)?;
            let p90 = c.ttft_p90.map(get).transpose()?;
            let out = c.output.map(get).transpose()?;
            per_stack[s].push(Figures {
                ttft_mean_ms: Some(mean * 1000.0),
                ttft_p90_ms: p90.map(|x| x * 1000.0),
                output_tokens_per_s: out,
                itl_mean_ms: None,
                n: None,
            });
        }
    }
    if rates.is_empty() {
        return Err(InvalidInput::new(format!("{file}: table"), "has no rows", "give the per-rate rows"));
    }
    Ok(Table { rates, stacks: cols.into_iter().map(|c| c.name).zip(per_stack).collect() })
}

/// The stage rates of an inference-perf profile document.
fn stage_rates(doc: &Value) -> Vec<f64> {
    doc.pointer("/load/stages")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.get("rate").and_then(Value::as_f64)).collect())
        .unwrap_or_default()
}

/// Matches table rows to stages: each row takes the first stage after the previous row's whose
/// rate is the row's (so a warm-up before the ladder at a rate the ladder repeats is passed over
/// once the ladder's lower rates come first, as in the guides).
fn match_stages(table_rates: &[f64], stages: &[f64]) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(table_rates.len());
    let mut next = 0usize;
    for r in table_rates {
        let k = (next..stages.len()).find(|&k| (stages[k] - r).abs() < 1e-9)?;
        out.push(u32::try_from(k).ok()?);
        next = k + 1;
    }
    Some(out)
}

/// Fills llm-d-benchmark's `REPLACE_ENV_*` placeholders: the model with the one the README names,
/// the rest with a placeholder (they name the endpoint and storage, not the load).
fn fill_placeholders(text: &str, model: Option<&str>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut filled = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("REPLACE_ENV_") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let value = if name.ends_with("_MODEL") { model.unwrap_or("unknown-model") } else { "unset" };
        out.push_str(value);
        if !filled.iter().any(|f: &String| f.starts_with(name)) {
            filled.push(format!("{name}={value}"));
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    (out, filled)
}

/// The model the README's first lines name (`... model Qwen/Qwen3-32B on ...`).
fn named_model(readme: &str) -> Option<String> {
    let words: Vec<&str> = readme.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "model" && w[1].contains('/'))
        .map(|w| w[1].trim_end_matches(['.', ',']).to_string())
}

/// Converts a guide's benchmark folder; `deployment` is the manifests folder of the same guide.
pub fn convert(folder: &Path, deployment: Option<&Path>) -> Result<ClusterExperiment, InvalidInput> {
    let readme = table_file(folder).ok_or_else(|| {
        InvalidInput::new(
            folder.display().to_string(),
            "has no guides/*/benchmark-results/*/README.md",
            "give a guide's benchmark folder",
        )
    })?;
    let text = read_file(&readme)?;
    let file = readme.display().to_string();
    let table = parse_table(&text, &file)?;
    let Some(dep) = deployment else {
        return Err(InvalidInput::new(
            format!("{}: deployment", folder.display()),
            "the guide's benchmark folder holds no manifests, and none was given",
            "pass --deployment MANIFESTS_FOLDER (for the optimized-baseline guide: ../shared/llm-d-manifests/2026-06-v0.9-optimized-baseline, named by the folder's README), or validate the project's validation/cluster/ files, which name it",
        ));
    };
    if !dep.exists() {
        return Err(super::missing_deployment(
            folder,
            dep,
            "pass --deployment with the guide's manifests folder",
        ));
    }
    let dep = &super::absolute(dep);
    let model = named_model(&text);
    let (profile_path, profile_doc, filled) = profile_for(folder, &table, model.as_deref())?;
    let stage_list = stage_rates(&profile_doc);
    let stages = match_stages(&table.rates, &stage_list).ok_or_else(|| {
        InvalidInput::new(
            format!("{}: load.stages", profile_path.display()),
            "does not hold every rate of the table in order",
            "give the profile the table was measured with",
        )
    })?;
    let workload = blis_sim::workload::WorkloadSpec::of_profile(WorkloadProfileSpec {
        inference_perf: Some(profile_doc),
        benchmark_serving: None,
    });
    let mut notes = vec![
        format!("workload: {} (placeholders filled: {})", super::file_name(&profile_path), filled.join(", ")),
        "the README's summary row averages the stages (not inference-perf's summary): not scored".to_string(),
    ];
    if !text.contains("ITL") {
        notes.push("no ITL per stage in the table".into());
    }
    let stacks = table
        .stacks
        .iter()
        .map(|(name, figs)| {
            let rr = name.to_ascii_lowercase().starts_with("k8s");
            let points = table
                .rates
                .iter()
                .zip(&stages)
                .zip(figs)
                .map(|((&rate, &stage), f)| Point {
                    label: format!("rate {rate}"),
                    rate,
                    stage: Some(stage),
                    measured: *f,
                    unscored: None,
                    censored: false,
                })
                .collect();
            Stack {
                name: name.clone(),
                deployment: vec![dep.to_path_buf()],
                patch: if rr { super::service_patch(super::ServiceSpread::RoundRobin) } else { Value::Null },
                runs: vec![Run { label: "ladder".into(), workload: workload.clone(), trace: None, points }],
                notes: if rr {
                    vec!["a Kubernetes Service over the same pods: round-robin, no endpoint picker (as the README says)".into()]
                } else {
                    Vec::new()
                },
                unrunnable: None,
                substitutions: Vec::new(),
            }
        })
        .collect();
    let name = folder.file_name().map_or_else(|| "guide".into(), |n| n.to_string_lossy().into_owned());
    Ok(ClusterExperiment { name, source: folder.to_path_buf(), stacks, notes })
}

/// The profile whose stages hold every rate of the table, with its placeholders filled.
fn profile_for(
    folder: &Path,
    table: &Table,
    model: Option<&str>,
) -> Result<(PathBuf, Value, Vec<String>), InvalidInput> {
    let dir = folder.join("llm-d-benchmark-workload-profiles");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| {
            InvalidInput::new(
                dir.display().to_string(),
                format!("cannot be read: {e}"),
                "give the guide folder with its workload profiles",
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".yaml.in") || p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let (text, filled) = fill_placeholders(&read_file(&f)?, model);
        let Ok(doc) = serde_yaml::from_str::<Value>(&text) else { continue };
        if match_stages(&table.rates, &stage_rates(&doc)).is_some() {
            return Ok((f, doc, filled));
        }
    }
    Err(InvalidInput::new(
        dir.display().to_string(),
        "holds no inference-perf profile whose stages hold every rate of the table",
        "add the profile the benchmark ran (llm-d-benchmark workload/profiles/inference-perf)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_take_the_first_stage_after_the_previous_row() {
        // warm-up at 15, then 3, 10, 15: the row 15 is the ladder's, not the warm-up's.
        assert_eq!(match_stages(&[3.0, 10.0, 15.0], &[15.0, 3.0, 10.0, 15.0]), Some(vec![1, 2, 3]));
        assert_eq!(match_stages(&[3.0, 7.0], &[3.0, 10.0]), None);
    }
}
