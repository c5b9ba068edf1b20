//! The sweep reconciler's steps that touch the API or the runtime: status and Events, the in-process
//! run on a blocking thread under the controller's fair permits (shared with scenarios), and the
//! fanned-out run as an Indexed Job ([`crate::controller::fanout`]) whose shard results are merged
//! here. Every decision is made by the pure [`super::steps`].

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};

use super::steps::{decide, inputs_hash, status_ranked, status_running, PreparedSweep};
use crate::api::{SimulationSweep, SimulationSweepSpec, SimulationSweepStatus, SweepFanOutStatus};
use crate::controller::client::{apply_status_of, fresh, publish_event, retry_transient};
use crate::controller::fair::FairPermits;
use crate::controller::fanout::{self, FanOutConfig};
use crate::controller::metrics::Metrics;
use crate::controller::runs::{cancel_when_gone, RunGuard, Runs};
use crate::controller::status::status_stalled;
use crate::controller::watched::Watched;
use crate::controller::{Error, Limits};
use blis_plan::sweep::{self, shard, SweepReport};
use blis_sim::error::InvalidInput;

/// Shared state of the sweep reconciler.
pub struct SweepContext {
    /// API client.
    pub client: Client,
    /// Event recorder.
    pub recorder: Recorder,
    /// Controller metrics (shared with the scenario reconciler).
    pub metrics: Arc<Metrics>,
    /// Concurrency limit (shared with the scenario reconciler).
    pub permits: Arc<FairPermits>,
    /// The run in flight, per sweep uid.
    pub runs: Arc<Runs>,
    /// When and how sweeps fan out to Indexed Jobs.
    pub fan_out: FanOutConfig,
    /// Limits of an in-process sweep: wall time of the whole sweep, simulated requests per candidate.
    pub limits: Limits,
}

/// Step that touches the API: writes the whole status by server-side apply.
pub async fn apply_status(
    client: &Client,
    ns: &str,
    name: &str,
    status: &SimulationSweepStatus,
) -> Result<(), kube::Error> {
    apply_status_of::<SimulationSweep, _>(client, ns, name, status).await.map(drop)
}

/// Writes a finished in-process run's status (ranked or stalled), waiting out an API outage while
/// the run is still current ([`retry_transient`]): the run is not lost, nor run again. A refusal
/// (gone, invalid, an undecodable answer) is returned at once.
async fn write_result(
    client: &Client,
    ns: &str,
    name: &str,
    status: &SimulationSweepStatus,
    still_current: impl Fn() -> bool,
) -> Result<(), kube::Error> {
    retry_transient("sweep result", still_current, || apply_status(client, ns, name, status)).await
}

async fn publish(
    ctx: &SweepContext,
    obj: &impl Resource<DynamicType = ()>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    publish_event(&ctx.recorder, obj, type_, reason, "Sweep", note).await;
}

/// Reconciles one sweep: parse, validate + plan, hash, skip, or start its run (here or as a Job).
#[tracing::instrument(skip(watched, ctx), fields(ns = watched.namespace().unwrap_or_default(), name = watched.name_any()))]
pub async fn reconcile(
    watched: Arc<Watched<SimulationSweep>>,
    ctx: Arc<SweepContext>,
) -> Result<Action, Error> {
    ctx.metrics.reconciles.inc();
    let (ns, name, uid) =
        (watched.namespace().unwrap_or_default(), watched.name_any(), watched.uid().unwrap_or_default());
    let generation = watched.metadata.generation;
    let status: Option<SimulationSweepStatus> = watched.status();
    let prev = status.clone().unwrap_or_default();
    let spec = match watched.spec::<SimulationSweepSpec>() {
        Ok(s) => s,
        Err(e) => {
            ctx.runs.cancel(&uid);
            stall(&ctx, &*watched, &prev, Error::Invalid(e)).await?;
            return Ok(Action::await_change());
        }
    };
    let obj = Arc::new(SimulationSweep { metadata: watched.metadata.clone(), spec, status });
    let planned = super::steps::prepare(&obj.spec).and_then(|p| {
        let shards = fanout::shards_for(&obj.spec, p.candidates.len(), &ctx.fan_out)?;
        Ok((p, shards))
    });
    let (prepared, shards) = match planned {
        Ok(p) => p,
        Err(e) => {
            ctx.runs.cancel(&uid);
            stall(&ctx, &*obj, &prev, Error::Invalid(e)).await?;
            return Ok(Action::await_change());
        }
    };
    if decide(obj.status.as_ref(), generation, &prepared.hash) {
        ctx.metrics.skipped.inc();
        return Ok(Action::await_change());
    }
    if let Some(shards) = shards {
        ctx.runs.cancel(&uid);
        return fan_out(&ctx, &obj, &prepared, shards).await;
    }
    if ctx.runs.running(&uid, &prepared.hash) {
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    // The cache may lag behind a ranking just written: confirm against the API server.
    let Some(fresh) = fresh::<SimulationSweep>(&ctx.client, &*obj).await? else {
        return Ok(Action::await_change());
    };
    let fresh_status: Option<SimulationSweepStatus> = fresh.status();
    if decide(fresh_status.as_ref(), fresh.metadata.generation, &prepared.hash) {
        return Ok(Action::await_change());
    }
    let prev = fresh_status.unwrap_or_default();
    // A Job of an earlier fanned-out spec is no longer needed.
    fanout::clean_up(&ctx.client, &ns, &name, &uid).await?;
    let cancel = ctx.runs.start(&uid, &prepared.hash);
    // Running is written before the run starts, so it cannot overwrite the run's ranking.
    let msg = format!("simulating {} candidates", prepared.candidates.len());
    let status = status_running(&prev, generation, "Simulating", &msg, None, jiff::Timestamp::now());
    if status != prev {
        if let Err(e) = apply_status(&ctx.client, &ns, &name, &status).await {
            ctx.runs.cancel(&uid);
            return Err(e.into());
        }
    }
    let (ctx2, obj2) = (ctx.clone(), obj.clone());
    tokio::spawn(async move { run_sweep(ctx2, obj2, prepared, cancel).await });
    publish(&ctx, &*obj, EventType::Normal, "SweepStarted", msg).await;
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// Writes a Stalled status for `err` (keeping the ranking) and warns with an Event, once.
async fn stall(
    ctx: &SweepContext,
    obj: &impl Resource<DynamicType = ()>,
    prev: &SimulationSweepStatus,
    err: Error,
) -> Result<(), Error> {
    ctx.metrics.error(err.reason());
    let status = status_stalled(prev, obj.meta().generation, None, &err, jiff::Timestamp::now());
    if &status != prev {
        apply_status(&ctx.client, &obj.namespace().unwrap_or_default(), &obj.name_any(), &status).await?;
        let reason = if matches!(err, Error::Invalid(_)) { "InvalidInput" } else { err.reason() };
        publish(ctx, obj, EventType::Warning, reason, err.to_string()).await;
    }
    Ok(())
}

/// The fanned-out run: make sure the Job for this spec exists, read the shard results written so
/// far, and once every shard is in, merge them into the ranking and delete the Job and ConfigMaps.
async fn fan_out(
    ctx: &SweepContext,
    obj: &SimulationSweep,
    prepared: &PreparedSweep,
    shards: u32,
) -> Result<Action, Error> {
    let (ns, name, uid) =
        (obj.namespace().unwrap_or_default(), obj.name_any(), obj.uid().unwrap_or_default());
    let generation = obj.metadata.generation;
    let prev = obj.status.clone().unwrap_or_default();
    let spec_hash = shard::spec_hash(&obj.spec);
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &ns);
    let job_name = fanout::job_name(&name);
    let current = match jobs.get_opt(&job_name).await? {
        Some(j)
            if fanout::job_spec_hash(&j) == Some(spec_hash.as_str())
                && j.labels().get(fanout::SWEEP_UID_LABEL) == Some(&uid) =>
        {
            Some(j)
        }
        Some(_) => {
            // A Job of an older spec (or an older sweep of this name): replace it.
            fanout::clean_up(&ctx.client, &ns, &name, &uid).await?;
            if let Some(j) = jobs.get_opt(&job_name).await? {
                if j.labels().get(fanout::SWEEP_UID_LABEL) != Some(&uid) {
                    let msg = format!("Job {job_name} exists and does not belong to this sweep");
                    let err = Error::Invalid(InvalidInput::new(
                        "metadata.name",
                        msg,
                        "delete that Job or rename the sweep",
                    ));
                    stall(ctx, obj, &prev, err).await?;
                    return Ok(Action::await_change());
                }
                return Ok(Action::requeue(Duration::from_secs(2)));
            }
            None
        }
        None => None,
    };
    let job = match current {
        Some(j) => j,
        None => {
            // The cache may lag behind a ranking just written (whose clean-up removed the Job).
            match fresh::<SimulationSweep>(&ctx.client, obj).await? {
                Some(f) if !decide(f.status().as_ref(), f.metadata.generation, &prepared.hash) => {}
                _ => return Ok(Action::await_change()),
            }
            let job = fanout::build_job(obj, shards, &spec_hash, &ctx.fan_out);
            let created = match jobs.create(&PostParams::default(), &job).await {
                Ok(j) => j,
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Ok(Action::requeue(Duration::from_secs(2)))
                }
                Err(e) => return Err(e.into()),
            };
            let note = format!("{} candidates in {shards} shards: Job {job_name}", prepared.candidates.len());
            publish(ctx, obj, EventType::Normal, "SweepFannedOut", note).await;
            created
        }
    };
    let cms = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    let found = cms.list(&fanout::shard_selector(&uid)).await?.items;
    let docs = fanout::collect(&found, &spec_hash, shards, prepared.candidates.len());
    let progress = SweepFanOutStatus {
        job: job_name.clone(),
        shards,
        collected: u32::try_from(docs.len()).unwrap_or(u32::MAX),
    };
    let now = jiff::Timestamp::now();
    if docs.len() == shards as usize {
        let results = match shard::merge(&docs, &spec_hash, prepared.candidates.len()) {
            Ok(r) => r,
            Err(e) => {
                stall(ctx, obj, &prev, Error::Invalid(e)).await?;
                return Ok(Action::await_change());
            }
        };
        let report = SweepReport::new(&name, &obj.spec, &results);
        let started = job.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let wall = started.map_or(0.0, |t| now.duration_since(t).as_secs_f64().max(0.0));
        let mut status = status_ranked(&prev, generation, &prepared.hash, &report, wall, now);
        status.fan_out = Some(progress);
        apply_status(&ctx.client, &ns, &name, &status).await?;
        ctx.metrics.simulations.inc();
        let msg = status.conditions.first().map(|c| c.message.clone()).unwrap_or_default();
        tracing::info!(name, shards, wall, "fanned-out sweep merged and ranked");
        publish(ctx, obj, EventType::Normal, "SweepRanked", format!("{msg} ({shards} shards merged)")).await;
        fanout::clean_up(&ctx.client, &ns, &name, &uid).await?;
        return Ok(Action::await_change());
    }
    if let Some(why) = fanout::job_failure(&job) {
        let err = Error::Simulation(format!(
            "shard Job {job_name} failed ({why}); {} of {shards} shards reported",
            docs.len()
        ));
        stall(ctx, obj, &prev, err).await?;
        return Ok(Action::await_change());
    }
    let msg = format!(
        "{} candidates fanned out to {shards} shards (Job {job_name}): {} of {shards} results in",
        prepared.candidates.len(),
        docs.len()
    );
    let status = status_running(&prev, generation, "FanOut", &msg, Some(progress), now);
    if status != prev {
        apply_status(&ctx.client, &ns, &name, &status).await?;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

async fn run_sweep(
    ctx: Arc<SweepContext>,
    obj: Arc<SimulationSweep>,
    prepared: PreparedSweep,
    cancel: Arc<AtomicBool>,
) {
    let (ns, name, uid) =
        (obj.namespace().unwrap_or_default(), obj.name_any(), obj.uid().unwrap_or_default());
    // Registered until the result is written, so a reconcile on a lagging cache does not rerun it.
    let _registered = RunGuard::new(&ctx.runs, &uid, &cancel);
    let _permit = ctx.permits.acquire(&ns).await;
    // Backstop for a delete the watch missed: cancel when the sweep is gone (or replaced).
    let watchdog = {
        let api = Api::<Watched<SimulationSweep>>::namespaced(ctx.client.clone(), &ns);
        let (name, uid) = (name.clone(), obj.uid());
        cancel_when_gone(Duration::from_secs(2), cancel.clone(), move || {
            let (api, name, uid) = (api.clone(), name.clone(), uid.clone());
            async move { api.get_opt(&name).await.is_ok_and(|found| found.is_none_or(|o| o.uid() != uid)) }
        })
    };
    ctx.metrics.in_flight.inc();
    let started = Instant::now();
    let (spec, candidates, sweep_name) = (obj.spec.clone(), prepared.candidates.clone(), name.clone());
    let control = sweep::eval::RunControl::limited(cancel.clone(), Some(ctx.limits.start()));
    let batch = control.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let threads = sweep::eval::threads(None, spec.max_parallel);
        sweep::run(&spec, &candidates, None, None, threads, &control)
            .map(|results| SweepReport::new(&sweep_name, &spec, &results))
    })
    .await;
    watchdog.abort();
    let wall = started.elapsed().as_secs_f64();
    ctx.metrics.in_flight.dec();
    ctx.metrics.simulation_duration.observe(wall);
    if !ctx.runs.is_current(&uid, &cancel) {
        ctx.metrics.cancelled.inc();
        tracing::info!(name, wall, "sweep cancelled");
        return;
    }
    ctx.metrics.simulations.inc();
    // The run is for the spec it started with; a newer spec has started (or will start) its own.
    // An API outage is waited out (bounded), as for a scenario's result: the run is not lost.
    let still_current = || ctx.runs.is_current(&uid, &cancel);
    let current = match retry_transient("sweep", still_current, || {
        fresh::<SimulationSweep>(&ctx.client, &*obj)
    })
    .await
    {
        Ok(Some(c)) if c.spec::<SimulationSweepSpec>().is_ok_and(|s| inputs_hash(&s) == prepared.hash) => c,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the sweep after its run");
            return;
        }
    };
    let prev: SimulationSweepStatus = current.status().unwrap_or_default();
    let generation = current.metadata.generation;
    let now = jiff::Timestamp::now();
    let outcome = match (batch.exceeded(), joined) {
        (Some(why), _) => Err(Error::Limit(why)),
        (None, Ok(Ok(report))) => Ok(report),
        (None, Ok(Err(e))) => Err(Error::Invalid(e)),
        (None, Err(e)) => Err(Error::Simulation(format!("sweep thread failed: {e}"))),
    };
    match outcome {
        Ok(report) => {
            let status = status_ranked(&prev, generation, &prepared.hash, &report, wall, now);
            if let Err(e) = write_result(&ctx.client, &ns, &name, &status, still_current).await {
                ctx.metrics.error("ApiError");
                tracing::warn!(error = %e, "cannot write sweep status");
                return;
            }
            let msg = status.conditions.first().map(|c| c.message.clone()).unwrap_or_default();
            tracing::info!(name, wall, "sweep ranked");
            publish(&ctx, &current, EventType::Normal, "SweepRanked", format!("{msg} (wall {wall:.2} s)"))
                .await;
        }
        Err(err) => {
            ctx.metrics.error(err.reason());
            // Every outcome records its inputs hash: the same inputs are not run again.
            let status = status_stalled(&prev, generation, Some(prepared.hash.as_str()), &err, now);
            if write_result(&ctx.client, &ns, &name, &status, still_current).await.is_err() {
                ctx.metrics.error("ApiError");
            }
            publish(&ctx, &current, EventType::Warning, err.reason(), err.to_string()).await;
        }
    }
}

/// Requeue rule on reconcile errors (API errors back off; invalid specs wait for a change).
pub fn error_policy(obj: Arc<Watched<SimulationSweep>>, err: &Error, ctx: Arc<SweepContext>) -> Action {
    ctx.metrics.error(err.reason());
    tracing::warn!(name = obj.name_any(), reason = err.reason(), error = %err, "sweep reconcile failed");
    match err.requeue(1) {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    /// How the fake API server answers one request.
    enum Answer {
        /// The connection is refused (the server is down).
        Refused,
        /// An API status answer with this code.
        Status(u16),
        /// 200 with the request's object echoed back (the write is stored).
        Stored,
        /// 200 with a body that is not JSON.
        Garbage,
    }

    /// A client whose API server answers each request with the next scripted answer (the last one
    /// repeats), and the bodies of the requests it received.
    fn scripted(answers: Vec<Answer>) -> (Client, Arc<Mutex<Vec<serde_json::Value>>>) {
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let (answers, log) = (answers.clone(), log.clone());
            async move {
                let body = req.into_body().collect_bytes().await.expect("request body");
                let sent: serde_json::Value = serde_json::from_slice(&body).expect("JSON request");
                log.lock().unwrap().push(sent.clone());
                let answer = {
                    let mut a = answers.lock().unwrap();
                    if a.len() > 1 {
                        a.pop_front().unwrap()
                    } else {
                        a.front().map(clone_answer).unwrap()
                    }
                };
                let (code, body) = match answer {
                    Answer::Refused => {
                        let e =
                            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
                        return Err::<http::Response<kube::client::Body>, _>(e);
                    }
                    Answer::Status(code) => {
                        let status = kube::core::Status::failure("scripted", "Scripted").with_code(code);
                        (code, serde_json::to_vec(&status).unwrap())
                    }
                    Answer::Stored => {
                        let mut obj = sent;
                        obj["metadata"] = serde_json::json!({"name": "s", "namespace": "ns", "uid": "u1"});
                        (200, serde_json::to_vec(&obj).unwrap())
                    }
                    Answer::Garbage => (200, b"<html>proxy error</html>".to_vec()),
                };
                Ok(http::Response::builder().status(code).body(kube::client::Body::from(body)).unwrap())
            }
        });
        (Client::new(svc, "ns"), seen)
    }

    fn clone_answer(a: &Answer) -> Answer {
        match a {
            Answer::Refused => Answer::Refused,
            Answer::Status(c) => Answer::Status(*c),
            Answer::Stored => Answer::Stored,
            Answer::Garbage => Answer::Garbage,
        }
    }

    fn ranked_status() -> SimulationSweepStatus {
        SimulationSweepStatus { observed_generation: Some(3), ..Default::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_result_is_written_through_an_api_outage() {
        let script =
            vec![Answer::Refused, Answer::Refused, Answer::Status(503), Answer::Status(429), Answer::Stored];
        let (client, seen) = scripted(script);
        let status = ranked_status();
        write_result(&client, "ns", "s", &status, || true).await.expect("written once the server is back");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 5, "four failed attempts, then the stored one");
        // Every attempt sent the same whole status: the result of the one run, not a new run.
        for sent in seen.iter() {
            assert_eq!(sent["status"], serde_json::to_value(&status).unwrap());
            assert_eq!(sent["kind"], "SimulationSweep");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_or_undecodable_answer_is_not_repeated() {
        for (answer, what) in
            [(Answer::Status(422), "422"), (Answer::Status(409), "409"), (Answer::Garbage, "decode")]
        {
            let (client, seen) = scripted(vec![answer]);
            let err = write_result(&client, "ns", "s", &ranked_status(), || true).await.unwrap_err();
            assert!(!crate::controller::client::transient(&err), "{what}: {err}");
            assert_eq!(seen.lock().unwrap().len(), 1, "{what}: one attempt only");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_superseded_run_stops_waiting_for_the_server() {
        let (client, seen) = scripted(vec![Answer::Refused]);
        let err = write_result(&client, "ns", "s", &ranked_status(), || false).await.unwrap_err();
        assert!(matches!(err, kube::Error::Service(_)), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
