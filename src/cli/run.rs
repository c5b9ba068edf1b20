//! `blis run`: simulate scenarios and print the prediction table or JSON, optionally the HTML page.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::scenarios::{load_and_resolve, simulate_all, Overrides};
use super::{print_json, write_file, CliError, Output, SummaryArg};
use blis_report::{html, table, ScenarioReport};

pub const HELP: &str = "\
Simulate every SimulationScenario document (apiVersion twin.blis.dev/v1alpha1) in the given YAML
files and print the predicted TTFT / ITL / E2E (mean, p50, p90, p99, in ms), throughput, goodput,
SLO attainment per class, KV-cache figures and cost. With no file, the embedded quickstart runs.

A scenario's spec names:
  model:     {name: llama-3.1-8b-instruct}  (built-in name or Hugging Face id), or
             {name: my-model, config: {...}} with the model's Hugging Face config.json inline
  hardware:  {gpu: H100-SXM-80GB, tensorParallelism: 1}  (built-ins: H100-SXM-80GB, H200-SXM-141GB,
             A100-SXM-80GB, L40S-48GB, B200-180GB, MI300X-192GB, A100-SXM-40GB, H100-PCIe-80GB,
             H100-NVL-94GB, H200-NVL-141GB, GB200-186GB, L4-24GB, A10G-24GB, A10-24GB, T4-16GB,
             MI325X-256GB; or an inline `profile`)
  vllm:      version (0.23.0: its defaults on the GPU apply), maxNumBatchedTokens and maxNumSeqs
             (vLLM's: 8192 / 1024 on H100, 2048 / 256 on A100), gpuMemoryUtilization (0.9), blockSize (16),
             maxModelLen (model's, capped to KV), enablePrefixCaching (true), enableChunkedPrefill
             (true), longPrefillTokenThreshold (0), kvBlocks (derived from memory)
  replicas:  identical vLLM replicas (1); router: {policy: leastRequests | roundRobin}
  workload:  durationSeconds and/or maxRequests; arrival {process: poisson | gamma (cv) | constant |
             normalizedExponential | poissonPerSecond, ratePerSecond or stages [{ratePerSecond,
             durationSeconds, requests}], betweenStages {drain, pauseSeconds}}; client {maxInFlight,
             timeoutSeconds}; profile {inferencePerf | benchmarkServing} (or --workload-profile);
             classes [{name, weight, inputTokens, outputTokens, prefix {groups, tokens,
             questionsPerGroup, order: random | cycle}, session {turns, thinkTimeMs, accumulate}, slo {ttftMs, itlMs, e2eMs,
             attainment}}]; token lengths {distribution: fixed | uniform | normal | lognormal |
             exponential | empirical, ...}; or trace {path | csv, prefixTokens, timeScale} to replay
             a CSV (arrival_time_s, input_tokens, output_tokens[, prefix_group][, class])
  seed:      master seed (42); every random draw derives from it
  simulation: {horizonSeconds, summary}  stop early (in-flight requests count as unfinished);
             summary: exact (every request's record, exact percentiles) or streaming (memory
             independent of the number of requests, percentiles within 0.5 %)

Output: a table (default) or JSON (--output json: stable snake_case fields, milliseconds). The same
file and seed always give byte-identical JSON. Exit status: 0 success, 2 invalid input (one line
naming the field and the fix), 1 other failure.";

#[derive(clap::Args)]
pub struct Args {
    /// Scenario files (YAML, one or more SimulationScenario documents each). None: the quickstart.
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
    /// Override every scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Profile file written by `blis calibrate`: its coefficients replace the built-in ones of its GPU.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Also write a self-contained HTML report (latency CDFs, queue / KV / replicas over time, inputs;
    /// per-stage plots for staged workloads).
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// A measurement of the same load ladder to draw over the report's per-stage plots: a guide's
    /// benchmark-results folder, LMBench per-request CSVs, benchmark_serving results or a
    /// ClusterExperiment file (what `blis validate` converts). Its rates must be the stages' rates.
    #[arg(long, value_name = "PATH", requires = "report")]
    measured: Option<PathBuf>,
    /// The benchmark's own workload profile (an llm-d-benchmark / inference-perf config, or vLLM
    /// benchmark_serving parameters or results): it replaces every scenario's workload.
    #[arg(long, value_name = "FILE")]
    workload_profile: Option<PathBuf>,
    /// Override every scenario's `simulation.summary` (default: exact).
    #[arg(long, value_enum)]
    summary: Option<SummaryArg>,
}

pub fn exec(args: Args) -> Result<ExitCode, CliError> {
    let over = Overrides {
        seed: args.seed,
        profile: args.profile.as_deref(),
        workload_profile: args.workload_profile.as_deref(),
    };
    let (loaded, mut resolved) = load_and_resolve(&args.files, args.files.is_empty(), &over)?;
    let measured = match &args.measured {
        Some(path) if loaded.len() != 1 => {
            return Err(blis_sim::error::InvalidInput::new(
                "--measured",
                format!(
                    "one measurement is drawn beside one scenario; {} has {}",
                    path.display(),
                    loaded.len()
                ),
                "run the one scenario the measurement is of",
            )
            .into())
        }
        Some(path) => blis_plan::cluster::measured_beside(path, &loaded[0].file, &resolved[0])?,
        None => Vec::new(),
    };
    if let Some(s) = args.summary {
        resolved.iter_mut().for_each(|r| r.summary = s.into());
    }
    let interactive = !args.no_progress && std::io::stderr().is_terminal();
    let outcomes = simulate_all(&loaded, &resolved, interactive)?;
    let (reports, outputs): (Vec<ScenarioReport>, Vec<_>) =
        resolved.iter().zip(outcomes).map(|(r, o)| (ScenarioReport::new(r, o.summary), o.output)).unzip();
    match args.output {
        Output::Json => print_json(&serde_json::json!({ "scenarios": reports }))?,
        Output::Table => {
            for (i, rep) in reports.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                out!("{}", table::render(rep));
            }
        }
    }
    if let Some(path) = &args.report {
        let yaml: Vec<String> = loaded.iter().map(|l| l.manifest.to_yaml()).collect();
        let views: Vec<html::RunView> = reports
            .iter()
            .zip(&outputs)
            .zip(&yaml)
            .map(|((rep, out), y)| html::RunView::new(rep, out, y).with_measured(&measured))
            .collect();
        write_file(path, html::render_run(&views))?;
    }
    Ok(ExitCode::SUCCESS)
}
