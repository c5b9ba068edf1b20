//! llm-d-benchmark's 2025 P/D runs (exp-7): vLLM `benchmark_serving` result JSONs in
//! `data/openshift/<exp>/<GPU>/<stack>/benchmark_*.json`, the commands in `yamls/<exp>/cmds.txt`
//! (`## <GPU> Experiment` sections; one line per stack: `BENCHMARK_SUBFOLDER=<stack>
//! BENCHMARK_INPUT_LEN=.. BENCHMARK_OUTPUT_LEN=.. BENCHMARK_NUM_PROMPTS=.. BENCHMARK_REQUEST_RATE=..
//! BENCHMARK_BURSTINESS=.. ./run_benchmark.sh`), and the deployments in `yamls/<exp>/`.
//!
//! A stack is one GPU and subfolder; its one run is the command's random-dataset load (a length the
//! command leaves to the script is the one its result files record), and its measured figures are
//! the mean over the result files (TTFT mean, ITL mean, output tok/s; the JSONs hold no TTFT p90).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{ClusterExperiment, Figures, Point, Run, Stack};
use crate::folder::read_file;
use blis_sim::error::InvalidInput;
use blis_sim::workload::WorkloadProfileSpec;

/// The node-selector placeholder of the P/D manifests, filled by the harness with the GPU product.
pub const GPU_PLACEHOLDER: &str = "$LLMDBENCH_GPU_MODEL";

/// `data/openshift/<exp>` holding `<GPU>/<stack>/benchmark_*.json`, if `folder` has one.
pub fn data_dir(folder: &Path) -> Option<PathBuf> {
    super::entries(&folder.join("data").join("openshift")).into_iter().find(|d| {
        !result_files(d).is_empty()
            && folder.join("yamls").join(d.file_name().unwrap_or_default()).join("cmds.txt").is_file()
    })
}

/// `(gpu, stack, file)` of every result JSON.
fn result_files(exp: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let name = super::file_name;
    for g in std::fs::read_dir(exp).into_iter().flatten().filter_map(|e| e.ok()) {
        for s in std::fs::read_dir(g.path()).into_iter().flatten().filter_map(|e| e.ok()) {
            for f in std::fs::read_dir(s.path()).into_iter().flatten().filter_map(|e| e.ok()) {
                let p = f.path();
                if name(&p).starts_with("benchmark_") && name(&p).ends_with(".json") {
                    out.push((name(&g.path()), name(&s.path()), p));
                }
            }
        }
    }
    out.sort();
    out
}

/// The `BENCHMARK_*` variables of each command, by (GPU section, subfolder).
pub fn parse_commands(text: &str) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut gpu = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("## ") {
            gpu = h.split_whitespace().next().unwrap_or("").to_string();
            continue;
        }
        if t.starts_with('#') || !t.contains("BENCHMARK_SUBFOLDER=") {
            continue;
        }
        let vars: BTreeMap<String, String> = t
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| k.starts_with("BENCHMARK_"))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        if let Some(sub) = vars.get("BENCHMARK_SUBFOLDER") {
            out.insert((gpu.clone(), sub.clone()), vars);
        }
    }
    out
}

/// The GPU product label a node selector names, by the section's GPU name.
fn gpu_label(gpu: &str) -> Option<&'static str> {
    match gpu {
        "A100" => Some("NVIDIA-A100-SXM4-80GB"),
        "H100" => Some("NVIDIA-H100-80GB-HBM3"),
        _ => None,
    }
}

/// The figure a result JSON records, or an error naming the file and field.
fn field(doc: &Value, key: &str, file: &str) -> Result<f64, InvalidInput> {
    doc.get(key).and_then(Value::as_f64).filter(|x| x.is_finite()).ok_or_else(|| {
        InvalidInput::new(
            format!("{file}: {key}"),
            "is missing or not a number",
            "give the result JSON benchmark_serving wrote",
        )
    })
}

/// Converts a benchmark_serving experiment folder.
pub fn convert(folder: &Path) -> Result<ClusterExperiment, InvalidInput> {
    let exp_dir = data_dir(folder).ok_or_else(|| {
        InvalidInput::new(
            folder.display().to_string(),
            "has no data/openshift/<exp>/<GPU>/<stack>/benchmark_*.json with yamls/<exp>/cmds.txt",
            "give a benchmark_serving experiment folder",
        )
    })?;
    let exp = super::file_name(&exp_dir);
    let yamls = folder.join("yamls").join(&exp);
    let cmds_path = yamls.join("cmds.txt");
    let commands = parse_commands(&read_file(&cmds_path)?);
    let mut groups: BTreeMap<(String, String), Vec<(PathBuf, Value)>> = BTreeMap::new();
    for (gpu, stack, path) in result_files(&exp_dir) {
        let text = read_file(&path)?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            InvalidInput::new(
                path.display().to_string(),
                format!("is not JSON: {e}"),
                "give the result JSON benchmark_serving wrote",
            )
        })?;
        groups.entry((gpu, stack)).or_default().push((path, doc));
    }
    let mut stacks = Vec::new();
    for ((gpu, stack), files) in groups {
        let name = format!("{gpu} {stack}");
        let Some(vars) = commands.get(&(gpu.clone(), stack.clone())) else {
            return Err(InvalidInput::new(
                format!("{}: {gpu} {stack}", cmds_path.display()),
                "has no command for these result files",
                "give the command that produced them (BENCHMARK_SUBFOLDER=<stack> under ## <GPU> Experiment)",
            ));
        };
        let mut notes = Vec::new();
        let (mut ttft, mut itl, mut tput, mut n, mut input, mut output) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (path, doc) in &files {
            let file = path.display().to_string();
            let completed = field(doc, "completed", &file)?;
            ttft += field(doc, "mean_ttft_ms", &file)?;
            itl += field(doc, "mean_itl_ms", &file)?;
            tput += field(doc, "output_throughput", &file)?;
            n += completed;
            input += field(doc, "total_input_tokens", &file)? / completed.max(1.0);
            output += field(doc, "total_output_tokens", &file)? / completed.max(1.0);
        }
        let k = files.len() as f64;
        let var = |key: &str| vars.get(key).and_then(|v| v.parse::<f64>().ok());
        let mut param = |key: &str, recorded: f64, what: &str| match var(key) {
            Some(v) => v,
            None => {
                notes.push(format!(
                    "{what} {:.0}: left to the script's default by the command; taken from the result files",
                    recorded
                ));
                recorded.round()
            }
        };
        let input_len = param("BENCHMARK_INPUT_LEN", input / k, "input length");
        let output_len = param("BENCHMARK_OUTPUT_LEN", output / k, "output length");
        let first = &files[0].1;
        let rate = var("BENCHMARK_REQUEST_RATE")
            .or_else(|| first.get("request_rate").and_then(Value::as_f64))
            .unwrap_or(0.0);
        let burstiness = var("BENCHMARK_BURSTINESS")
            .or_else(|| first.get("burstiness").and_then(Value::as_f64))
            .unwrap_or(1.0);
        let prompts = var("BENCHMARK_NUM_PROMPTS")
            .or_else(|| first.get("num_prompts").and_then(Value::as_f64))
            .unwrap_or(0.0);
        let profile = json!({
            "dataset_name": "random",
            "random_input_len": input_len,
            "random_output_len": output_len,
            "request_rate": rate,
            "burstiness": burstiness,
            "num_prompts": prompts,
            "ignore_eos": true,
        });
        let workload = blis_sim::workload::WorkloadSpec::of_profile(WorkloadProfileSpec {
            inference_perf: None,
            benchmark_serving: Some(profile),
        });
        let measured = Figures {
            ttft_mean_ms: Some(ttft / k),
            ttft_p90_ms: None,
            output_tokens_per_s: Some(tput / k),
            itl_mean_ms: Some(itl / k),
            n: Some((n / k).round() as u64),
        };
        notes.push(format!("measured: mean over {} result files; no TTFT p90 in them", files.len()));
        let pd = stack.contains("p1d") || stack.contains("pd");
        let dep_dir = std::fs::read_dir(&yamls)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .find(|p| {
                let d = super::file_name(p);
                if pd {
                    stack.split('-').next_back().is_some_and(|s| d.starts_with(s))
                } else {
                    d.contains("baseline")
                }
            });
        let mut patch =
            if pd { Value::Null } else { super::service_patch(super::ServiceSpread::RandomPerRequest) };
        if let Some(r) = super::lmbench::replicas_in_name(&stack) {
            patch["replicas"] = json!(r);
            notes.push(format!("replicas {r}, as the stack's name says"));
        }
        if pd {
            notes.push("P/D manifests (prefill and decode pods with NixlConnector kv_both, a routing sidecar with --connector=nixl): whether requests are disaggregated is what the EPP image schedules, see the deployment's warnings".into());
        } else {
            notes.push("a Kubernetes Service in front of the replicas: kube-proxy picks a replica per connection and benchmark_serving opens one per request, so a random replica per request".into());
        }
        let label = gpu_label(&gpu);
        if gpu == "A100" {
            notes.push("A100 memory size not recorded; A100-SXM4-80GB assumed".into());
        }
        let unrunnable = match (&dep_dir, label) {
            (None, _) => Some(format!("no deployment for {stack} in {}", yamls.display())),
            (_, None) => {
                Some(format!("GPU {gpu} of the data folder is not one the converter knows (A100, H100)"))
            }
            _ => None,
        };
        stacks.push(Stack {
            name,
            deployment: dep_dir.into_iter().collect(),
            patch,
            runs: vec![Run {
                label: format!("{} runs", files.len()),
                workload,
                trace: None,
                points: vec![Point {
                    label: format!("rate {rate}"),
                    rate,
                    stage: None,
                    measured,
                    unscored: None,
                    censored: false,
                }],
            }],
            notes,
            unrunnable,
            substitutions: label
                .map(|l| vec![(GPU_PLACEHOLDER.to_string(), l.to_string())])
                .unwrap_or_default(),
        });
    }
    let name = folder.file_name().map_or_else(|| exp.clone(), |n| n.to_string_lossy().into_owned());
    Ok(ClusterExperiment { name, source: folder.to_path_buf(), stacks, notes: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_per_gpu_section() {
        let text =
            "## A100 Experiment\n# 1p1d\nBENCHMARK_SUBFOLDER=\"x\" BENCHMARK_REQUEST_RATE=\"1.8\" ./run.sh\n\
                    ## H100 Experiment\nBENCHMARK_SUBFOLDER=\"x\" BENCHMARK_INPUT_LEN=\"10\" ./run.sh\n";
        let c = parse_commands(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[&("A100".to_string(), "x".to_string())]["BENCHMARK_REQUEST_RATE"], "1.8");
        assert_eq!(c[&("H100".to_string(), "x".to_string())]["BENCHMARK_INPUT_LEN"], "10");
    }
}
