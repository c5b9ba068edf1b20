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
use kube::{Api, Client, ResourceExt};
use tokio::sync::Semaphore;

use super::steps::{self, Decision, Prepared, Referenced};
use crate::api::{HardwareProfile, SimulationScenario, SimulationScenarioStatus};
use crate::controller::client::{apply_status_of, fresh, is_dns_name, publish_event};
use crate::controller::metrics::Metrics;
use crate::controller::runs::{RunGuard, Runs};
use crate::controller::status::status_stalled;
use crate::controller::{import_refs, Error, Limits};
use blis_sim::scenario::limits::LimitObserver;
use blis_sim::scenario::{self, RunError};
use blis_sim::sim::{SimError, SimOptions};

/// Shared state of the reconciler.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) runs: Runs,
    pub(crate) semaphore: Arc<Semaphore>,
    pub(crate) limits: Limits,
    pub(crate) store: Store<SimulationScenario>,
    pub(crate) failures: Mutex<HashMap<String, u32>>,
}

/// Step that touches the API: the objects a scenario references.
pub async fn fetch(client: &Client, obj: &SimulationScenario) -> Result<Referenced, kube::Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut refs =
        Referenced { objects: import_refs::fetch(client, &ns, &obj.spec).await?, ..Default::default() };
    // The GPU may come from an imported model server.
    let effective =
        blis_import::apply(&obj.spec, &refs.objects).map(|i| i.spec).unwrap_or(obj.spec.0.clone());
    if let Some((name, _)) = steps::config_map_ref(&effective) {
        refs.trace_config_map = Api::<ConfigMap>::namespaced(client.clone(), &ns).get_opt(name).await?;
    }
    let api = Api::<HardwareProfile>::all(client.clone());
    for gpu in steps::profile_gpus(&effective) {
        for name in steps::hardware_profile_names(gpu) {
            if is_dns_name(&name) {
                if let Some(hp) = api.get_opt(&name).await? {
                    refs.hardware_profiles.insert(gpu.to_string(), hp);
                    break;
                }
            }
        }
    }
    Ok(refs)
}

/// Step that touches the API: writes the whole status by server-side apply.
pub async fn apply_status(
    client: &Client,
    ns: &str,
    name: &str,
    status: &SimulationScenarioStatus,
) -> Result<(), kube::Error> {
    apply_status_of::<SimulationScenario>(client, ns, name, status).await
}

async fn publish(ctx: &Context, obj: &SimulationScenario, type_: EventType, reason: &str, note: String) {
    publish_event(&ctx.recorder, obj, type_, reason, "Simulate", note).await;
}

fn latest(ctx: &Context, obj: &SimulationScenario) -> Arc<SimulationScenario> {
    ctx.store.get(&ObjectRef::from_obj(obj)).unwrap_or_else(|| Arc::new(obj.clone()))
}

/// Reconciles one scenario: fetch, validate + build, hash, skip or (re)start its simulation.
#[tracing::instrument(skip(obj, ctx), fields(ns = obj.namespace().unwrap_or_default(), name = obj.name_any()))]
pub async fn reconcile(obj: Arc<SimulationScenario>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_inner(&obj, &ctx).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures.lock().expect("lock").remove(&obj.uid().unwrap_or_default());
    }
    result
}

async fn reconcile_inner(obj: &Arc<SimulationScenario>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let uid = obj.uid().unwrap_or_default();
    let generation = obj.metadata.generation;
    let prev = obj.status.clone().unwrap_or_default();
    let refs = fetch(&ctx.client, obj).await?;
    let prepared = match steps::prepare(&name, &obj.spec, &refs) {
        Ok(p) => p,
        Err(e) => {
            ctx.runs.cancel(&uid);
            let err = Error::Invalid(e);
            ctx.metrics.error(err.reason());
            let status = status_stalled(&prev, generation, None, &err, jiff::Timestamp::now());
            if status != prev {
                apply_status(&ctx.client, &ns, &name, &status).await?;
                publish(ctx, obj, EventType::Warning, "InvalidInput", err.to_string()).await;
            }
            tracing::info!(reason = err.reason(), error = %err, "invalid input");
            return Ok(Action::await_change());
        }
    };
    if steps::decide(obj.status.as_ref(), generation, &prepared.hash) == Decision::UpToDate {
        ctx.metrics.skipped.inc();
        return Ok(Action::await_change());
    }
    if ctx.runs.running(&uid, &prepared.hash) {
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    // The cache may lag behind a result just written: confirm against the API server.
    let Some(fresh) = fresh(&ctx.client, &**obj).await? else { return Ok(Action::await_change()) };
    if steps::decide(fresh.status.as_ref(), fresh.metadata.generation, &prepared.hash) == Decision::UpToDate {
        ctx.metrics.skipped.inc();
        return Ok(Action::await_change());
    }
    let prev = fresh.status.clone().unwrap_or_default();
    let cancel = ctx.runs.start(&uid, &prepared.hash);
    // Simulating is written before the run starts, so it cannot overwrite the run's result.
    let status = steps::status_simulating(&prev, generation, jiff::Timestamp::now());
    if status != prev {
        if let Err(e) = apply_status(&ctx.client, &ns, &name, &status).await {
            ctx.runs.cancel(&uid);
            return Err(e.into());
        }
    }
    let (ctx2, obj2) = (ctx.clone(), obj.clone());
    tokio::spawn(async move { run_simulation(ctx2, obj2, prepared, cancel).await });
    publish(
        ctx,
        obj,
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
    let Ok(_permit) = ctx.semaphore.clone().acquire_owned().await else { return };
    if cancel.load(Ordering::Relaxed) {
        return;
    }
    // Deletion watchdog: cancel when the object is gone (or replaced by a new one of the same name).
    let watchdog = {
        let (ctx, obj, cancel) = (ctx.clone(), obj.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let gone = ctx.store.get(&ObjectRef::from_obj(&*obj)).is_none_or(|o| o.uid() != obj.uid());
                if gone {
                    cancel.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    ctx.metrics.in_flight.inc();
    let started = Instant::now();
    let limits = ctx.limits;
    let (p2, c2) = (prepared.clone(), cancel.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let mut observer = LimitObserver::new(Some(&c2), Some(limits.start()));
        let r =
            scenario::simulate(&p2.resolved, p2.trace_text.clone(), &SimOptions::default(), &mut observer);
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
    let current = latest(&ctx, &obj);
    let prev = current.status.clone().unwrap_or_default();
    let generation = obj.metadata.generation;
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let now = jiff::Timestamp::now();
    match outcome {
        Ok(o) => {
            let (status, verdict) =
                steps::status_succeeded(&prev, generation, &prepared, &o.summary, wall, now);
            if let Err(e) = apply_status(&ctx.client, &ns, &name, &status).await {
                ctx.metrics.error("ApiError");
                tracing::warn!(error = %e, "cannot write status; the next reconcile re-simulates");
                return;
            }
            tracing::info!(name, wall, slo_met = verdict.slo_met, "simulation succeeded");
            let msg = status.conditions.first().map(|c| c.message.clone()).unwrap_or_default();
            publish(
                &ctx,
                &obj,
                EventType::Normal,
                "SimulationSucceeded",
                format!("{msg} (wall {wall:.2} s)"),
            )
            .await;
            if !verdict.slo_met {
                let m = status.conditions.iter().find(|c| c.type_ == "SLOMet").map(|c| c.message.clone());
                publish(&ctx, &obj, EventType::Warning, "SLOViolated", m.unwrap_or_default()).await;
            }
        }
        Err(err) => {
            ctx.metrics.error(err.reason());
            tracing::warn!(name, reason = err.reason(), error = %err, "simulation did not produce a prediction");
            if err.is_stalled() {
                let hash = matches!(err, Error::Limit(_)).then_some(prepared.hash.as_str());
                let status = status_stalled(&prev, generation, hash, &err, now);
                if apply_status(&ctx.client, &ns, &name, &status).await.is_err() {
                    ctx.metrics.error("ApiError");
                }
                publish(
                    &ctx,
                    &obj,
                    EventType::Warning,
                    if matches!(err, Error::Invalid(_)) { "InvalidInput" } else { err.reason() },
                    err.to_string(),
                )
                .await;
            } else {
                publish(&ctx, &obj, EventType::Warning, err.reason(), err.to_string()).await;
            }
        }
    }
}

/// Requeue rule on reconcile errors: per-object exponential backoff for transient ones.
pub fn error_policy(obj: Arc<SimulationScenario>, err: &Error, ctx: Arc<Context>) -> Action {
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
