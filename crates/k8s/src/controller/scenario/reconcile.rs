//! The scenario reconciler's steps that touch the API or the runtime: fetch what a scenario
//! references, write its status and Events, and run its simulation on a blocking thread. Every
//! decision is made by the pure [`super::steps`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

use super::steps::{self, Decision, Prepared, Referenced};
use crate::api::conditions::SLO_MET;
use crate::api::{HardwareProfile, SimulationScenario, SimulationScenarioSpec, SimulationScenarioStatus};
use crate::controller::client::{apply_status_of, fresh, is_dns_name, publish_event, retry_transient};
use crate::controller::fair::FairPermits;
use crate::controller::metrics::Metrics;
use crate::controller::ref_index::RefIndex;
use crate::controller::runs::{cancel_when_gone, RunGuard, Runs};
use crate::controller::status::{status_stalled, Written};
use crate::controller::watched::{shorten, Watched};
use crate::controller::{import_refs, Error, Limits};
use blis_sim::error::InvalidInput;
use blis_sim::scenario::budget;
use blis_sim::scenario::limits::LimitObserver;
use blis_sim::scenario::ScenarioSpec;
use blis_sim::scenario::{self, RunError};
use blis_sim::sim::{SimError, SimOptions};

/// Shared state of the reconciler.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) runs: Arc<Runs>,
    pub(crate) permits: Arc<FairPermits>,
    pub(crate) limits: Limits,
    pub(crate) store: Store<Watched<SimulationScenario>>,
    pub(crate) failures: Mutex<HashMap<String, u32>>,
    /// What each scenario references, for the watches of referenced kinds (filled by reconciles).
    pub(crate) refs: Arc<RefIndex>,
    /// Digest of the status this controller last wrote, per uid: another writer's status is rewritten.
    pub(crate) written: Written,
}

/// Step that touches the API: the objects a scenario references. A referenced HardwareProfile that
/// does not parse is an input error naming it.
pub async fn fetch(client: &Client, obj: &SimulationScenario) -> Result<Referenced, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut refs =
        Referenced { objects: import_refs::fetch(client, &ns, &obj.spec).await?, ..Default::default() };
    // The GPU may come from an imported model server.
    let effective =
        blis_import::apply(&obj.spec, &refs.objects).map(|i| i.spec).unwrap_or(obj.spec.0.clone());
    if let Some((name, _)) = steps::config_map_ref(&effective) {
        if is_dns_name(name) {
            refs.trace_config_map = Api::<ConfigMap>::namespaced(client.clone(), &ns).get_opt(name).await?;
        }
    }
    let api = Api::<Watched<HardwareProfile>>::all(client.clone());
    for gpu in steps::profile_gpus(&effective) {
        for name in steps::hardware_profile_names(gpu) {
            if is_dns_name(&name) {
                if let Some(hp) = api.get_opt(&name).await? {
                    let spec = hp
                        .spec()
                        .map_err(|e| Error::Invalid(e.within(&format!("HardwareProfile {name}"))))?;
                    refs.hardware_profiles
                        .insert(gpu.to_string(), HardwareProfile { metadata: hp.metadata, spec });
                    break;
                }
            }
        }
    }
    Ok(refs)
}

/// Step that touches the API: writes the whole status by server-side apply and remembers it as
/// this controller's.
pub async fn apply_status(
    ctx: &Context,
    obj: &impl Resource,
    status: &SimulationScenarioStatus,
) -> Result<(), kube::Error> {
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    // The digest is of the status as stored: the server's encoding and merge are what a later read sees.
    let stored = apply_status_of::<SimulationScenario, _>(&ctx.client, &ns, &name, status).await?;
    ctx.written.record(&obj.uid().unwrap_or_default(), stored.as_ref().unwrap_or(status));
    Ok(())
}

async fn publish(
    ctx: &Context,
    obj: &impl Resource<DynamicType = ()>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    publish_event(&ctx.recorder, obj, type_, reason, "Simulate", note).await;
}

/// The status of `obj` in the cache now (a run's result is written over the newest one).
fn latest(ctx: &Context, obj: &SimulationScenario) -> SimulationScenarioStatus {
    let key = ObjectRef::new(&obj.name_any()).within(&obj.namespace().unwrap_or_default());
    ctx.store.get(&key).and_then(|w| w.status()).or_else(|| obj.status.clone()).unwrap_or_default()
}

/// Reconciles one scenario: parse, fetch, validate + build, hash, skip or (re)start its simulation.
#[tracing::instrument(skip(obj, ctx), fields(ns = obj.namespace().unwrap_or_default(), name = obj.name_any()))]
pub async fn reconcile(obj: Arc<Watched<SimulationScenario>>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_inner(&obj, &ctx).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures.lock().expect("lock").remove(&obj.uid().unwrap_or_default());
    }
    result
}

/// Writes Stalled for an input error found before a run (the object's own spec or what it
/// references) and warns with an Event, once: an unchanged status is not written again.
async fn stall_invalid(
    ctx: &Context,
    obj: &Watched<SimulationScenario>,
    prev: &SimulationScenarioStatus,
    e: InvalidInput,
) -> Result<Action, Error> {
    ctx.runs.cancel(&obj.uid().unwrap_or_default());
    let err = Error::Invalid(e);
    ctx.metrics.error(err.reason());
    // The inputs could not be read, so no inputs hash describes this status.
    let status = status_stalled(prev, obj.metadata.generation, None, &err, jiff::Timestamp::now());
    if &status != prev
        || !ctx.written.is_ours(&obj.uid().unwrap_or_default(), prev, obj.status_written_by_another())
    {
        apply_status(ctx, obj, &status).await?;
        publish(ctx, obj, EventType::Warning, "InvalidInput", err.to_string()).await;
    }
    tracing::info!(reason = err.reason(), error = %err, "invalid input");
    Ok(Action::await_change())
}

async fn reconcile_inner(
    watched: &Arc<Watched<SimulationScenario>>,
    ctx: &Arc<Context>,
) -> Result<Action, Error> {
    let uid = watched.uid().unwrap_or_default();
    let generation = watched.metadata.generation;
    let status: Option<SimulationScenarioStatus> = watched.status();
    let prev = status.clone().unwrap_or_default();
    let spec = match watched.spec::<ScenarioSpec>().and_then(|s| steps::check_names(&s).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            ctx.refs.forget(&ObjectRef::from_obj(&**watched));
            return stall_invalid(ctx, watched, &prev, e).await;
        }
    };
    ctx.refs.record(watched, &spec);
    let name = watched.name_any();
    let obj = Arc::new(SimulationScenario {
        metadata: watched.metadata.clone(),
        spec: SimulationScenarioSpec(spec),
        status,
    });
    let refs = match fetch(&ctx.client, &obj).await {
        Ok(r) => r,
        Err(Error::Invalid(e)) => return stall_invalid(ctx, watched, &prev, e).await,
        Err(e) => return Err(e),
    };
    let prepared = match steps::prepare(&name, &obj.spec, &refs) {
        Ok(p) => p,
        Err(e) => return stall_invalid(ctx, watched, &prev, e).await,
    };
    // Over the budget: refused before anything is allocated, once for these inputs.
    let estimate = budget::estimate(&prepared.resolved, prepared.trace.as_deref());
    if let Err(e) = ctx.limits.budget().check(&estimate) {
        let err = Error::Limit(e.to_string());
        let status = status_stalled(&prev, generation, Some(&prepared.hash), &err, jiff::Timestamp::now());
        ctx.runs.cancel(&uid);
        if status != prev || !ctx.written.is_ours(&uid, &prev, watched.status_written_by_another()) {
            apply_status(ctx, &*obj, &status).await?;
            ctx.metrics.error(err.reason());
            publish(ctx, &*obj, EventType::Warning, err.reason(), err.to_string()).await;
        }
        return Ok(Action::await_change());
    }
    if steps::decide(obj.status.as_ref(), generation, &prepared.hash) == Decision::UpToDate
        && (ctx.runs.running(&uid, &prepared.hash)
            || ctx.written.is_ours(&uid, &prev, watched.status_written_by_another()))
    {
        ctx.metrics.skipped.inc();
        return Ok(Action::await_change());
    }
    if ctx.runs.running(&uid, &prepared.hash) {
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    // The cache may lag behind a result just written: confirm against the API server.
    let Some(fresh) = fresh::<SimulationScenario>(&ctx.client, &**watched).await? else {
        return Ok(Action::await_change());
    };
    let fresh_status: Option<SimulationScenarioStatus> = fresh.status();
    let prev = fresh_status.clone().unwrap_or_default();
    if steps::decide(fresh_status.as_ref(), fresh.metadata.generation, &prepared.hash) == Decision::UpToDate {
        if ctx.written.is_ours(&uid, &prev, fresh.status_written_by_another()) {
            ctx.metrics.skipped.inc();
            return Ok(Action::await_change());
        }
        // Up to date by its own word, but not what this controller wrote: simulate again.
        tracing::warn!(name, "status not written by this controller; rewriting it");
        ctx.metrics.error("StatusRepaired");
    }
    let cancel = ctx.runs.start(&uid, &prepared.hash);
    // Simulating is written before the run starts, so it cannot overwrite the run's result.
    let status = steps::status_simulating(&prev, generation, jiff::Timestamp::now());
    if let Err(e) = apply_status(ctx, &*obj, &status).await {
        ctx.runs.cancel(&uid);
        return Err(e.into());
    }
    let (ctx2, obj2) = (ctx.clone(), obj.clone());
    tokio::spawn(async move { run_simulation(ctx2, obj2, prepared, cancel).await });
    publish(
        ctx,
        &*obj,
        EventType::Normal,
        "SimulationStarted",
        format!("simulating generation {}", generation.unwrap_or(0)),
    )
    .await;
    Ok(Action::requeue(Duration::from_secs(60)))
}

async fn run_simulation(
    ctx: Arc<Context>,
    obj: Arc<SimulationScenario>,
    prepared: Prepared,
    cancel: Arc<AtomicBool>,
) {
    let uid = obj.uid().unwrap_or_default();
    // Registered until the result is written, so a reconcile on a lagging cache does not rerun it.
    let _registered = RunGuard::new(&ctx.runs, &uid, &cancel);
    let _permit = ctx.permits.acquire(&obj.namespace().unwrap_or_default()).await;
    if cancel.load(Ordering::Relaxed) {
        return;
    }
    // Backstop for a delete the watch missed: cancel when the object is gone (or replaced).
    let watchdog = {
        let (store, key, uid) = (
            ctx.store.clone(),
            ObjectRef::new(&obj.name_any()).within(&obj.namespace().unwrap_or_default()),
            obj.uid(),
        );
        cancel_when_gone(Duration::from_millis(500), cancel.clone(), move || {
            let gone = store.get(&key).is_none_or(|o| o.uid() != uid);
            async move { gone }
        })
    };
    ctx.metrics.in_flight.inc();
    let started = Instant::now();
    let limits = ctx.limits;
    let (p2, c2) = (prepared.clone(), cancel.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let mut observer = LimitObserver::new(Some(&c2), Some(limits.start()));
        let r = scenario::simulate(&p2.resolved, p2.trace.clone(), &SimOptions::default(), &mut observer);
        (r, observer.exceeded())
    })
    .await;
    let wall = started.elapsed().as_secs_f64();
    watchdog.abort();
    ctx.metrics.in_flight.dec();
    ctx.metrics.simulations.inc();
    ctx.metrics.simulation_duration.observe(wall);
    let outcome = match joined {
        Ok((Ok(o), _)) => Ok(o),
        Ok((Err(RunError::Sim(SimError::Cancelled { .. })), Some(why))) => Err(Error::Limit(why)),
        Ok((Err(RunError::Sim(SimError::Cancelled { .. })), None)) => {
            ctx.metrics.cancelled.inc();
            tracing::info!(name = obj.name_any(), "simulation cancelled");
            return;
        }
        Ok((Err(RunError::Sim(SimError::TooManyEvents(n))), _)) => {
            Err(Error::Limit(format!("more than {n} events")))
        }
        Ok((Err(RunError::Sim(e)), _)) => Err(Error::Simulation(e.to_string())),
        Ok((Err(RunError::Invalid(e)), _)) => Err(Error::Invalid(e)),
        Err(e) => Err(Error::Simulation(format!("simulation thread failed: {e}"))),
    };
    if !ctx.runs.is_current(&uid, &cancel) {
        return; // superseded or deleted meanwhile
    }
    let prev = latest(&ctx, &obj);
    let generation = obj.metadata.generation;
    let name = obj.name_any();
    let now = jiff::Timestamp::now();
    let err = match outcome {
        Ok(o) => {
            let (status, verdict) =
                steps::status_succeeded(&prev, generation, &prepared, &o.summary, wall, now);
            match apply_result(&ctx, &obj, &status, &cancel).await {
                Ok(()) => {
                    tracing::info!(name, wall, slo_met = verdict.slo_met, "simulation succeeded");
                    let msg = status.conditions.first().map(|c| c.message.clone()).unwrap_or_default();
                    let note = format!("{msg} (wall {wall:.2} s)");
                    publish(&ctx, &*obj, EventType::Normal, "SimulationSucceeded", note).await;
                    if !verdict.slo_met {
                        let m = status.conditions.iter().find(|c| c.type_ == SLO_MET).map(|c| c.message.clone());
                        publish(&ctx, &*obj, EventType::Warning, "SLOViolated", m.unwrap_or_default()).await;
                    }
                    return;
                }
                // The API server refuses the prediction itself (too large to store): say so.
                Err(kube::Error::Api(e)) if [413, 422].contains(&e.code) => Error::Limit(format!(
                    "the prediction cannot be stored in the status ({}); use fewer classes or pools, or shorter names",
                    shorten(&e.message, 200)
                )),
                Err(e) => {
                    ctx.metrics.error("ApiError");
                    tracing::warn!(name, error = %e, "cannot write status; the next reconcile re-simulates");
                    return;
                }
            }
        }
        Err(err) => err,
    };
    ctx.metrics.error(err.reason());
    tracing::warn!(name, reason = err.reason(), error = %err, "simulation did not produce a prediction");
    // Every outcome records its inputs hash: the same inputs are not run again.
    let mut status = status_stalled(&prev, generation, Some(prepared.hash.as_str()), &err, now);
    if let Err(e) = apply_result(&ctx, &obj, &status, &cancel).await {
        ctx.metrics.error("ApiError");
        tracing::warn!(name, error = %e, "cannot write the Stalled status");
        if let kube::Error::Api(ae) = &e {
            if [413, 422].contains(&ae.code) {
                // Even the old predictions do not fit any more: drop them.
                status.predictions = None;
                status.normalized_inputs = None;
                status.gate_results.clear();
                if apply_status(&ctx, &*obj, &status).await.is_err() {
                    ctx.metrics.error("ApiError");
                }
            }
        }
    }
    let reason = if matches!(err, Error::Invalid(_)) { "InvalidInput" } else { err.reason() };
    publish(&ctx, &*obj, EventType::Warning, reason, err.to_string()).await;
}

/// Writes a finished run's status, retrying while the API server is unreachable or failing and the
/// run is still the current one ([`retry_transient`]); a refusal (gone, conflict, too large) is returned.
async fn apply_result(
    ctx: &Context,
    obj: &SimulationScenario,
    status: &SimulationScenarioStatus,
    cancel: &Arc<AtomicBool>,
) -> Result<(), kube::Error> {
    let uid = obj.uid().unwrap_or_default();
    retry_transient(
        "scenario result",
        || ctx.runs.is_current(&uid, cancel),
        || apply_status(ctx, obj, status),
    )
    .await
}

/// Requeue rule on reconcile errors: per-object exponential backoff for transient ones.
pub fn error_policy(obj: Arc<Watched<SimulationScenario>>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(err.reason());
    let attempts = {
        let mut f = ctx.failures.lock().expect("lock");
        let n = f.entry(obj.uid().unwrap_or_default()).or_insert(0);
        *n += 1;
        *n
    };
    tracing::warn!(name = obj.name_any(), reason = err.reason(), attempts, error = %err, "reconcile failed");
    match err.requeue(attempts) {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    }
}
