//! `blis optimize`: search a scenario's policy knobs and print the before/after table.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::progress::candidates_bar;
use super::{failed, print_json, spec_yaml, write_file, CliError, Output};
use blis_plan::optimize::{self, emit};
use blis_report::{html, ScenarioReport};

pub const HELP: &str = "\
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
pub struct Args {
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

pub fn exec(a: Args) -> Result<ExitCode, CliError> {
    let mut loaded = optimize::spec::load(&a.file)?;
    if a.budget.is_some() {
        loaded.manifest.spec.budget = a.budget;
    }
    let name = if loaded.manifest.metadata.name.is_empty() {
        a.file.file_stem().map_or("search".into(), |s| s.to_string_lossy().into_owned())
    } else {
        loaded.manifest.metadata.name.clone()
    };
    let started = Instant::now();
    let bar = candidates_bar(!a.no_progress && std::io::stderr().is_terminal(), &name);
    let mut progress = |done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let result =
        optimize::run(&name, &loaded.manifest.spec, &loaded.base, loaded.trace.clone(), &mut progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let r = result.map_err(|e| match e {
        blis_sim::scenario::RunError::Sim(e) => failed(format!("{name}: {e}")),
        e => CliError::of(&a.file.display().to_string(), e),
    })?;
    eprintln!(
        "searched {name} in {:.1} s wall ({} evaluations)",
        started.elapsed().as_secs_f64(),
        r.evaluations
    );
    if let Some(path) = &a.report {
        let seed = r.check_seeds.first().or(r.tuning_seeds.first()).copied();
        let mut runs = Vec::new();
        for (label, spec) in [("baseline", &loaded.base), ("optimized", &r.winner_spec)] {
            let mut spec = spec.clone();
            spec.seed = seed.or(spec.seed);
            let run_name = format!("{name}-{label}");
            let (report, output) = ScenarioReport::simulate(&run_name, &spec, loaded.trace.clone())
                .map_err(|e| CliError::of(&run_name, e))?;
            runs.push((report, output, spec_yaml(&spec)?));
        }
        let views: Vec<html::RunView> = runs.iter().map(|(r, o, y)| html::RunView::new(r, o, y)).collect();
        write_file(path, html::render_run(&views))?;
    }
    if let Some(dir) = &a.out {
        let mut files = vec![
            ("scenario.yaml", emit::scenario_yaml(&format!("{name}-optimized"), &r.winner_spec)),
            ("router.yaml", emit::router_yaml(&r.winner_spec)),
        ];
        if let Some(epp) = emit::endpoint_picker_yaml(&r.winner_spec) {
            files.push(("endpoint-picker-config.yaml", epp));
        }
        std::fs::create_dir_all(dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        for (f, text) in files {
            write_file(&dir.join(f), text)?;
        }
    }
    match a.output {
        Output::Json => print_json(&r)?,
        Output::Table => out!("{}", emit::table(&r)),
    }
    Ok(ExitCode::SUCCESS)
}
