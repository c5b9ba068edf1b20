//! `blis sweep-shard`'s work inside one pod of a fanned-out sweep's Indexed Job: read the sweep,
//! simulate one shard of its candidates, write the result ConfigMap the controller merges.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use super::fanout::{shard_config_map, WORKER_FIELD_MANAGER};
use super::sweep::steps::prepare;
use super::Error;
use crate::api::SimulationSweep;
use blis_plan::sweep::shard::{self, Shard, ShardDoc};

/// What `blis sweep-shard` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// Wrote the result ConfigMap of this name.
    Written(String),
    /// The sweep changed since the Job was made (its replacement runs the new spec).
    Stale,
}

/// One shard pod's work: read the sweep, simulate shard `index` of `shards` (refusing a spec other
/// than `expected_hash`), and write the result ConfigMap by server-side apply.
pub async fn run_worker(
    client: Client,
    ns: &str,
    sweep: &str,
    shard: Shard,
    expected_hash: Option<&str>,
    threads: Option<usize>,
) -> Result<WorkerOutcome, Error> {
    let obj = Api::<SimulationSweep>::namespaced(client.clone(), ns).get(sweep).await?;
    let hash = shard::spec_hash(&obj.spec);
    if expected_hash.is_some_and(|h| h != hash) {
        return Ok(WorkerOutcome::Stale);
    }
    let prepared = prepare(&obj.spec).map_err(Error::Invalid)?;
    let spec = obj.spec.clone();
    let total = prepared.candidates.len();
    let results = tokio::task::spawn_blocking(move || {
        let threads = blis_plan::sweep::eval::threads(threads, spec.max_parallel);
        let control = blis_plan::sweep::eval::RunControl::default();
        blis_plan::sweep::run(&spec, &prepared.candidates, Some(shard), None, threads, &control)
    })
    .await
    .map_err(|e| Error::Simulation(format!("shard thread failed: {e}")))?
    .map_err(Error::Invalid)?;
    let doc = ShardDoc {
        sweep: sweep.to_string(),
        spec_hash: hash,
        shard: shard.index,
        shards: shard.count,
        candidates: total,
        results,
    };
    let cm = shard_config_map(&obj, &doc).map_err(Error::Invalid)?;
    let name = cm.name_any();
    Api::<ConfigMap>::namespaced(client, ns)
        .patch(&name, &PatchParams::apply(WORKER_FIELD_MANAGER).force(), &Patch::Apply(&cm))
        .await?;
    Ok(WorkerOutcome::Written(name))
}
