//! Process wiring of `blis controller`: the CRD check, leader election, one scenario and one sweep
//! controller per watched scope (with the watches that map referenced objects to scenarios), the
//! HTTP server, and shutdown on a signal or on loss of leadership.
//!
//! The controller's own kinds are watched as [`Watched`] objects (raw spec and status), so one
//! object the API server accepted but the controller cannot parse is that object's `Stalled`
//! status, not a failed list for everyone. Each watch recovers on its own after an outage, and a
//! relist reconciles every object from the complete cache ([`triggers`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use super::client::FIELD_MANAGER;
use super::fair::FairPermits;
use super::metrics::Metrics;
use super::ref_index::RefIndex;
use super::runs::Runs;
use super::status::Written;
use super::watched::Watched;
use super::{fanout, import_refs, leader, scenario, server, sweep, triggers, Options};
use crate::api::{HardwareProfile, SimulationScenario, SimulationSweep};

/// How long a stopping controller waits for its reconciles and watches before it exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs the controller until a signal (or loss of leadership).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    // A signal stops the process at every stage, also while the API server cannot be reached.
    let (signal_tx, signal_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("signal received; stopping");
        let _ = signal_tx.send(true);
    });
    let signalled = move || {
        let mut rx = signal_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(server::serve(opts.metrics_addr, metrics.clone(), ready.clone()));

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
        tokio::select! {
            _ = l.acquire() => tracing::info!(identity = opts.identity, "leading"),
            _ = signalled() => {
                server.abort();
                return Ok(());
            }
        }
    }
    metrics.leader.set(1);

    let recorder = Recorder::new(
        client.clone(),
        Reporter { controller: FIELD_MANAGER.into(), instance: Some(opts.identity.clone()) },
    );
    // Simulations run at most --max-concurrent at once, granted round-robin across namespaces.
    let permits = FairPermits::new(opts.max_concurrent);
    let mut contexts = Vec::with_capacity(scopes.len());
    for scope in &scopes {
        let refs = Arc::new(RefIndex::default());
        let runs = Arc::new(Runs::default());
        let controller = scope_controller(&client, scope.as_deref(), &refs, &runs).await;
        contexts.push({
            let ctx = Arc::new(scenario::Context {
                client: client.clone(),
                recorder: recorder.clone(),
                metrics: metrics.clone(),
                runs,
                permits: permits.clone(),
                limits: opts.limits,
                store: controller.store(),
                failures: Mutex::new(HashMap::new()),
                refs,
                written: Written::default(),
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
                _ = signalled() => {}
            }
            let _ = stop_tx.send(());
        });
    }
    let shutdown = futures::FutureExt::shared(async move {
        let _ = stop_rx.await;
    });
    // Sweeps: one controller per scope, sharing the metrics and the permits with scenarios.
    let sweep_runs = Arc::new(Runs::default());
    let sweep_ctx = Arc::new(sweep::SweepContext {
        client: client.clone(),
        recorder: recorder.clone(),
        metrics: metrics.clone(),
        permits: permits.clone(),
        runs: sweep_runs.clone(),
        fan_out: opts.fan_out.clone(),
        limits: opts.limits,
    });
    let sweeps = futures::future::join_all(scopes.iter().map(|scope| {
        let any = watcher::Config::default().any_semantic();
        let shard_results = watcher::Config::default().labels(fanout::SWEEP_UID_LABEL).any_semantic();
        let (store, writer) = reflector::store();
        let sweeps = scoped::<Watched<SimulationSweep>>(&client, scope.as_deref());
        let runs = sweep_runs.clone();
        let on_delete = move |o: &Watched<SimulationSweep>| runs.cancel(&o.uid().unwrap_or_default());
        Controller::for_stream(triggers::cached(sweeps, any.clone(), writer, on_delete), store)
            .owns_stream(triggers::touched(scoped::<Job>(&client, scope.as_deref()), any))
            .owns_stream(triggers::touched(scoped::<ConfigMap>(&client, scope.as_deref()), shard_results))
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
        Controller::run(
            controller.graceful_shutdown_on(shutdown.clone()),
            scenario::reconcile,
            scenario::error_policy,
            ctx,
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
        })
    }));
    let both = futures::future::join(scenarios, sweeps);
    let deadline = async {
        shutdown.clone().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::warn!("reconciles or watches still running {SHUTDOWN_GRACE:?} after the stop; exiting");
    };
    tokio::select! {
        _ = both => {}
        _ = deadline => {}
    }
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
/// those CRDs are served, and the cluster-scoped HardwareProfiles; `refs` maps a change of a
/// referenced object to the scenarios it concerns.
async fn scope_controller(
    client: &Client,
    namespace: Option<&str>,
    refs: &Arc<RefIndex>,
    runs: &Arc<Runs>,
) -> Controller<Watched<SimulationScenario>> {
    let any = watcher::Config::default().any_semantic();
    let (store, writer) = reflector::store();
    let scenarios = scoped::<Watched<SimulationScenario>>(client, namespace);
    let runs = runs.clone();
    let on_delete = move |o: &Watched<SimulationScenario>| runs.cancel(&o.uid().unwrap_or_default());
    let controller =
        Controller::for_stream(triggers::cached(scenarios, any.clone(), writer, on_delete), store.clone());
    let (s1, s2, s3) = (store.clone(), store.clone(), store.clone());
    let (r1, r2, r3) = (refs.clone(), refs.clone(), refs.clone());
    let profiles = Api::<Watched<HardwareProfile>>::all(client.clone());
    let mut controller = controller
        .watches_stream(
            triggers::touched(scoped::<ConfigMap>(client, namespace), any.clone()),
            move |cm: ConfigMap| r1.config_map(&s1, cm.namespace(), &cm.name_any()),
        )
        .watches_stream(triggers::touched(profiles, any.clone()), move |hp: Watched<HardwareProfile>| {
            r2.hardware_profile(&s2, &hp.name_any())
        })
        .watches_stream(
            triggers::touched(scoped::<Deployment>(client, namespace), any.clone()),
            move |d: Deployment| r3.imported(&s3, d.namespace(), "Deployment", &d.name_any()),
        );
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
        let (s, r, kind) = (store.clone(), refs.clone(), c.2);
        let touched = triggers::touched_dynamic(api, any.clone(), kind);
        controller = controller.watches_stream_with(
            touched,
            move |o: DynamicObject| r.imported(&s, o.namespace(), kind, &o.name_any()),
            ar,
        );
    }
    controller.with_config(ControllerConfig::default().concurrency(16).debounce(Duration::from_millis(200)))
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
