//! llm-d-benchmark's 2025 LMBench runs (exp-2): `data/openshift/<exp>/<stack>/LMBench_<scenario>
//! <qps>.csv`, one row per logged request (`prompt_tokens, generation_tokens, ttft, generation_time,
//! [user_id, question_id,] launch_time, finish_time`; seconds, epoch timestamps), and the
//! Deployments in `yamls/<exp>/`.
//!
//! Each file becomes a trace replay (arrival = launch_time - the first launch, input =
//! prompt_tokens, output = generation_tokens) with its measured figures: TTFT mean and p90, the
//! mean over requests of `generation_time / (generation_tokens - 1)` (ITL), and output tok/s =
//! all generation tokens / (last finish - first launch). A stack is one deployment under one
//! scenario (`sharegpt`, `short_input`), its points one per QPS file.
//!
//! A file that logs fewer than [`CENSORED_FRACTION`] of the requests another stack's file of the
//! same scenario and QPS logs is censored (only requests that finished before a cut-off were
//! written, so its latencies are biased low): it is shown, not scored.
//!
//! Every file of a scenario replays the same prompt list, and LMBench's prompts can repeat or
//! extend earlier ones (multi-round conversations after a warm-up), so some requests find part of
//! their prompt cached; the CSVs carry no token identities to say which. [`warm_prefix`] estimates
//! it from the stack's lowest-rate file (the least queueing), and every replay of the stack gets it
//! as `trace.warmPrefix`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::{ClusterExperiment, Figures, Point, Run, Stack};
use crate::folder::read_file;
use blis_sim::error::InvalidInput;
use blis_sim::metrics::summary::percentile;
use blis_sim::workload::{ClassSpec, Trace, TraceSpec, WarmPrefixSpec, WorkloadSpec};

/// Below this fraction of the most requests logged at the same scenario and QPS, a file is censored.
pub const CENSORED_FRACTION: f64 = 0.9;

/// Prompts within this factor of a request's prompt length are its similar prompts.
pub const SIMILAR_LENGTH: f64 = 1.25;

/// A request whose TTFT is below this multiple of the 90th percentile TTFT of its similar prompts
/// found part of its prompt cached: queueing at the lowest rate does not spread cold prefills that far.
pub const WARM_TTFT_RATIO: f64 = 0.6;

/// The warm prefixes one file shows, from its `(prompt tokens, TTFT ms)` per request: the share of
/// requests faster than [`WARM_TTFT_RATIO`] x the 90th percentile TTFT of the prompts within
/// [`SIMILAR_LENGTH`] of theirs (itself included), and the median over them of 1 - TTFT / that
/// reference (the cached fraction of the prompt if TTFT scales with the prompt tokens computed).
/// `None` when no request is that fast.
pub fn warm_prefix(requests: &[(u32, f64)]) -> Option<WarmPrefixSpec> {
    let mut cached = Vec::new();
    for &(n, ttft) in requests {
        let (lo, hi) = (f64::from(n) / SIMILAR_LENGTH, f64::from(n) * SIMILAR_LENGTH);
        let mut similar: Vec<f64> =
            requests.iter().filter(|(m, _)| (lo..=hi).contains(&f64::from(*m))).map(|&(_, t)| t).collect();
        similar.sort_by(f64::total_cmp);
        let reference = percentile(&similar, 90.0);
        if reference > 0.0 && ttft < WARM_TTFT_RATIO * reference {
            cached.push(1.0 - ttft / reference);
        }
    }
    if cached.is_empty() {
        return None;
    }
    cached.sort_by(f64::total_cmp);
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    Some(WarmPrefixSpec {
        share: round3(cached.len() as f64 / requests.len() as f64),
        fraction: round3(percentile(&cached, 50.0)),
    })
}

/// `data/openshift/<exp>` holding per-stack folders of LMBench CSVs, if `folder` has one.
pub fn data_dir(folder: &Path) -> Option<PathBuf> {
    super::entries(&folder.join("data").join("openshift")).into_iter().find(|d| !csv_files(d).is_empty())
}

/// The LMBench CSVs under a stack folder of `exp`, by stack folder.
fn csv_files(exp: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(exp) else { return out };
    for s in rd.filter_map(|e| e.ok()) {
        let Ok(files) = std::fs::read_dir(s.path()) else { continue };
        for f in files.filter_map(|e| e.ok()) {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with("LMBench_") && name.ends_with(".csv") {
                out.push((s.file_name().to_string_lossy().into_owned(), f.path()));
            }
        }
    }
    out.sort();
    out
}

/// Scenario and QPS from a file name (`LMBench_sharegpt_output_1.5.csv`, `LMBench_short_input_qps2.csv`).
pub fn scenario_and_qps(file_name: &str) -> Option<(String, f64)> {
    let stem = file_name.strip_prefix("LMBench_")?.strip_suffix(".csv")?;
    let cut = stem.rfind(|c: char| !(c.is_ascii_digit() || c == '.'))? + 1;
    let qps: f64 = stem[cut..].parse().ok()?;
    let name = stem[..cut].trim_end_matches("qps").trim_end_matches('_').trim_end_matches("_output");
    Some((name.to_string(), qps))
}

/// One file read: the trace CSV to replay and the measured figures.
#[derive(Debug, Clone, PartialEq)]
pub struct FileData {
    /// `arrival_time_s,input_tokens,output_tokens` rows sorted by arrival.
    pub trace_csv: String,
    /// Measured figures.
    pub figures: Figures,
    /// Mean prompt tokens.
    pub mean_prompt_tokens: f64,
    /// `(prompt tokens, TTFT ms)` of every request, in arrival order.
    pub requests: Vec<(u32, f64)>,
}

const COLUMNS: [&str; 6] =
    ["prompt_tokens", "generation_tokens", "ttft", "generation_time", "launch_time", "finish_time"];
const OPTIONAL: [&str; 2] = ["user_id", "question_id"];

/// Reads one LMBench CSV (errors name the file, the line and the column).
pub fn read_csv(text: &str, file: &str) -> Result<FileData, InvalidInput> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').map(str::trim).collect();
    for h in &header {
        if !COLUMNS.contains(h) && !OPTIONAL.contains(h) {
            return Err(InvalidInput::new(
                format!("{file}: column {h:?}"),
                "is not an LMBench column",
                format!("columns are {} (and optionally {})", COLUMNS.join(", "), OPTIONAL.join(", ")),
            ));
        }
    }
    let mut idx = [0usize; 6];
    for (k, c) in COLUMNS.iter().enumerate() {
        idx[k] = header.iter().position(|h| h == c).ok_or_else(|| {
            InvalidInput::new(
                format!("{file}: column {c}"),
                "is missing",
                "give the LMBench per-request CSV as written",
            )
        })?;
    }
    let mut rows: Vec<[f64; 6]> = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        let mut row = [0.0; 6];
        for (k, &i) in idx.iter().enumerate() {
            row[k] = cells
                .get(i)
                .and_then(|c| c.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    InvalidInput::new(
                        format!("{file}: line {}, column {}", n + 2, COLUMNS[k]),
                        "is not a non-negative number",
                        "fix the row or remove it",
                    )
                })?;
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(InvalidInput::new(file, "has no requests", "give a file with at least one row"));
    }
    rows.sort_by(|a, b| a[4].total_cmp(&b[4]));
    let first = rows[0][4];
    let last_finish = rows.iter().map(|r| r[5]).fold(f64::MIN, f64::max);
    let mut csv = String::from("arrival_time_s,input_tokens,output_tokens\n");
    let mut ttft = Vec::with_capacity(rows.len());
    let requests: Vec<(u32, f64)> = rows.iter().map(|r| (r[0].round() as u32, r[2] * 1000.0)).collect();
    let (mut itl_sum, mut itl_n, mut out_tokens, mut prompt) = (0.0, 0usize, 0.0, 0.0);
    for r in &rows {
        csv.push_str(&format!("{:.6},{},{}\n", r[4] - first, r[0].round() as u64, r[1].round() as u64));
        ttft.push(r[2] * 1000.0);
        if r[1] > 1.0 {
            itl_sum += r[3] / (r[1] - 1.0) * 1000.0;
            itl_n += 1;
        }
        out_tokens += r[1];
        prompt += r[0];
    }
    let n = rows.len();
    let mean_ttft = ttft.iter().sum::<f64>() / n as f64;
    ttft.sort_by(f64::total_cmp);
    let span = last_finish - first;
    Ok(FileData {
        trace_csv: csv,
        figures: Figures {
            ttft_mean_ms: Some(mean_ttft),
            ttft_p90_ms: Some(percentile(&ttft, 90.0)),
            output_tokens_per_s: (span > 0.0).then(|| out_tokens / span),
            itl_mean_ms: (itl_n > 0).then(|| itl_sum / itl_n as f64),
            n: Some(n as u64),
        },
        mean_prompt_tokens: prompt / n as f64,
        requests,
    })
}

/// The deployment folder of a stack in `yamls/<exp>/`: the one named for llm-d for stacks named
/// so, else the baseline's.
fn deployment_for(folder: &Path, exp: &str, stack: &str) -> Option<PathBuf> {
    let base = folder.join("yamls").join(exp);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let name = |p: &PathBuf| super::file_name(p);
    if stack.starts_with("llm-d") {
        dirs.into_iter().find(|d| name(d).contains("llm-d"))
    } else {
        dirs.into_iter().find(|d| name(d).contains("baseline") || name(d).contains("vllm"))
    }
}

/// The environment variables the containers of the YAML files in `dir` set (name → value).
fn container_env(dir: &Path) -> BTreeMap<String, String> {
    fn walk(v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                if let Some(env) = m.get("env").and_then(Value::as_array) {
                    for e in env {
                        if let (Some(n), Some(val)) =
                            (e.get("name").and_then(Value::as_str), e.get("value").and_then(Value::as_str))
                        {
                            out.insert(n.to_string(), val.to_string());
                        }
                    }
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in files.iter().filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml")) {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        for doc in crate::llmd::parse_documents(&text).unwrap_or_default() {
            walk(&doc, &mut out);
        }
    }
    out
}

/// LMCache's local CPU tier (`LMCACHE_LOCAL_CPU=True`, `LMCACHE_MAX_LOCAL_CPU_SIZE` GB) as the
/// twin's CPU KV offload size, if the deployment sets it.
fn lmcache_cpu_gb(dir: &Path) -> Option<f64> {
    let env = container_env(dir);
    let on = env.get("LMCACHE_LOCAL_CPU").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    on.then(|| env.get("LMCACHE_MAX_LOCAL_CPU_SIZE")?.parse::<f64>().ok()).flatten().filter(|g| *g > 0.0)
}

/// The replica count a stack folder's name states (`...-2replicas`).
pub(crate) fn replicas_in_name(stack: &str) -> Option<i64> {
    let i = stack.find("replicas")?;
    let digits: String = stack[..i].chars().rev().take_while(char::is_ascii_digit).collect();
    digits.chars().rev().collect::<String>().parse().ok()
}

/// A QPS as a map key (thousandths).
fn qps_key(qps: f64) -> u64 {
    (qps * 1000.0).round() as u64
}

/// The file that logged the most requests at one scenario and rate: request count, file name,
/// stack and trace.
type Fullest = (u64, String, String, Arc<Trace>);

/// One file of a stack: its QPS, its name and what it holds.
type QpsFile = (f64, String, FileData);

/// Converts an LMBench experiment folder.
pub fn convert(folder: &Path) -> Result<ClusterExperiment, InvalidInput> {
    let exp_dir = data_dir(folder).ok_or_else(|| {
        InvalidInput::new(
            folder.display().to_string(),
            "has no data/openshift/<exp>/<stack>/LMBench_*.csv",
            "give an LMBench experiment folder",
        )
    })?;
    let exp = super::file_name(&exp_dir);
    // (stack folder, scenario) → (qps, file, data)
    let mut groups: BTreeMap<(String, String), Vec<QpsFile>> = BTreeMap::new();
    for (stack, path) in csv_files(&exp_dir) {
        let fname = super::file_name(&path);
        let Some((scenario, qps)) = scenario_and_qps(&fname) else {
            return Err(InvalidInput::new(
                path.display().to_string(),
                "has no scenario and QPS in its name",
                "name it LMBench_<scenario>_<qps>.csv as LMBench writes it",
            ));
        };
        let data = read_csv(&read_file(&path)?, &path.display().to_string())?;
        groups.entry((stack, scenario)).or_default().push((qps, fname, data));
    }
    // The file that logged the most requests per (scenario, qps): its request count, name, stack
    // and trace (a censored file replays it: the load that was sent).
    let mut best: BTreeMap<(String, u64), (u64, &String, &String, &FileData)> = BTreeMap::new();
    for ((stack, scenario), files) in &groups {
        for (qps, fname, d) in files {
            let n = d.figures.n.unwrap_or(0);
            let k = (scenario.clone(), qps_key(*qps));
            if best.get(&k).is_none_or(|m| n > m.0) {
                best.insert(k, (n, fname, stack, d));
            }
        }
    }
    let most: BTreeMap<(String, u64), Fullest> = best
        .into_iter()
        .map(|(k, (n, f, s, d))| (k, (n, f.clone(), s.clone(), Arc::new(Trace::parse_csv(&d.trace_csv)))))
        .collect();
    let mut stacks = Vec::new();
    for ((stack, scenario), mut files) in groups {
        files.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut notes = Vec::new();
        let (deployment, unrunnable) = match deployment_for(folder, &exp, &stack) {
            Some(d) => (vec![d], None),
            None => (Vec::new(), Some(format!("no deployment for {stack} in yamls/{exp}/"))),
        };
        let mut patch = super::service_patch(super::ServiceSpread::RoundRobin);
        notes.push(
            "a Kubernetes Service in front of the replicas (the yamls hold no endpoint picker): round-robin"
                .into(),
        );
        if let Some(r) = replicas_in_name(&stack) {
            patch["replicas"] = json!(r);
            notes.push(format!(
                "replicas {r}, as the stack's name says (the Deployment's own count may differ)"
            ));
        }
        if let Some(gb) = deployment.first().and_then(|d| lmcache_cpu_gb(d)) {
            patch["vllm"] = json!({"cpuOffloadGib": gb});
            notes.push(format!(
                "LMCache's local CPU tier (LMCACHE_MAX_LOCAL_CPU_SIZE {gb} GB) simulated as vllm.cpuOffloadGib {gb}; the LMCacheConnectorV1 connector is not modelled beyond that"
            ));
        }
        if stack.starts_with("llm-d") {
            notes.push("as far as the files show, this \"llm-d\" stack is vLLM + LMCache CPU offload (LMCACHE_MAX_LOCAL_CPU_SIZE 40 GB) behind a Service: no EPP, InferencePool or scorer config in the yamls".into());
        }
        // Files are sorted by QPS: the first is the lowest rate.
        let warm =
            files.first().and_then(|(qps, fname, d)| Some((*qps, fname.clone(), warm_prefix(&d.requests)?)));
        if let Some((qps, fname, w)) = &warm {
            notes.push(format!(
                "warm prefixes: {:.1} % of the requests arrive with {:.1} % of their prompt cached (trace.warmPrefix), as {fname} (QPS {qps}) shows: requests faster than {WARM_TTFT_RATIO} x the p90 TTFT of prompts within {SIMILAR_LENGTH}x their length (LMBench replays the same prompts at every QPS, and they repeat or extend earlier ones)",
                w.share * 100.0,
                w.fraction * 100.0
            ));
        }
        if scenario == "short_input" {
            notes.push("short_input is multi-round QA: each round's prompt holds the history, which the replay does not share as a prefix".into());
        }
        let mut replayed_instead = Vec::new();
        let runs = files
            .into_iter()
            .map(|(qps, fname, d)| {
                let fullest = most.get(&(scenario.clone(), qps_key(qps)));
                let top = fullest.map_or(0, |m| m.0);
                let n = d.figures.n.unwrap_or(0);
                let censored = top > 0 && (n as f64) < CENSORED_FRACTION * top as f64;
                let unscored = censored.then(|| {
                    format!("censored: {n} of {top} requests logged (only requests finished before a cut-off were written)")
                });
                // A censored file lacks the requests that did not finish: replay the fullest file of
                // the same scenario and rate (the same prompt list, all requests sent) instead.
                let (trace_name, trace) = match fullest.filter(|_| censored) {
                    Some((_, other, other_stack, rows)) => {
                        replayed_instead.push(format!("QPS {qps}: {other_stack}/{other}"));
                        (other.clone(), Arc::clone(rows))
                    }
                    // The fullest file itself shares its parsed rows.
                    None => match fullest.filter(|m| m.1 == fname && m.2 == stack) {
                        Some(m) => (fname.clone(), Arc::clone(&m.3)),
                        None => (fname.clone(), Arc::new(Trace::parse_csv(&d.trace_csv))),
                    },
                };
                let workload = WorkloadSpec {
                    duration_seconds: None,
                    max_requests: None,
                    arrival: None,
                    classes: vec![ClassSpec {
                        name: "trace".into(),
                        weight: None,
                        arrival: None,
                        input_tokens: None,
                        output_tokens: None,
                        prefix: None,
                        session: None,
                        slo: None,
                        priority: 0,
                    }],
                    trace: Some(TraceSpec {
                        path: Some(trace_name),
                        csv: None,
                        config_map_ref: None,
                        prefix_tokens: None,
                        prefix_groups: None,
                        time_scale: None,
                        warm_prefix: warm.as_ref().map(|w| w.2),
                    }),
                    client: None,
                    profile: None,
                };
                Run {
                    label: fname.clone(),
                    workload,
                    trace: Some(trace),
                    points: vec![Point {
                        label: format!("qps {qps}"),
                        rate: qps,
                        stage: None,
                        measured: d.figures,
                        unscored,
                        censored,
                    }],
                }
            })
            .collect();
        if !replayed_instead.is_empty() {
            notes.push(format!(
                "censored files (their measured figures are over the requests that finished: shown, not scored; a TTFT mean already past the knee still places the measured knee) replay the load that was sent, the file of the same rate that logged every request: {}",
                replayed_instead.join(", ")
            ));
        }
        stacks.push(Stack {
            name: format!("{stack} {scenario}"),
            deployment,
            patch: Value::clone(&patch),
            runs,
            notes,
            unrunnable,
            substitutions: Vec::new(),
        });
    }
    let name = folder.file_name().map_or_else(|| exp.clone(), |n| n.to_string_lossy().into_owned());
    Ok(ClusterExperiment { name, source: folder.to_path_buf(), stacks, notes: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_scenario_and_qps() {
        assert_eq!(scenario_and_qps("LMBench_sharegpt_output_1.5.csv"), Some(("sharegpt".into(), 1.5)));
        assert_eq!(scenario_and_qps("LMBench_short_input_qps10.csv"), Some(("short_input".into(), 10.0)));
        assert_eq!(scenario_and_qps("other.csv"), None);
        assert_eq!(replicas_in_name("vllm-70b-2replicas"), Some(2));
        assert_eq!(replicas_in_name("llm-d-1p1d"), None);
    }

    #[test]
    fn a_file_gives_the_readme_figures_and_a_sorted_trace() {
        let text = "prompt_tokens,generation_tokens,ttft,generation_time,launch_time,finish_time\n\
                    100,11,0.2,1.0,1002.0,1003.2\n\
                    50,3,0.1,0.4,1000.0,1000.5\n";
        let d = read_csv(text, "f.csv").unwrap();
        assert_eq!(
            d.trace_csv,
            "arrival_time_s,input_tokens,output_tokens\n0.000000,50,3\n2.000000,100,11\n"
        );
        let f = d.figures;
        assert!((f.ttft_mean_ms.unwrap() - 150.0).abs() < 1e-9);
        assert!((f.itl_mean_ms.unwrap() - (100.0 + 200.0) / 2.0).abs() < 1e-9, "per-request means averaged");
        assert!(
            (f.output_tokens_per_s.unwrap() - 14.0 / 3.2).abs() < 1e-9,
            "tokens over first launch .. last finish"
        );
        assert_eq!(f.n, Some(2));
    }

    #[test]
    fn warm_prefixes_are_the_requests_far_below_their_similar_prompts() {
        // Cold TTFT = 50 ms + 0.3 ms per token, +-10 % of queueing; every 10th of the 300 requests
        // from the 4th on has 60 % of its prompt cached.
        let reqs: Vec<(u32, f64)> = (0..300u32)
            .map(|k| {
                let n = 300 + (k * 97) % 1700;
                let jitter = 1.0 + 0.1 * (f64::from(k % 5) - 2.0) / 2.0;
                let computed = if k % 10 == 3 { f64::from(n) * 0.4 } else { f64::from(n) };
                (n, (50.0 + 0.3 * computed) * jitter)
            })
            .collect();
        let w = warm_prefix(&reqs).expect("the cached requests are found");
        assert_eq!(w.share, 0.1, "exactly the marked requests");
        assert!((0.45..0.65).contains(&w.fraction), "about the cached 60 %, less the fixed cost: {w:?}");
        let cold: Vec<(u32, f64)> =
            reqs.iter().enumerate().filter(|(k, _)| k % 10 != 3).map(|(_, r)| *r).collect();
        assert_eq!(warm_prefix(&cold), None, "queueing spread alone is not a hit");
    }

    #[test]
    fn a_foreign_column_is_named() {
        let e = read_csv(
            "prompt_tokens,generation_tokens,ttft,generation_time,launch_time,finish_time,extra\n",
            "f.csv",
        )
        .unwrap_err();
        assert_eq!(e.field, "f.csv: column \"extra\"");
        let e = read_csv(
            "prompt_tokens,generation_tokens,ttft,generation_time,launch_time,finish_time\n1,2,x,1,1,2\n",
            "f.csv",
        )
        .unwrap_err();
        assert_eq!(e.field, "f.csv: line 2, column ttft");
    }
}
