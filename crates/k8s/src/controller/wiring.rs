//! Process wiring of `blis controller`: the CRD check, leader election, one scenario and one sweep
//! controller per watched scope (with the watches that map referenced objects to scenarios), the
//! HTTP server, and shutdown on a signal or on loss of leadership.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::Semaphore;

use super::client::FIELD_MANAGER;
use super::metrics::Metrics;
use super::runs::Runs;
use super::scenario::{self, steps};
use super::{fanout, import_refs, leader, server, sweep, Options};
use crate::api::{HardwareProfile, SimulationScenario, SimulationSweep};

/// Runs the controller until a signal (or loss of leadership).
pub async fn run(opts: Options) -> anyhow::Result<()> {
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
            let ctx = Arc::new(scenario::Context {
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
