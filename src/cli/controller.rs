//! `blis controller`: run the Kubernetes controller.

use std::process::ExitCode;
use std::time::Duration;

use super::{failed, runtime, CliError};
use blis_k8s::controller::{fanout::FanOutConfig, Limits, Options};
use blis_sim::error::InvalidInput;

#[derive(clap::Args)]
pub struct Args {
    /// Watch only this namespace (default: all); repeat it or separate names by commas for several.
    #[arg(long, value_delimiter = ',')]
    namespace: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Most simulations running at once.
    #[arg(long, default_value_t = 2)]
    max_concurrent: usize,
    /// Take the `blis-controller` Lease before reconciling, so several replicas can run.
    #[arg(long)]
    leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, default_value = "default", env = "POD_NAMESPACE")]
    leader_election_namespace: String,
    /// Identity of this replica (default: hostname and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Wall-time limit of one simulation (or of one sweep run inside the controller), in seconds.
    #[arg(long, default_value_t = 300.0)]
    max_wall_seconds: f64,
    /// Limit on simulated requests of one simulation (of each candidate, in a sweep).
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Limit on the estimated memory of one simulation, in MiB, checked before it starts; with
    /// --max-concurrent it bounds the controller's memory (the chart matches its memory limit).
    #[arg(long, default_value_t = 384)]
    max_memory_mib: u64,
    /// Image of the pods a large sweep fans out to (the controller's own); without it every sweep
    /// runs inside the controller.
    #[arg(long)]
    sweep_image: Option<String>,
    /// ServiceAccount of those pods, in the sweep's namespace (may read SimulationSweeps and write
    /// ConfigMaps).
    #[arg(long, default_value = "blis-sweep-worker")]
    sweep_service_account: String,
    /// Sweeps of at least this many candidates fan out (unless their spec.fanOut.mode is Never).
    #[arg(long, default_value_t = 2000)]
    sweep_fan_out_threshold: usize,
    /// Shards of a fanned-out sweep whose spec.fanOut.shards is unset.
    #[arg(long, default_value_t = 4)]
    sweep_shards: u32,
}

pub fn exec(a: Args) -> Result<ExitCode, CliError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let identity = a.identity.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    if !(a.max_wall_seconds.is_finite() && a.max_wall_seconds > 0.0) {
        return Err(
            InvalidInput::new("--max-wall-seconds", "must be positive", "give a number of seconds").into()
        );
    }
    let opts = Options {
        namespaces: a.namespace,
        metrics_addr: a.metrics_addr,
        max_concurrent: a.max_concurrent,
        leader_election: a.leader_election,
        leader_election_namespace: a.leader_election_namespace,
        identity,
        limits: Limits {
            wall: Duration::from_secs_f64(a.max_wall_seconds),
            max_requests: a.max_requests,
            max_memory_mib: a.max_memory_mib,
        },
        fan_out: FanOutConfig {
            image: a.sweep_image,
            service_account: a.sweep_service_account,
            threshold: a.sweep_fan_out_threshold,
            default_shards: a.sweep_shards.max(1),
        },
    };
    runtime()?.block_on(blis_k8s::controller::run(opts)).map_err(|e| failed(format!("{e:#}")))?;
    Ok(ExitCode::SUCCESS)
}
