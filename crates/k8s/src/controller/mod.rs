//! `blis controller`: reconciles `SimulationScenario` objects into predictions in their status.
//!
//! A reconcile is split into the few steps that touch the API ([`fetch`], [`apply_status`], events)
//! and the pure ones in [`steps`] (validate + build, hash, decide, status mapping). Simulations run
//! off the async runtime on blocking threads, at most `--max-concurrent` at once, each with a
//! cancellation flag (a newer spec or deletion cancels it) and wall-time / request limits.

pub mod fanout;
pub mod import_refs;
pub mod leader;
pub mod metrics;
pub mod runs;
pub mod steps;
pub mod sweep;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::Semaphore;

use crate::api::{HardwareProfile, SimulationScenario, SimulationScenarioStatus, SimulationSweep};
use blis_sim::error::InvalidInput;
use blis_sim::scenario::limits::LimitObserver;
use blis_sim::scenario::{self, RunError};
use blis_sim::sim::{SimError, SimOptions};
use metrics::Metrics;
use runs::{RunGuard, Runs};
use steps::{Decision, Prepared, Referenced};

/// Field manager of the controller's server-side applies.
pub const FIELD_MANAGER: &str = "blis-controller";

/// Why a reconcile or a simulation did not produce a prediction. Each variant has a stable reason
/// (for conditions, Events and metrics) and its own requeue rule.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec (or an object it references) is wrong: waits for a change.
    #[error("{0}")]
    Invalid(InvalidInput),
    /// The run hit a limit (wall time or simulated requests): waits for a change.
    #[error("simulation limit exceeded: {0}")]
    Limit(String),
    /// The simulator failed (an internal invariant): retried slowly.
    #[error("simulation failed: {0}")]
    Simulation(String),
    /// The API server failed or was unreachable: retried with backoff.
    #[error("Kubernetes API error: {0}")]
    Api(#[from] kube::Error),
}

impl Error {
    /// Stable CamelCase reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "InvalidSpec",
            Error::Limit(_) => "SimulationLimitExceeded",
            Error::Simulation(_) => "SimulationFailed",
            Error::Api(_) => "ApiError",
        }
    }

    /// When to try again after `attempts` consecutive failures; `None`: only when the object changes.
    pub fn requeue(&self, attempts: u32) -> Option<Duration> {
        match self {
            Error::Invalid(_) | Error::Limit(_) => None,
            Error::Simulation(_) => Some(Duration::from_secs(300)),
            Error::Api(_) => Some(
                Duration::from_millis(500 * 2u64.saturating_pow(attempts.min(9)))
                    .min(Duration::from_secs(120)),
            ),
        }
    }

    /// Whether the user must change something (the object is Stalled).
    pub fn is_stalled(&self) -> bool {
        matches!(self, Error::Invalid(_) | Error::Limit(_))
    }
}

/// Limits of one simulation (and of one in-process sweep).
pub use blis_sim::scenario::limits::Limits;

/// Controller settings (the flags of `blis controller`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch only these namespaces (empty: all); each gets its own watches.
    pub namespaces: Vec<String>,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: SocketAddr,
    /// Most simulations at once.
    pub max_concurrent: usize,
    /// Take a Lease before reconciling.
    pub leader_election: bool,
    /// Namespace of the Lease.
    pub leader_election_namespace: String,
    /// This replica's identity (Lease holder, Event reporter instance).
    pub identity: String,
    /// Limits of one simulation.
    pub limits: Limits,
    /// When and how sweeps fan out to Indexed Jobs.
    pub fan_out: fanout::FanOutConfig,
}

/// Shared state of the reconciler.
pub struct Context {
    client: Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    runs: Runs,
    semaphore: Arc<Semaphore>,
    limits: Limits,
    store: Store<SimulationScenario>,
    failures: Mutex<HashMap<String, u32>>,
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

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
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

/// Writes the whole status of the `K` object `ns/name` by server-side apply (scenarios and sweeps).
pub(crate) async fn apply_status_of<K>(
    client: &Client,
    ns: &str,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// `obj` as the API server has it now (the informer cache may lag behind a status just written),
/// or `None` when it is gone or replaced by a new object of the same name.
pub(crate) async fn fresh<K>(client: &Client, obj: &K) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    Ok(api.get_opt(&obj.name_any()).await?.filter(|o| o.uid() == obj.uid()))
}

/// Publishes a Kubernetes Event about `obj`; a failure is only logged (Events are best effort).
pub(crate) async fn publish_event<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "cannot publish event");
    }
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
            let status = steps::status_stalled(&prev, generation, None, &err, jiff::Timestamp::now());
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
                let status = steps::status_stalled(&prev, generation, hash, &err, now);
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

/// Runs the controller until a signal (or loss of leadership).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(serve(opts.metrics_addr, metrics.clone(), ready.clone()));

    // One scope per watched namespace; `None` is the whole cluster.
    let scopes: Vec<Option<String>> = if opts.namespaces.is_empty() {
        vec![None]
    } else {
        opts.namespaces.iter().cloned().map(Some).collect()
    };
    for scope in &scopes {
        scoped::<SimulationScenario>(&client, scope.as_deref())
            .list(&kube::api::ListParams::default().limit(1))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot list SimulationScenarios{} (are the CRDs installed? `blis crd | kubectl apply -f -`): {e}",
                    scope.as_deref().map(|n| format!(" in {n}")).unwrap_or_default()
                )
            })?;
    }

    let lock = opts.leader_election.then(|| {
        leader::LeaderLock::new(
            Api::<Lease>::namespaced(client.clone(), &opts.leader_election_namespace),
            "blis-controller",
            &opts.identity,
            Duration::from_secs(15),
        )
    });
    ready.store(true, Ordering::Relaxed);
    if let Some(l) = &lock {
        tracing::info!(identity = opts.identity, "waiting for leadership");
        l.acquire().await;
        tracing::info!(identity = opts.identity, "leading");
    }
    metrics.leader.set(1);

    let recorder = Recorder::new(
        client.clone(),
        Reporter { controller: FIELD_MANAGER.into(), instance: Some(opts.identity.clone()) },
    );
    let semaphore = Arc::new(Semaphore::new(opts.max_concurrent.max(1)));
    let mut contexts = Vec::with_capacity(scopes.len());
    for scope in &scopes {
        let controller = scope_controller(&client, scope.as_deref()).await;
        contexts.push({
            let ctx = Arc::new(Context {
                client: client.clone(),
                recorder: recorder.clone(),
                metrics: metrics.clone(),
                runs: Runs::default(),
                semaphore: semaphore.clone(),
                limits: opts.limits,
                store: controller.store(),
                failures: Mutex::new(HashMap::new()),
            });
            (controller, ctx)
        });
    }

    let lost = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    {
        let lost = lost.clone();
        tokio::spawn(async move {
            let hold = async {
                match &lock {
                    Some(l) => {
                        l.hold().await;
                        lost.store(true, Ordering::Relaxed);
                    }
                    None => futures::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = hold => tracing::error!("lost leadership; stopping"),
                _ = shutdown_signal() => tracing::info!("signal received; stopping"),
            }
            let _ = stop_tx.send(());
        });
    }
    let shutdown = futures::FutureExt::shared(async move {
        let _ = stop_rx.await;
    });
    // Sweeps: one controller per scope, sharing the metrics and the semaphore with scenarios.
    let sweep_ctx = Arc::new(sweep::SweepContext {
        client: client.clone(),
        recorder: recorder.clone(),
        metrics: metrics.clone(),
        semaphore: semaphore.clone(),
        runs: Runs::default(),
        fan_out: opts.fan_out.clone(),
        limits: opts.limits,
    });
    let sweeps = futures::future::join_all(scopes.iter().map(|scope| {
        let any = watcher::Config::default().any_semantic();
        let shard_results = watcher::Config::default().labels(fanout::SWEEP_UID_LABEL).any_semantic();
        Controller::new(scoped::<SimulationSweep>(&client, scope.as_deref()), any.clone())
            .owns(scoped::<Job>(&client, scope.as_deref()), any)
            .owns(scoped::<ConfigMap>(&client, scope.as_deref()), shard_results)
            .with_config(ControllerConfig::default().concurrency(4).debounce(Duration::from_millis(200)))
            .graceful_shutdown_on(shutdown.clone())
            .run(sweep::reconcile, sweep::error_policy, sweep_ctx.clone())
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "sweep controller event");
                }
            })
    }));
    let scenarios = futures::future::join_all(contexts.into_iter().map(|(controller, ctx)| {
        Controller::run(controller.graceful_shutdown_on(shutdown.clone()), reconcile, error_policy, ctx)
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "controller event");
                }
            })
    }));
    futures::future::join(scenarios, sweeps).await;
    server.abort();
    if opts.leader_election && !lost.load(Ordering::Relaxed) {
        leader::LeaderLock::new(
            Api::<Lease>::namespaced(client.clone(), &opts.leader_election_namespace),
            "blis-controller",
            &opts.identity,
            Duration::from_secs(15),
        )
        .release()
        .await;
    }
    if lost.load(Ordering::Relaxed) {
        anyhow::bail!("lost leadership");
    }
    Ok(())
}

/// An API of `K` in `namespace`, or across the cluster.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The scenario controller of one scope: scenarios, the ConfigMaps and Deployments they reference
/// (same scope), the InferencePools, LeaderWorkerSets and DisaggregatedSets they reference when
/// those CRDs are served,
/// and the cluster-scoped HardwareProfiles.
async fn scope_controller(client: &Client, namespace: Option<&str>) -> Controller<SimulationScenario> {
    let any = watcher::Config::default().any_semantic();
    let controller = Controller::new(scoped::<SimulationScenario>(client, namespace), any.clone());
    let store = controller.store();
    let (s1, s2, s3) = (store.clone(), store.clone(), store.clone());
    let mut controller = controller
        .watches(scoped::<ConfigMap>(client, namespace), any.clone(), move |cm: ConfigMap| {
            let (ns, name) = (cm.namespace(), cm.name_any());
            s1.state()
                .into_iter()
                .filter(|s| {
                    s.namespace() == ns
                        && (steps::config_map_ref(&s.spec).is_some_and(|(n, _)| n == name)
                            || import_refs::concerns(&s.spec, "ConfigMap", &name))
                })
                .map(|s| ObjectRef::from_obj(&*s))
                .collect::<Vec<_>>()
        })
        .watches(Api::<HardwareProfile>::all(client.clone()), any.clone(), move |hp| {
            let name = hp.name_any();
            // An imported model server may name the GPU, so importing scenarios are checked too
            // (their inputs hash skips the run when the profile is not theirs).
            s2.state()
                .into_iter()
                .filter(|s| {
                    s.spec.import.is_some()
                        || steps::profile_gpus(&s.spec)
                            .into_iter()
                            .any(|g| steps::hardware_profile_names(g).contains(&name))
                })
                .map(|s| ObjectRef::from_obj(&*s))
                .collect::<Vec<_>>()
        })
        .watches(scoped::<Deployment>(client, namespace), any.clone(), move |d: Deployment| {
            concerned(&s3, d.namespace(), "Deployment", &d.name_any())
        });
    // The custom kinds (pools, multi-host model servers, objectives) are watched only when their
    // CRDs are installed.
    for c in import_refs::CUSTOM {
        let ar = import_refs::resource(c);
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        if api.list(&kube::api::ListParams::default().limit(1)).await.is_err() {
            tracing::info!(kind = c.2, api_version = ar.api_version, "not served; not watched");
            continue;
        }
        let (s, kind) = (store.clone(), c.2);
        controller = controller.watches_with(api, ar, any.clone(), move |o: DynamicObject| {
            concerned(&s, o.namespace(), kind, &o.name_any())
        });
    }
    controller.with_config(ControllerConfig::default().concurrency(16).debounce(Duration::from_millis(200)))
}

/// The scenarios of namespace `ns` whose imported inputs the object `kind`/`name` may change.
fn concerned(
    store: &Store<SimulationScenario>,
    ns: Option<String>,
    kind: &str,
    name: &str,
) -> Vec<ObjectRef<SimulationScenario>> {
    store
        .state()
        .into_iter()
        .filter(|s| s.namespace() == ns && import_refs::concerns(&s.spec, kind, name))
        .map(|s| ObjectRef::from_obj(&*s))
        .collect()
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return futures::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = ready.clone();
                async move {
                    if r.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        );
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
            if let Err(e) = axum::serve(l, app).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        }
        Err(e) => tracing::error!(%addr, error = %e, "cannot bind the metrics address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_reasons_and_requeue_rules() {
        let inv = Error::Invalid(InvalidInput::new("spec.replicas", "bad", "fix"));
        assert_eq!(inv.reason(), "InvalidSpec");
        assert_eq!(inv.requeue(3), None);
        assert!(inv.is_stalled());
        let lim = Error::Limit("wall".into());
        assert_eq!((lim.reason(), lim.requeue(1)), ("SimulationLimitExceeded", None));
        let api = Error::Api(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert_eq!(api.reason(), "ApiError");
        assert!(api.requeue(1).unwrap() < api.requeue(4).unwrap());
        assert_eq!(api.requeue(50), Some(Duration::from_secs(120)));
        assert!(!api.is_stalled());
        assert_eq!(Error::Simulation("x".into()).requeue(1), Some(Duration::from_secs(300)));
    }

    #[test]
    fn profile_object_names_are_dns_names() {
        assert!(is_dns_name("my-gpu") && !is_dns_name("H100-SXM-80GB"));
    }
}
