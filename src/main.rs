//! `blis`: the command-line shell around the BLIS twin library. It parses arguments, reads files,
//! calls the library and prints; nothing else.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use blis::bench;
use blis::calibrate::{self, ratchet};
use blis::error::InvalidInput;
use blis::latency::Calibration;
use blis::report::gate::{GateReport, ScenarioGates};
use blis::report::{compare, html, table, ScenarioReport};
use blis::scenario::{self, load, RunError};
use blis::sim::{Observer, SimOptions};

/// The quickstart scenario, embedded so `blis run` works with no file at all.
const QUICKSTART: &str = include_str!("../examples/quickstart.yaml");

#[derive(Parser)]
#[command(
    name = "blis",
    version,
    about = "BLIS twin: predict llm-d / vLLM serving latency, throughput and cost without GPUs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate every SimulationScenario in the given files and print the predictions.
    #[command(long_about = RUN_HELP)]
    Run(RunArgs),
    /// Simulate every scenario and check its gates and class SLOs: exit 0 when all pass, 1 when any
    /// fails, 2 on invalid input.
    #[command(long_about = GATE_HELP)]
    Gate(GateArgs),
    /// Measure simulator speed and memory on built-in benchmark scenarios (medians over repeats).
    Bench(BenchArgs),
    /// Simulate real-measurement experiments (shared validation format) and score the predictions.
    Validate(ValidateArgs),
    /// Fit a GPU profile's latency coefficients to measured experiments and write a profile file.
    Calibrate(CalibrateArgs),
    /// Print the CustomResourceDefinitions (SimulationScenario, SimulationSweep, HardwareProfile) as YAML.
    Crd,
    /// Search admission / routing / autoscaling knobs of a scenario for the best policy (PolicySearch file).
    #[command(long_about = OPTIMIZE_HELP)]
    Optimize(OptimizeArgs),
    /// Run the Kubernetes controller: reconcile SimulationScenarios into predictions in their status.
    Controller(ControllerArgs),
    /// Compare candidate scenarios side by side (predictions, gates, cost; best per column marked),
    /// simulated from files or read from the scenarios' status in a namespace.
    Compare(CompareArgs),
    /// Rank candidate configurations: expand a SimulationSweep, simulate in parallel, rank, Pareto set.
    #[command(long_about = SWEEP_HELP)]
    Sweep(SweepArgs),
    /// Simulate one shard of a SimulationSweep read from the cluster and write its result into a
    /// ConfigMap (what the pods of a fanned-out sweep's Indexed Job run).
    SweepShard(SweepShardArgs),
}

#[derive(clap::Args)]
struct SweepShardArgs {
    /// Namespace of the SimulationSweep.
    #[arg(long)]
    namespace: String,
    /// Name of the SimulationSweep.
    #[arg(long)]
    sweep: String,
    /// Number of shards.
    #[arg(long)]
    shards: u32,
    /// This shard, 0-based (an Indexed Job's pods have it in JOB_COMPLETION_INDEX).
    #[arg(long, env = "JOB_COMPLETION_INDEX")]
    index: u32,
    /// Do nothing unless the sweep's spec still has this hash (set by the controller on its Job).
    #[arg(long)]
    spec_hash: Option<String>,
    /// Worker threads (default: every core; capped by spec.maxParallel).
    #[arg(long)]
    threads: Option<usize>,
}

const SWEEP_HELP: &str = "\
Expand the SimulationSweep in FILE (apiVersion twin.blis.dev/v1alpha1) into candidates, simulate them
in parallel on every core with the same seed (common random numbers), and rank the candidates that
pass the gates (spec.base.gates and class SLOs) by the objective, with the Pareto set of $/1M tokens vs
TTFT p90 vs ITL p90 and, for every other candidate, why it lost.

spec:
  base:        a SimulationScenario spec
  parameters:  [{path: replicas, values: [1, 2, 4]} | {path, range: {from, to, step}} |
                {path, random: {from, to, integer}}]   grid of every combination, first slowest
  samples:     N random combinations instead of the grid (needed by random parameters)
  candidates:  [{name, patch: {JSON merge patch}, set: {path: value}}]   explicit candidates
               (with parameters: each candidate over the grid)
  objective:   dollarsPerMillionTokens (default) | dollarsPerMillionOutputTokens | dollarsPerHour |
               gpus | ttftP90Ms | ttftP99Ms | itlP90Ms | e2eP99Ms   (minimised)
  seed, replications (mean figures, 95% confidence interval of the objective), maxCandidates (10000),
  maxParallel, search: {mode: saturation, minRate, maxRate, tolerance, ratePath}   highest rate under
               the gates per candidate; or {mode: cheapestForRate, targetRate, ratePath}
  fanOut:      {mode: Auto|Always|Never, shards: N}   controller only: run as an Indexed Job

Sharding: `--shard i/n` simulates candidates with index mod n = i and prints their results as JSON;
`--merge a.json b.json ...` ranks the full set from every shard's output (same ranking as one run).
Exit status: 0 success, 2 invalid input (naming the field, e.g. spec.parameters[0]), 1 other failure.";

#[derive(clap::Args)]
struct SweepArgs {
    /// Sweep file (YAML holding one SimulationSweep document).
    file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
    /// Simulate only shard i of n (0-based) and print its results as JSON, for --merge.
    #[arg(long, conflicts_with = "merge")]
    shard: Option<String>,
    /// Rank the JSON outputs of every `--shard` run instead of simulating.
    #[arg(long, num_args = 1..)]
    merge: Vec<PathBuf>,
    /// Worker threads (default: every core; capped by spec.maxParallel).
    #[arg(long)]
    threads: Option<usize>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Rows of the table (the JSON has every candidate).
    #[arg(long, default_value_t = 30)]
    top: usize,
    /// Also write a self-contained HTML report (Pareto plot, ranking, the winner's charts) here.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Candidate scenario files or folders (each scenario found is one candidate).
    #[arg(required_unless_present = "namespace", conflicts_with = "namespace")]
    paths: Vec<PathBuf>,
    /// Read the candidates' predictions from the status of the SimulationScenarios in this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Output format (`markdown` renders as a table in pull-request comments).
    #[arg(long, short, value_enum, default_value = "table")]
    output: CompareOutput,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompareOutput {
    Table,
    Json,
    Markdown,
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// Experiment YAML files or folders holding them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
    /// Profile file written by `blis calibrate` (overrides the built-in coefficients of its GPU).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Check the medians against a ratchet file (fail if any is worse by more than 0.01 points).
    #[arg(long)]
    ratchet: Option<PathBuf>,
    /// Write the current medians to the ratchet file instead of checking.
    #[arg(long, requires = "ratchet")]
    update_ratchet: bool,
    /// Worker threads (default: the machine's cores, at most 4).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(clap::Args)]
struct CalibrateArgs {
    /// Experiment YAML files or folders; only `train-*` and `extra-*` experiments on --gpu are used.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// GPU profile to fit.
    #[arg(long)]
    gpu: String,
    /// Write the profile here (YAML).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compare the fit with this profile file and fail if a coefficient differs by more than 1e-3
    /// (relative): checks that shipped coefficients are reproducible.
    #[arg(long)]
    check: Option<PathBuf>,
    /// Outer iterations.
    #[arg(long)]
    iterations: Option<usize>,
    /// Worker threads (default: the machine's cores, at most 4).
    #[arg(long)]
    threads: Option<usize>,
}

const OPTIMIZE_HELP: &str = "\
Tune knobs of a baseline scenario with a derivative-free optimiser (a seeded cross-entropy method)
and print the before/after table. The file is a PolicySearch (apiVersion twin.blis.dev/v1alpha1):

  spec:
    scenarioFile: baseline.yaml        # or scenario: {<inline SimulationScenario spec>}
    policy: {router: {admission: {probabilistic: {signal: queueDepth, curve: power}}}}  # merge patch
    knobs: [{path: router.admission.probabilistic.startSaturation, min: 0, max: 4,
             scale: linear | log, integer: false}]
    objective: {metric: 'classes[name=critical].ttft_ms.p90', goal: minimize}
    constraints: [{metric: goodput_rps, min: 0.9, relativeToBaseline: true}]
    tuningSeeds: [1, 2]                # every candidate runs on these (common random numbers)
    checkSeeds: [101, 102, 103]        # the winner is re-checked on these, never tuned on
    budget: 200                        # candidates; population (16) per generation; seed (1)

Metrics are paths into `blis run --output json` (goodput_rps, classes[name=x].e2e_ms.mean, ...),
averaged over the seeds. The same file, seed and budget always give the same result. --out DIR
writes scenario.yaml (the winning SimulationScenario), router.yaml (its gateway section) and
endpoint-picker-config.yaml (when the scenario has one). Exit status: 0 success, 2 invalid input,
1 other failure.";

#[derive(clap::Args)]
struct OptimizeArgs {
    /// The PolicySearch file.
    file: PathBuf,
    /// Candidates to evaluate (overrides spec.budget).
    #[arg(long)]
    budget: Option<i64>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
    /// Folder to write the winning scenario and its gateway / endpoint-picker config into.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write an HTML report: baseline and winner side by side on the first held-out seed.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(clap::Args)]
struct ControllerArgs {
    /// Watch only this namespace (default: all); repeat it or separate names by commas for several.
    #[arg(long, value_delimiter = ',')]
    namespace: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Most simulations running at once.
    #[arg(long, default_value_t = 2)]
    max_concurrent: usize,
    /// Take the `blis-controller` Lease before reconciling, so several replicas can run.
    #[arg(long)]
    leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, default_value = "default", env = "POD_NAMESPACE")]
    leader_election_namespace: String,
    /// Identity of this replica (default: hostname and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Wall-time limit of one simulation (or of one sweep run inside the controller), in seconds.
    #[arg(long, default_value_t = 300.0)]
    max_wall_seconds: f64,
    /// Limit on simulated requests of one simulation (of each candidate, in a sweep).
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Image of the pods a large sweep fans out to (the controller's own); without it every sweep
    /// runs inside the controller.
    #[arg(long)]
    sweep_image: Option<String>,
    /// ServiceAccount of those pods, in the sweep's namespace (may read SimulationSweeps and write
    /// ConfigMaps).
    #[arg(long, default_value = "blis-sweep-worker")]
    sweep_service_account: String,
    /// Sweeps of at least this many candidates fan out (unless their spec.fanOut.mode is Never).
    #[arg(long, default_value_t = 2000)]
    sweep_fan_out_threshold: usize,
    /// Shards of a fanned-out sweep whose spec.fanOut.shards is unset.
    #[arg(long, default_value_t = 4)]
    sweep_shards: u32,
}

const RUN_HELP: &str = "\
Simulate every SimulationScenario document (apiVersion twin.blis.dev/v1alpha1) in the given YAML
files and print the predicted TTFT / ITL / E2E (mean, p50, p90, p99, in ms), throughput, goodput,
SLO attainment per class, KV-cache figures and cost. With no file, the embedded quickstart runs.

A scenario's spec names:
  model:     {name: llama-3.1-8b-instruct}  (built-in name or Hugging Face id), or
             {name: my-model, config: {...}} with the model's Hugging Face config.json inline
  hardware:  {gpu: H100-SXM-80GB, tensorParallelism: 1}  (built-ins: H100-SXM-80GB, H200-SXM-141GB,
             A100-SXM-80GB, L40S-48GB, B200-180GB, MI300X-192GB; or an inline `profile`)
  vllm:      maxNumBatchedTokens (2048), maxNumSeqs (256), gpuMemoryUtilization (0.9), blockSize (16),
             maxModelLen (model's, capped to KV), enablePrefixCaching (true), enableChunkedPrefill
             (true), longPrefillTokenThreshold (0), kvBlocks (derived from memory)
  replicas:  identical vLLM replicas (1); router: {policy: leastRequests | roundRobin}
  workload:  durationSeconds and/or maxRequests; arrival {process: poisson | gamma (cv) | constant |
             normalizedExponential, ratePerSecond or stages [{ratePerSecond, durationSeconds}]};
             classes [{name, weight, inputTokens, outputTokens, prefix {groups, tokens,
             questionsPerGroup}, session {turns, thinkTimeMs, accumulate}, slo {ttftMs, itlMs, e2eMs,
             attainment}}]; token lengths {distribution: fixed | uniform | normal | lognormal |
             exponential | empirical, ...}; or trace {path | csv, prefixTokens, timeScale} to replay
             a CSV (arrival_time_s, input_tokens, output_tokens[, prefix_group][, class])
  seed:      master seed (42); every random draw derives from it
  simulation: {horizonSeconds}  stop early; in-flight requests count as unfinished

Output: a table (default) or JSON (--output json: stable snake_case fields, milliseconds). The same
file and seed always give byte-identical JSON. Exit status: 0 success, 2 invalid input (one line
naming the field and the fix), 1 other failure.";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
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
    /// Also write a self-contained HTML report (latency CDFs, queue / KV / replicas over time, inputs).
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
}

const GATE_HELP: &str = "\
Simulate every SimulationScenario in the given files or folders (the manifests the cluster would
get) and check each one's spec.gates and class SLOs with the controller's rules. Every limit is one
case: `PASS`/`FAIL scenario gate[class]: metric predicted V, limit <= L`. Exit status: 0 when every
case passes, 1 when any fails (whatever the scenario's enforcement), 2 on invalid input. `--output
junit` writes JUnit XML (a testsuite per scenario, a testcase per gate) for CI test reports.";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GateOutput {
    Text,
    Json,
    Junit,
}

#[derive(clap::Args)]
struct GateArgs {
    /// Scenario files or folders (YAML with SimulationScenario documents).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    output: GateOutput,
    /// Override every scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Profile file written by `blis calibrate`: its coefficients replace the built-in ones of its GPU.
    #[arg(long)]
    profile: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Which benchmark: `10k` (10,000 requests, one replica), `1m` (1,000,000 requests), `16r` (16 replicas, prefix-aware endpoint picker, 1,000,000 requests) or `all`.
    #[arg(long, default_value = "all")]
    case: String,
    /// Runs per case; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
}

/// Shows a progress bar on stderr once a run has lasted a second, if stderr is a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    label: String,
    bar: Option<ProgressBar>,
    total_us: Option<i64>,
}

impl Observer for Progress {
    fn on_progress(&mut self, sim_us: i64, finished: u64) {
        if !self.enabled || self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = match self.total_us {
                Some(t) => ProgressBar::new(t.max(1) as u64).with_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {percent}% simulated, ETA {eta} {prefix}")
                        .expect("valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {prefix}").expect("valid template"),
                ),
            };
            b.set_message(self.label.clone());
            b
        });
        if self.total_us.is_some() {
            bar.set_position(sim_us.max(0) as u64);
        } else {
            bar.tick();
        }
        bar.set_prefix(format!("({:.0} s simulated, {finished} requests done)", sim_us as f64 / 1e6));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

fn invalid(e: &InvalidInput) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// Reads, overrides and validates every scenario before anything is simulated (shared by `run` and
/// `gate`); the error is the exit status to return.
fn load_and_resolve(
    files: &[PathBuf],
    embedded_quickstart: bool,
    seed: Option<u64>,
    profile: Option<&std::path::Path>,
) -> Result<(Vec<load::LoadedScenario>, Vec<scenario::Resolved>), ExitCode> {
    let mut loaded = Vec::new();
    if embedded_quickstart {
        match load::load_text(std::path::Path::new("examples/quickstart.yaml"), QUICKSTART) {
            Ok((l, _)) => loaded.extend(l),
            Err(e) => return Err(invalid(&e)),
        }
    }
    match load::load_paths(files) {
        Ok(l) => loaded.extend(l),
        Err(e) => return Err(invalid(&e)),
    }
    let profile = profile.map(load_profile).transpose().map_err(|e| invalid(&e))?;
    let mut resolved = Vec::with_capacity(loaded.len());
    for l in &loaded {
        let name = &l.manifest.metadata.name;
        let mut spec = l.manifest.spec.clone();
        if let Some(s) = seed {
            spec.seed = Some(s);
        }
        if let Some(p) = &profile {
            let base =
                spec.hardware.profile.clone().or_else(|| blis::catalog::gpu::builtin(&spec.hardware.gpu));
            if let Some(mut g) = base.filter(|g| g.name == p.gpu) {
                g.calibration = Some(p.clone());
                spec.hardware.profile = Some(g);
            }
        }
        match scenario::resolve(name, &spec) {
            Ok(mut r) => {
                r.warnings.extend(l.import_warnings.iter().cloned());
                resolved.push(r)
            }
            Err(e) => {
                let e = if name.is_empty() {
                    e
                } else {
                    InvalidInput { field: format!("{name}: {}", e.field), ..e }
                };
                return Err(invalid(&e));
            }
        }
    }
    Ok((loaded, resolved))
}

/// Simulates each resolved scenario in turn (progress bar on a terminal, one wall-time line each on
/// stderr); the error is the exit status to return.
fn simulate_all(
    loaded: &[load::LoadedScenario],
    resolved: &[scenario::Resolved],
    interactive: bool,
) -> Result<Vec<scenario::Outcome>, ExitCode> {
    let mut outcomes = Vec::with_capacity(resolved.len());
    for (r, l) in resolved.iter().zip(loaded) {
        let started = Instant::now();
        let mut progress = Progress {
            enabled: interactive,
            started,
            label: r.name.clone(),
            bar: None,
            total_us: r.horizon_us.or(r.workload.duration_seconds.map(|d| (d * 1e6) as i64)),
        };
        let outcome = scenario::simulate(r, l.trace_text.clone(), &SimOptions::default(), &mut progress);
        drop(progress);
        match outcome {
            Ok(o) => {
                eprintln!(
                    "simulated {} in {:.3} s wall ({} requests, {} events)",
                    r.name,
                    started.elapsed().as_secs_f64(),
                    o.output.generated,
                    o.output.events
                );
                outcomes.push(o);
            }
            Err(RunError::Invalid(e)) => {
                return Err(invalid(&InvalidInput { field: format!("{}: {}", r.name, e.field), ..e }))
            }
            Err(RunError::Sim(e)) => {
                eprintln!("error: {}: {e}", r.name);
                return Err(ExitCode::from(1));
            }
        }
    }
    Ok(outcomes)
}

fn run(args: RunArgs) -> ExitCode {
    let (loaded, resolved) =
        match load_and_resolve(&args.files, args.files.is_empty(), args.seed, args.profile.as_deref()) {
            Ok(x) => x,
            Err(code) => return code,
        };
    let interactive = !args.no_progress && std::io::stderr().is_terminal();
    let outcomes = match simulate_all(&loaded, &resolved, interactive) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (reports, outputs): (Vec<ScenarioReport>, Vec<_>) =
        resolved.iter().zip(outcomes).map(|(r, o)| (ScenarioReport::new(r, o.summary), o.output)).unzip();
    match args.output {
        Output::Json => {
            let doc = serde_json::json!({ "scenarios": reports });
            match serde_json::to_string_pretty(&doc) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: cannot encode JSON: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        Output::Table => {
            for (i, rep) in reports.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", table::render(rep));
            }
        }
    }
    if let Some(path) = &args.report {
        let yaml: Vec<String> = loaded.iter().map(|l| l.manifest.to_yaml()).collect();
        let views: Vec<html::RunView> = reports
            .iter()
            .zip(&outputs)
            .zip(&yaml)
            .map(|((rep, out), y)| html::RunView::new(rep, out, y))
            .collect();
        if let Err(e) = std::fs::write(path, html::render_run(&views)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

fn gate_cmd(args: GateArgs) -> ExitCode {
    let (loaded, resolved) = match load_and_resolve(&args.paths, false, args.seed, args.profile.as_deref()) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let summaries: Vec<blis::metrics::Summary> = match simulate_all(&loaded, &resolved, false) {
        Ok(o) => o.into_iter().map(|o| o.summary).collect(),
        Err(code) => return code,
    };
    let scenarios = loaded
        .iter()
        .zip(&summaries)
        .map(|(l, s)| {
            let file = l.file.display().to_string();
            ScenarioGates::evaluate(&l.manifest.metadata.name, &file, l.manifest.spec.gates.as_ref(), s)
        })
        .collect();
    let report = GateReport::new(scenarios);
    match args.output {
        GateOutput::Text => print!("{}", report.to_text()),
        GateOutput::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode JSON: {e}");
                return ExitCode::from(1);
            }
        },
        GateOutput::Junit => print!("{}", report.to_junit()),
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn bench_cmd(args: BenchArgs) -> ExitCode {
    let cases = match bench::cases(&args.case) {
        Ok(c) => c,
        Err(e) => return invalid(&e),
    };
    let mut results = Vec::new();
    for case in cases {
        match bench::measure(&case, args.repeat.max(1)) {
            Ok(r) => {
                if args.output == Output::Table {
                    println!("{}", r.line());
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("error: benchmark {}: {e}", case.name);
                return ExitCode::from(1);
            }
        }
    }
    if args.output == Output::Json {
        match serde_json::to_string_pretty(&results) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode JSON: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

fn optimize_cmd(a: OptimizeArgs) -> ExitCode {
    use blis::optimize::{self, emit};
    let mut loaded = match optimize::spec::load(&a.file) {
        Ok(l) => l,
        Err(e) => return invalid(&e),
    };
    if a.budget.is_some() {
        loaded.manifest.spec.budget = a.budget;
    }
    let name = if loaded.manifest.metadata.name.is_empty() {
        a.file.file_stem().map_or("search".into(), |s| s.to_string_lossy().into_owned())
    } else {
        loaded.manifest.metadata.name.clone()
    };
    let started = Instant::now();
    let bar = (!a.no_progress && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} candidates, {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message(name.clone());
        b
    });
    let mut progress = |done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let result =
        optimize::run(&name, &loaded.manifest.spec, &loaded.base, loaded.trace_text.clone(), &mut progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let r = match result {
        Ok(r) => r,
        Err(RunError::Invalid(e)) => {
            return invalid(&InvalidInput { field: format!("{}: {}", a.file.display(), e.field), ..e })
        }
        Err(RunError::Sim(e)) => {
            eprintln!("error: {name}: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "searched {name} in {:.1} s wall ({} evaluations)",
        started.elapsed().as_secs_f64(),
        r.evaluations
    );
    if let Some(path) = &a.report {
        let seed = r.check_seeds.first().or(r.tuning_seeds.first()).copied();
        let runs: Vec<_> = [("baseline", &loaded.base), ("optimized", &r.winner_spec)]
            .into_iter()
            .filter_map(|(label, spec)| {
                let mut spec = spec.clone();
                spec.seed = seed.or(spec.seed);
                let resolved = scenario::resolve(&format!("{name}-{label}"), &spec).ok()?;
                let o = scenario::simulate(
                    &resolved,
                    loaded.trace_text.clone(),
                    &SimOptions::default(),
                    &mut blis::sim::NoObserver,
                )
                .ok()?;
                Some((
                    ScenarioReport::new(&resolved, o.summary),
                    o.output,
                    serde_yaml::to_string(&spec).ok()?,
                ))
            })
            .collect();
        let views: Vec<html::RunView> = runs.iter().map(|(r, o, y)| html::RunView::new(r, o, y)).collect();
        if let Err(e) = std::fs::write(path, html::render_run(&views)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &a.out {
        let mut files = vec![
            ("scenario.yaml", emit::scenario_yaml(&format!("{name}-optimized"), &r.winner_spec)),
            ("router.yaml", emit::router_yaml(&r.winner_spec)),
        ];
        if let Some(epp) = emit::endpoint_picker_yaml(&r.winner_spec) {
            files.push(("endpoint-picker-config.yaml", epp));
        }
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: cannot create {}: {e}", dir.display());
            return ExitCode::from(1);
        }
        for (f, text) in files {
            let path = dir.join(f);
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
            eprintln!("wrote {}", path.display());
        }
    }
    match a.output {
        Output::Json => match serde_json::to_string_pretty(&r) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode JSON: {e}");
                return ExitCode::from(1);
            }
        },
        Output::Table => print!("{}", emit::table(&r)),
    }
    ExitCode::SUCCESS
}

fn crd_cmd() -> ExitCode {
    match blis::api::crds_yaml() {
        Ok(y) => {
            print!("{y}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot encode the CRDs: {e}");
            ExitCode::from(1)
        }
    }
}

fn controller_cmd(a: ControllerArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let identity = a.identity.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    if !(a.max_wall_seconds.is_finite() && a.max_wall_seconds > 0.0) {
        return invalid(&InvalidInput::new(
            "--max-wall-seconds",
            "must be positive",
            "give a number of seconds",
        ));
    }
    let opts = blis::controller::Options {
        namespaces: a.namespace,
        metrics_addr: a.metrics_addr,
        max_concurrent: a.max_concurrent,
        leader_election: a.leader_election,
        leader_election_namespace: a.leader_election_namespace,
        identity,
        limits: blis::controller::Limits {
            wall: Duration::from_secs_f64(a.max_wall_seconds),
            max_requests: a.max_requests,
        },
        fan_out: blis::controller::fanout::FanOutConfig {
            image: a.sweep_image,
            service_account: a.sweep_service_account,
            threshold: a.sweep_fan_out_threshold,
            default_shards: a.sweep_shards.max(1),
        },
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(blis::controller::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(a) => run(a),
        Command::Gate(a) => gate_cmd(a),
        Command::Bench(a) => bench_cmd(a),
        Command::Validate(a) => validate_cmd(a),
        Command::Calibrate(a) => calibrate_cmd(a),
        Command::Optimize(a) => optimize_cmd(a),
        Command::Crd => crd_cmd(),
        Command::Controller(a) => controller_cmd(a),
        Command::Compare(a) => compare_cmd(a),
        Command::Sweep(a) => sweep_cmd(a),
        Command::SweepShard(a) => sweep_shard_cmd(a),
    }
}

fn sweep_shard_cmd(a: SweepShardArgs) -> ExitCode {
    use blis::controller::{fanout, Error};
    let shard = match blis::sweep::shard::Shard::parse(&format!("{}/{}", a.index, a.shards)) {
        Ok(s) => s,
        Err(e) => return invalid(&InvalidInput { field: "--index/--shards".into(), ..e }),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = rt.block_on(async {
        let client = kube::Client::try_default().await.map_err(Error::Api)?;
        fanout::run_worker(client, &a.namespace, &a.sweep, shard, a.spec_hash.as_deref(), a.threads).await
    });
    match outcome {
        Ok(fanout::WorkerOutcome::Written(cm)) => {
            eprintln!(
                "shard {}/{} of {}/{}: results in ConfigMap {cm}",
                a.index, a.shards, a.namespace, a.sweep
            );
            ExitCode::SUCCESS
        }
        Ok(fanout::WorkerOutcome::Stale) => {
            eprintln!(
                "sweep {}/{} changed since this Job was made; its new Job runs it",
                a.namespace, a.sweep
            );
            ExitCode::SUCCESS
        }
        Err(Error::Invalid(e)) => invalid(&e),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn compare_cmd(args: CompareArgs) -> ExitCode {
    let candidates = match &args.namespace {
        Some(ns) => match cluster_candidates(ns) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot read SimulationScenarios in namespace {ns}: {e:#}");
                return ExitCode::from(1);
            }
        },
        None => {
            // Each path is one candidate's set of manifests: its references resolve within it.
            let mut loaded = Vec::new();
            for p in &args.paths {
                match load::load_paths(std::slice::from_ref(p)) {
                    Ok(l) => loaded.extend(l),
                    Err(e) => return invalid(&e),
                }
            }
            let mut out = Vec::with_capacity(loaded.len());
            for l in loaded {
                let name = l.manifest.metadata.name.clone();
                match scenario::run_spec(&name, &l.manifest.spec, l.trace_text.clone()) {
                    Ok(o) => {
                        let gates = l.manifest.spec.gates.clone().unwrap_or_default();
                        let met = blis::metrics::gates::evaluate(&gates, &o.summary).iter().all(|g| g.passed);
                        out.push(compare::Candidate {
                            name,
                            predictions: blis::api::predictions::from_summary(&o.summary),
                            slo_met: Some(met),
                        });
                    }
                    Err(RunError::Invalid(e)) => {
                        return invalid(&InvalidInput { field: format!("{name}: {}", e.field), ..e })
                    }
                    Err(RunError::Sim(e)) => {
                        eprintln!("error: {name}: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            out
        }
    };
    let rows = compare::rows(&candidates);
    match args.output {
        CompareOutput::Table => print!("{}", compare::table(&rows)),
        CompareOutput::Markdown => print!("{}", compare::markdown(&rows)),
        CompareOutput::Json => match serde_json::to_string_pretty(&serde_json::json!({ "candidates": rows }))
        {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode JSON: {e}");
                return ExitCode::from(1);
            }
        },
    }
    ExitCode::SUCCESS
}

/// The candidates of a namespace: each SimulationScenario's status predictions and SLOMet condition.
fn cluster_candidates(ns: &str) -> anyhow::Result<Vec<compare::Candidate>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = kube::Client::try_default().await?;
        let api: kube::Api<blis::api::SimulationScenario> = kube::Api::namespaced(client, ns);
        let list = api.list(&kube::api::ListParams::default()).await?;
        let mut out: Vec<compare::Candidate> = list
            .items
            .into_iter()
            .map(|s| {
                let status = s.status.unwrap_or_default();
                let met =
                    blis::api::conditions::status_of(&status.conditions, blis::api::conditions::SLO_MET);
                compare::Candidate {
                    name: s.metadata.name.unwrap_or_default(),
                    predictions: status.predictions.unwrap_or(serde_json::Value::Null),
                    slo_met: met.and_then(|m| match m {
                        "True" => Some(true),
                        "False" => Some(false),
                        _ => None,
                    }),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    })
}

fn load_profile(path: &std::path::Path) -> Result<Calibration, InvalidInput> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        InvalidInput::new(
            &name,
            format!("cannot be read: {e}"),
            "give a profile file written by blis calibrate",
        )
    })?;
    let c: Calibration = serde_yaml::from_str(&text).map_err(|e| {
        InvalidInput::new(&name, e.to_string(), "give a profile file written by blis calibrate")
    })?;
    c.coefficients.validate().map_err(|e| e.under(&name))?;
    Ok(c)
}

fn validate_cmd(args: ValidateArgs) -> ExitCode {
    let started = Instant::now();
    let exps = match calibrate::load_paths(&args.paths) {
        Ok(e) => e,
        Err(e) => return invalid(&e),
    };
    let profile = match args.profile.as_deref().map(load_profile).transpose() {
        Ok(p) => p,
        Err(e) => return invalid(&e),
    };
    let threads = args.threads.unwrap_or_else(calibrate::default_threads);
    // A profile applies to experiments on its own GPU only.
    let report = match &profile {
        None => calibrate::validate(&exps, None, threads),
        Some(p) => {
            let (mine, others): (Vec<_>, Vec<_>) = exps
                .iter()
                .cloned()
                .partition(|e| blis::catalog::gpu::builtin(&e.gpu).is_some_and(|g| g.name == p.gpu));
            match (calibrate::validate(&mine, Some(p), threads), calibrate::validate(&others, None, threads))
            {
                (Ok(a), Ok(b)) => {
                    let mut rows = a.rows;
                    rows.extend(b.rows);
                    let order: Vec<&str> = exps.iter().map(|e| e.id.as_str()).collect();
                    rows.sort_by_key(|r| order.iter().position(|id| *id == r.id));
                    Ok(calibrate::Report::new(rows))
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
    };
    let report = match report {
        Ok(r) => r,
        Err(RunError::Invalid(e)) => return invalid(&e),
        Err(RunError::Sim(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    match args.output {
        Output::Json => {
            let mut doc = report.to_json();
            doc["wall_seconds"] = serde_json::json!((wall * 100.0).round() / 100.0);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Output::Table => {
            print!("{}", report.to_table());
            println!("\n{} experiments in {wall:.2} s wall", report.rows.len());
        }
    }
    if let Some(path) = &args.ratchet {
        let current = ratchet::medians(&report);
        if args.update_ratchet {
            if let Err(e) = std::fs::write(path, ratchet::to_text(&current)) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
            eprintln!("ratchet {} updated", path.display());
        } else {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read ratchet {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            };
            match ratchet::check(&text, &current) {
                Ok(lines) => {
                    for l in lines {
                        eprintln!("{l}");
                    }
                    eprintln!("ratchet: no median got worse");
                }
                Err(worse) => {
                    for l in worse {
                        eprintln!("ratchet FAILED: {l}");
                    }
                    return ExitCode::from(1);
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn calibrate_cmd(args: CalibrateArgs) -> ExitCode {
    let exps = match calibrate::load_paths(&args.paths) {
        Ok(e) => e,
        Err(e) => return invalid(&e),
    };
    let Some(gpu) = blis::catalog::gpu::builtin(&args.gpu) else {
        return invalid(&InvalidInput::new(
            "--gpu",
            format!("unknown GPU {:?}", args.gpu),
            "use a built-in GPU profile name",
        ));
    };
    let fit_set: Vec<_> = exps
        .into_iter()
        .filter(|e| {
            e.is_training() && blis::catalog::gpu::builtin(&e.gpu).is_some_and(|g| g.name == gpu.name)
        })
        .collect();
    if fit_set.is_empty() {
        return invalid(&InvalidInput::new(
            "PATH",
            format!("no train-* or extra-* experiment on {}", gpu.name),
            "give experiment files measured on that GPU (eval-* files are never used for fitting)",
        ));
    }
    let mut opts = calibrate::fit::FitOptions::default();
    if let Some(i) = args.iterations {
        opts.iterations = i.max(1);
    }
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    eprintln!(
        "fitting {} on {} experiments: {}",
        gpu.name,
        fit_set.len(),
        fit_set.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ")
    );
    let started = Instant::now();
    let result = match calibrate::fit::fit(&fit_set, &gpu.name, &opts) {
        Ok(r) => r,
        Err(RunError::Invalid(e)) => return invalid(&e),
        Err(RunError::Sim(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for it in &result.iterations {
        println!(
            "iteration {:>2}: loss {:.5}  median APE on fit set: e2e mean {:.2} %, ttft mean {:.2} %",
            it.iteration, it.loss, it.median_e2e_ape, it.median_ttft_ape
        );
    }
    // Fit quality at the final point.
    let cal = result.calibration.clone();
    match calibrate::validate(&fit_set, Some(&cal), opts.threads) {
        Ok(r) => {
            let f = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}"));
            println!(
                "fit quality (median APE % over {} experiments): e2e mean {} p90 {} p99 {}, ttft mean {} p90 {} p99 {}, itl mean {}",
                r.all.count, f(r.all.median[0]), f(r.all.median[1]), f(r.all.median[2]), f(r.all.median[3]),
                f(r.all.median[4]), f(r.all.median[5]), f(r.all.median[6])
            );
        }
        Err(e) => eprintln!("warning: could not score the fit: {e}"),
    }
    println!("coefficients:");
    for (name, v) in blis::latency::calibrated::PARAM_NAMES.iter().zip(cal.coefficients.to_vec()) {
        println!("  {name:<26} {v}");
    }
    eprintln!("fit took {:.1} s", started.elapsed().as_secs_f64());
    let text = match serde_yaml::to_string(&cal) {
        Ok(t) => format!(
            "# Written by `blis calibrate --gpu {}` from train-* and extra-* experiments only.\n{t}",
            gpu.name
        ),
        Err(e) => {
            eprintln!("error: cannot encode the profile: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, &text) {
            eprintln!("error: cannot write {}: {e}", out.display());
            return ExitCode::from(1);
        }
        eprintln!("wrote {}", out.display());
    }
    if let Some(check) = &args.check {
        let shipped = match load_profile(check) {
            Ok(c) => c,
            Err(e) => return invalid(&e),
        };
        let (d, name) =
            calibrate::fit::max_relative_difference(&shipped.coefficients, &cal.coefficients, 1e-3);
        if d > 1e-3 {
            eprintln!("check FAILED: {name} differs by {:.3} % from {}", d * 100.0, check.display());
            return ExitCode::from(1);
        }
        eprintln!(
            "check: the fit reproduces {} (largest relative difference {d:.2e}, {name})",
            check.display()
        );
    }
    ExitCode::SUCCESS
}

fn print_json<T: serde::Serialize>(v: &T) -> ExitCode {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot encode JSON: {e}");
            ExitCode::from(1)
        }
    }
}

/// Writes the sweep's HTML page; the winner is simulated once more to draw its full charts.
fn write_sweep_html(
    path: &std::path::Path,
    file: &std::path::Path,
    report: &blis::sweep::SweepReport,
    candidates: &[blis::sweep::expand::Candidate],
    trace_text: Option<&std::sync::Arc<str>>,
) -> Result<(), ExitCode> {
    let inputs = std::fs::read_to_string(file).unwrap_or_default();
    let best = report.best.as_ref().and_then(|b| candidates.iter().find(|c| &c.name == b));
    let detail = best.and_then(|c| {
        let resolved = scenario::resolve(&c.name, &c.spec).ok()?;
        let o = scenario::simulate(
            &resolved,
            trace_text.cloned(),
            &SimOptions::default(),
            &mut blis::sim::NoObserver,
        )
        .ok()?;
        Some((ScenarioReport::new(&resolved, o.summary), o.output, serde_yaml::to_string(&c.spec).ok()?))
    });
    let page = blis::report::sweep::render_html(
        report,
        &inputs,
        detail.as_ref().map(|(r, o, y)| html::RunView::new(r, o, y)),
    );
    std::fs::write(path, page).map_err(|e| {
        eprintln!("error: cannot write {}: {e}", path.display());
        ExitCode::from(1)
    })?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn sweep_cmd(args: SweepArgs) -> ExitCode {
    use blis::sweep::{self, shard};
    let file = match sweep::load_sweep(&args.file) {
        Ok(f) => f,
        Err(e) => return invalid(&e),
    };
    let shard = match args.shard.as_deref().map(shard::Shard::parse).transpose() {
        Ok(s) => s,
        Err(e) => return invalid(&e),
    };
    let candidates = match sweep::plan(&file.spec) {
        Ok(c) => c,
        Err(e) => {
            return invalid(&InvalidInput { field: format!("{}: {}", args.file.display(), e.field), ..e })
        }
    };
    let hash = shard::spec_hash(&file.spec);
    let results = if args.merge.is_empty() {
        let threads = sweep::eval::threads(args.threads, file.spec.max_parallel);
        let visible = !args.no_progress && std::io::stderr().is_terminal();
        let started = Instant::now();
        let results = match sweep::run(
            &file.spec,
            &candidates,
            shard,
            file.trace_text.as_ref(),
            threads,
            &sweep::eval::RunControl::visible(visible),
        ) {
            Ok(r) => r,
            Err(e) => return invalid(&e),
        };
        eprintln!(
            "simulated {} of {} candidates in {:.2} s wall on {threads} threads",
            results.len(),
            candidates.len(),
            started.elapsed().as_secs_f64()
        );
        if let Some(s) = shard {
            return print_json(&shard::ShardDoc {
                sweep: file.name.clone(),
                spec_hash: hash,
                shard: s.index,
                shards: s.count,
                candidates: candidates.len(),
                results,
            });
        }
        results
    } else {
        let mut docs = Vec::with_capacity(args.merge.len());
        for path in &args.merge {
            let doc = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<shard::ShardDoc>(&t).map_err(|e| e.to_string()));
            match doc {
                Ok(d) => docs.push(d),
                Err(e) => {
                    return invalid(&InvalidInput::new(
                        path.display().to_string(),
                        format!("is not a shard result: {e}"),
                        "give files printed by `blis sweep FILE --shard i/n`",
                    ))
                }
            }
        }
        match shard::merge(&docs, &hash, candidates.len()) {
            Ok(r) => r,
            Err(e) => return invalid(&e),
        }
    };
    let report = sweep::SweepReport::new(&file.name, &file.spec, &results);
    if let Some(path) = &args.report {
        if let Err(code) = write_sweep_html(path, &args.file, &report, &candidates, file.trace_text.as_ref())
        {
            return code;
        }
    }
    match args.output {
        Output::Json => print_json(&report),
        Output::Table => {
            print!("{}", blis::report::sweep::render(&report, Some(args.top)));
            ExitCode::SUCCESS
        }
    }
}
