//! `blis sweep-shard`: one shard of a fanned-out SimulationSweep, run by its Indexed Job's pods.

use std::process::ExitCode;

use super::{failed, runtime, CliError};
use blis_k8s::controller::{worker, Error};
use blis_plan::sweep::shard::Shard;
use blis_sim::error::InvalidInput;

#[derive(clap::Args)]
pub struct Args {
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

pub fn exec(a: Args) -> Result<ExitCode, CliError> {
    let shard = Shard::parse(&format!("{}/{}", a.index, a.shards))
        .map_err(|e| InvalidInput { field: "--index/--shards".into(), ..e })?;
    let outcome = runtime()?.block_on(async {
        let client = kube::Client::try_default().await.map_err(Error::Api)?;
        worker::run_worker(client, &a.namespace, &a.sweep, shard, a.spec_hash.as_deref(), a.threads).await
    });
    match outcome {
        Ok(worker::WorkerOutcome::Written(cm)) => {
            eprintln!(
                "shard {}/{} of {}/{}: results in ConfigMap {cm}",
                a.index, a.shards, a.namespace, a.sweep
            );
        }
        Ok(worker::WorkerOutcome::Stale) => {
            eprintln!(
                "sweep {}/{} changed since this Job was made; its new Job runs it",
                a.namespace, a.sweep
            );
        }
        Err(Error::Invalid(e)) => return Err(e.into()),
        Err(e) => return Err(failed(e)),
    }
    Ok(ExitCode::SUCCESS)
}
