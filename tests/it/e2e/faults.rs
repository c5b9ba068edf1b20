//! End-to-end fault tests of the scenario controller against a real kube-apiserver + etcd (harness:
//! `tests/common/kube.rs`; the harness owns the processes it stops and restarts): scenarios created
//! at a steady rate through a graceful and a SIGKILL restart of kube-apiserver (with etcd's history
//! compacted meanwhile, so every watch relists), a queue of runs in one namespace beside one run in
//! another (fair permits), then 500 scenarios
//! with a kill -9 of the controller in the middle. Each step prints its recovery time.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::Api;
use serde_json::Value;

use crate::common;

use common::kube::*;

/// Creates per second while the API server restarts.
const RATE: f64 = 10.0;
/// Scenarios created through each API-server restart.
const PER_RESTART: usize = 150;
/// Longest time, from the API server's return, until every scenario is Ready.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn e2e_faults() {
    let Some(env) = Env::from_env(18480) else { return };
    let Some(cp) = env.cp.clone() else {
        panic!("BLIS_E2E_CP is not set: the fault tests restart the control plane's processes")
    };
    let t_all = Instant::now();
    env.install(&[]);
    let kube = Kube::new(&env);
    // No leader election here: an outage longer than the Lease would stop the controller, and a
    // restarted one lists everything afresh; this controller must recover through its watches.
    let mut controller = env.start_controller_with(&[]);
    wait_until("controller /readyz", Duration::from_secs(30), || {
        http_get(env.metrics_port, "/readyz").contains("ok").then_some(())
    });

    let mut figures = Vec::new();
    for (fault, ns_name) in [("graceful", "outage-term"), ("sigkill", "outage-kill")] {
        let t = step(&format!("scenarios created at {RATE}/s through a {fault} restart of kube-apiserver"));
        ns(&env, ns_name);
        let sims_before = metric(&env.metrics(), "blis_controller_simulations_total");
        let created = Arc::new(AtomicUsize::new(0));
        let creator = kube.create_steadily(ns_name, PER_RESTART, created.clone());
        wait_until("a third created", Duration::from_secs(60), || {
            (created.load(Ordering::Relaxed) >= PER_RESTART / 3).then_some(())
        });
        let down = Instant::now();
        let run = |what: &str| assert!(Command::new(&cp).arg(what).status().unwrap().success(), "{what}");
        run(if fault == "graceful" { "stop-apiserver" } else { "kill-apiserver" });
        // History compacted meanwhile (as the API server's periodic compaction does): the
        // controller's watches cannot resume where they stopped and must list again.
        run("compact-etcd");
        if fault != "graceful" {
            std::thread::sleep(Duration::from_secs(5));
        }
        run("start-apiserver");
        wait_until("API server back", Duration::from_secs(90), || {
            env.kubectl(&["get", "--raw", "/readyz"], None).status.success().then_some(())
        });
        let back = Instant::now();
        let outage = back - down;
        let retried = creator.join().expect("creator thread");
        let created_all = Instant::now();
        let ready =
            kube.wait_all_ready(ns_name, PER_RESTART, back + RECOVERY_LIMIT, &format!("{fault} restart"));
        let recovery = ready - back;
        assert!(controller.try_wait().unwrap().is_none(), "the controller exited during the outage");
        std::thread::sleep(Duration::from_secs(2));
        let sims = metric(&env.metrics(), "blis_controller_simulations_total") - sims_before;
        let recorded = kube.simulations_recorded(ns_name);
        eprintln!(
            "E2E-OUTAGE {fault}: outage {:.1}s; {PER_RESTART} created ({retried} creates retried, last {:.1}s after the return); all Ready {:.1}s after the API server returned; {sims} simulations ({recorded} recorded in status)",
            outage.as_secs_f64(),
            created_all.saturating_duration_since(back).as_secs_f64(),
            recovery.as_secs_f64(),
        );
        assert_eq!(recorded, PER_RESTART as i64, "each scenario's status records exactly one simulation");
        figures.push((fault, outage, recovery));
        eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());
    }

    let t = step("a namespace with a queue of long runs does not hold back another namespace's run");
    ns(&env, "busy");
    ns(&env, "quiet");
    // Long enough (840,000 requests: about 0.6 s each on this machine) that the queue takes seconds
    // to drain at --max-concurrent 2, whatever polling costs: at 1,200 s each took 0.1 s once the
    // simulator got faster, and the queue could drain before it was seen.
    let busy: String =
        (0..30).map(|i| format!("---\n{}", scenario(&format!("b{i:02}"), 4, 7000, 120.0, ""))).collect();
    env.apply("busy", &busy);
    wait_until("busy runs queued", Duration::from_secs(30), || {
        let running = metric(&env.metrics(), "blis_controller_simulations_in_flight") >= 2.0;
        (running
            && kube.list("busy").iter().filter(|o| cond_status(o, "Reconciling") == "True").count() >= 20)
            .then_some(())
    });
    let applied = Instant::now();
    env.apply("quiet", &scenario("q", 4, 1200, 120.0, ""));
    let (waited, busy_left) = wait_until("quiet Ready", Duration::from_secs(60), || {
        let q = kube.list("quiet");
        let left = kube.list("busy").iter().filter(|o| !is_ready(o)).count();
        q.first().is_some_and(is_ready).then(|| (applied.elapsed(), left))
    });
    eprintln!(
        "E2E-FAIR: the quiet namespace's run Ready {:.1}s after its apply, with {busy_left} of 30 busy runs still queued or running",
        waited.as_secs_f64()
    );
    assert!(busy_left >= 10, "the quiet run waited for the busy queue ({busy_left} left)");
    kube.wait_all_ready("busy", 30, Instant::now() + Duration::from_secs(120), "busy");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("500 scenarios, the controller killed (SIGKILL) in the middle");
    ns(&env, "fleet");
    let sims_before = metric(&env.metrics(), "blis_controller_simulations_total");
    let many: String = (0..500)
        .map(|i| format!("---\n{}", scenario(&format!("f{i:03}"), 1 + i % 3, 30, 4.0 + f64::from(i % 5), "")))
        .collect();
    let applying = {
        let env_kubeconfig = env.kubeconfig.clone();
        let kubectl = env.kubectl.clone();
        std::thread::spawn(move || {
            let mut child = Command::new(kubectl)
                .args(["--kubeconfig"])
                .arg(env_kubeconfig)
                .args(["apply", "-n", "fleet", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(many.as_bytes()).unwrap();
            child.wait().unwrap()
        })
    };
    let sims_at_kill = wait_until("250 simulated", Duration::from_secs(300), || {
        let n = metric(&env.metrics(), "blis_controller_simulations_total") - sims_before;
        (n >= 250.0).then_some(n)
    });
    controller.kill().unwrap();
    controller.wait().unwrap();
    let restarted = Instant::now();
    let controller = env.start_controller_with(&[]);
    assert!(applying.join().unwrap().success(), "kubectl apply of 500 scenarios failed");
    let ready = kube.wait_all_ready("fleet", 500, restarted + Duration::from_secs(30), "500 after the kill");
    let fleet_recovery = ready - restarted;
    std::thread::sleep(Duration::from_secs(2));
    let sims_after = metric(&env.metrics(), "blis_controller_simulations_total");
    let recorded = kube.simulations_recorded("fleet");
    let stored: usize =
        ["outage-term", "outage-kill", "busy", "quiet", "fleet"].iter().map(|n| kube.list(n).len()).sum();
    let peak_mib = vm_hwm_kb(controller.id()) as f64 / 1024.0;
    eprintln!(
        "E2E-500-KILL: killed after {sims_at_kill} simulations; all 500 Ready {:.1}s after the restart; simulations {} before + {} after the kill (metrics), {recorded} recorded in status; the restarted controller's peak RSS {peak_mib:.1} MiB with {stored} scenarios stored",
        fleet_recovery.as_secs_f64(),
        sims_at_kill,
        sims_after,
    );
    assert_eq!(recorded, 500, "each of the 500 scenarios simulated exactly once");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());
    env.stop_controller(controller);

    for (fault, outage, recovery) in figures {
        eprintln!(
            "recovery: {fault} restart (outage {:.1}s): {:.1}s",
            outage.as_secs_f64(),
            recovery.as_secs_f64()
        );
    }
    eprintln!("recovery: 500 scenarios after a controller SIGKILL: {:.1}s", fleet_recovery.as_secs_f64());
    eprintln!("\ne2e-faults: all steps passed in {:.1}s", t_all.elapsed().as_secs_f64());
}

/// An API client of the admin kubeconfig with short timeouts (a request in flight when the API
/// server dies fails soon and is retried), on its own runtime.
struct Kube {
    rt: tokio::runtime::Runtime,
    client: kube::Client,
}

impl Kube {
    fn new(env: &Env) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let client = rt.block_on(async {
            let kc = kube::config::Kubeconfig::read_from(&env.kubeconfig).unwrap();
            let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
            cfg.connect_timeout = Some(Duration::from_secs(2));
            cfg.read_timeout = Some(Duration::from_secs(10));
            cfg.write_timeout = Some(Duration::from_secs(5));
            kube::Client::try_from(cfg).unwrap()
        });
        Self { rt, client }
    }

    fn api(&self, ns: &str) -> Api<DynamicObject> {
        let ar = ApiResource::erase::<blis_k8s::api::SimulationScenario>(&());
        Api::namespaced_with(self.client.clone(), ns, &ar)
    }

    /// Creates `n` scenarios in `ns` at [`RATE`] per second on a thread, each retried until the API
    /// server has it (as a user would); `created` counts them. The thread returns the retries.
    fn create_steadily(
        &self,
        ns: &str,
        n: usize,
        created: Arc<AtomicUsize>,
    ) -> std::thread::JoinHandle<usize> {
        let (api, handle) = (self.api(ns), self.rt.handle().clone());
        std::thread::spawn(move || {
            handle.block_on(async move {
                let start = tokio::time::Instant::now();
                let mut retried = 0;
                for i in 0..n {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / RATE)).await;
                    let obj: DynamicObject =
                        serde_yaml::from_str(&scenario(&format!("s{i:03}"), 1, 10, 2.0, "")).unwrap();
                    loop {
                        match api.create(&PostParams::default(), &obj).await {
                            Ok(_) => break,
                            // An earlier attempt was stored but its answer lost.
                            Err(kube::Error::Api(e)) if e.code == 409 => break,
                            Err(_) => {
                                retried += 1;
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    }
                    created.fetch_add(1, Ordering::Relaxed);
                }
                retried
            })
        })
    }

    /// The scenarios of `ns` as JSON (empty while the API server cannot answer).
    fn list(&self, ns: &str) -> Vec<Value> {
        let api = self.api(ns);
        self.rt
            .block_on(api.list(&ListParams::default()))
            .map(|l| l.items.into_iter().map(|o| serde_json::to_value(o).unwrap()).collect())
            .unwrap_or_default()
    }

    /// Waits until the `n` scenarios of `ns` are all Ready; fails at `deadline` naming those that
    /// are not (and what their status says). Returns when they were.
    fn wait_all_ready(&self, ns: &str, n: usize, deadline: Instant, what: &str) -> Instant {
        loop {
            let items = self.list(ns);
            let not_ready: Vec<&Value> = items.iter().filter(|o| !is_ready(o)).collect();
            if items.len() == n && not_ready.is_empty() {
                return Instant::now();
            }
            if Instant::now() > deadline {
                let mut by_state: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for o in &not_ready {
                    let state = cond(o, "Reconciling")
                        .map(|c| format!("{}/{}", c["status"], c["reason"]))
                        .unwrap_or_else(|| "no status".into());
                    by_state
                        .entry(state)
                        .or_default()
                        .push(o["metadata"]["name"].as_str().unwrap_or("").into());
                }
                panic!(
                    "{what}: {} of {n} listed, {} not Ready at the deadline: {by_state:?}",
                    items.len(),
                    not_ready.len()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The sum of `status.simulations` over the scenarios of `ns`.
    fn simulations_recorded(&self, ns: &str) -> i64 {
        self.list(ns).iter().map(simulations).sum()
    }
}
