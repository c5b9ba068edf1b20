//! `blis sweep`: expand a SimulationSweep, simulate the candidates in parallel, rank them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::{print_json, spec_yaml, write_file, CliError, Output};
use blis_plan::sweep::{self, eval, expand::Candidate, shard, SweepReport};
use blis_report::{html, ScenarioReport};
use blis_sim::error::InvalidInput;
use blis_sim::workload::Trace;

pub const HELP: &str = "\
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
pub struct Args {
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

pub fn exec(args: Args) -> Result<ExitCode, CliError> {
    let file = sweep::load_sweep(&args.file)?;
    let shard = args.shard.as_deref().map(shard::Shard::parse).transpose()?;
    let candidates = sweep::plan(&file.spec)
        .map_err(|e| InvalidInput { field: format!("{}: {}", args.file.display(), e.field), ..e })?;
    let hash = shard::spec_hash(&file.spec);
    let results = if args.merge.is_empty() {
        let threads = eval::threads(args.threads, file.spec.max_parallel);
        let visible = !args.no_progress && std::io::stderr().is_terminal();
        let started = Instant::now();
        let control = eval::RunControl::visible(visible);
        let results = sweep::run(&file.spec, &candidates, shard, file.trace.as_ref(), threads, &control)?;
        eprintln!(
            "simulated {} of {} candidates in {:.2} s wall on {threads} threads",
            results.len(),
            candidates.len(),
            started.elapsed().as_secs_f64()
        );
        if let Some(s) = shard {
            print_json(&shard::ShardDoc {
                sweep: file.name.clone(),
                spec_hash: hash,
                shard: s.index,
                shards: s.count,
                candidates: candidates.len(),
                results,
            })?;
            return Ok(ExitCode::SUCCESS);
        }
        results
    } else {
        let docs = args.merge.iter().map(|p| read_shard(p)).collect::<Result<Vec<_>, _>>()?;
        shard::merge(&docs, &hash, candidates.len())?
    };
    let report = SweepReport::new(&file.name, &file.spec, &results);
    if let Some(path) = &args.report {
        write_html(path, &args.file, &report, &candidates, file.trace.as_ref())?;
    }
    match args.output {
        Output::Json => print_json(&report)?,
        Output::Table => out!("{}", blis_report::sweep::render(&report, Some(args.top))),
    }
    Ok(ExitCode::SUCCESS)
}

/// One shard's JSON output, as printed by `blis sweep FILE --shard i/n`.
fn read_shard(path: &Path) -> Result<shard::ShardDoc, InvalidInput> {
    std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<shard::ShardDoc>(&t).map_err(|e| e.to_string()))
        .map_err(|e| {
            InvalidInput::new(
                path.display().to_string(),
                format!("is not a shard result: {e}"),
                "give files printed by `blis sweep FILE --shard i/n`",
            )
        })
}

/// Writes the sweep's HTML page; the winner is simulated once more to draw its full charts.
fn write_html(
    path: &Path,
    file: &Path,
    report: &SweepReport,
    candidates: &[Candidate],
    trace: Option<&Arc<Trace>>,
) -> Result<(), CliError> {
    let inputs = std::fs::read_to_string(file).unwrap_or_default();
    let best = report.best.as_ref().and_then(|b| candidates.iter().find(|c| &c.name == b));
    let detail = match best {
        Some(c) => {
            let (r, o) = ScenarioReport::simulate(&c.name, &c.spec, trace.cloned())
                .map_err(|e| CliError::of(&c.name, e))?;
            Some((r, o, spec_yaml(&c.spec)?))
        }
        None => None,
    };
    let page = blis_report::sweep::render_html(
        report,
        &inputs,
        detail.as_ref().map(|(r, o, y)| html::RunView::new(r, o, y)),
    );
    write_file(path, page)
}
