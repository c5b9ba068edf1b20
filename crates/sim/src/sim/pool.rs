//! Pools of identical replicas (aggregated, prefill or decode), their autoscaling policy, and the
//! replicas the cluster runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::instance::{Instance, InstanceConfig};
use crate::latency::LatencyModel;

/// What a pool's replicas do (their `llm-d.ai/role` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Whole requests (aggregated serving); label `both`.
    Both,
    /// Prompt passes only (P/D).
    Prefill,
    /// Decodes after a KV transfer (P/D), or whole requests the decider keeps local.
    Decode,
}

impl Role {
    /// The `llm-d.ai/role` label value.
    pub fn label(self) -> &'static str {
        match self {
            Role::Both => "both",
            Role::Prefill => "prefill",
            Role::Decode => "decode",
        }
    }
}

/// Which signal drives an autoscaler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalePolicy {
    /// Workload-variant-autoscaler saturation analysis: a replica is saturated at or above the KV or
    /// queue threshold; scale up when the mean spare capacity of the non-saturated replicas drops
    /// below the spare triggers while some replica is saturated; scale down when no replica is
    /// saturated and the load would fit in one replica fewer with the spare triggers left
    /// (mean KV <= kvThreshold - kvSpare and mean queue <= queueThreshold - queueSpare).
    Saturation {
        /// `kvCacheThreshold` (0.8).
        kv_threshold: f64,
        /// `queueLengthThreshold` (5).
        queue_threshold: f64,
        /// `kvSpareTrigger` (0.1).
        kv_spare: f64,
        /// `queueSpareTrigger` (3).
        queue_spare: f64,
    },
    /// HPA on the mean router-owned in-flight requests per replica:
    /// `desired = ceil(replicas * current / target)`.
    Hpa {
        /// Target in-flight requests per replica.
        target_in_flight: f64,
    },
}

/// Autoscaling of one pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Autoscaling {
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// The signal.
    pub policy: ScalePolicy,
    /// Time between evaluations (µs).
    pub interval_us: i64,
    /// From the decision to a routable replica: provisioning + model load (µs).
    pub startup_us: i64,
    /// A scale-down needs its condition to hold this long, and waits this long after any scaling (µs).
    pub cooldown_us: i64,
}

/// One pool as the simulator runs it.
#[derive(Clone)]
pub struct PoolConfig {
    /// Pool name.
    pub name: String,
    /// Role of its replicas.
    pub role: Role,
    /// Labels of its replicas (`llm-d.ai/role` included).
    pub labels: BTreeMap<String, String>,
    /// Replicas at start.
    pub replicas: u32,
    /// Serving knobs per replica.
    pub instance: InstanceConfig,
    /// Step-time model.
    pub latency: Arc<dyn LatencyModel>,
    /// GPUs per replica (TP x DP).
    pub gpus_per_replica: u32,
    /// Price per GPU-hour.
    pub dollars_per_gpu_hour: f64,
    /// KV bytes per token on one GPU of a replica (for transfer sizes).
    pub kv_bytes_per_token: f64,
    /// Autoscaling, if on.
    pub autoscaling: Option<Autoscaling>,
}

/// Lifecycle of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Provisioning and loading the model (billed, not routable) until the given time.
    Starting(i64),
    /// Serving.
    Active,
    /// Not routable; finishing its work.
    Draining,
    /// Gone (no longer billed).
    Terminated,
}

/// A replica of the cluster.
pub struct Replica {
    /// The engine.
    pub inst: Instance,
    /// Pool index.
    pub pool: usize,
    /// Lifecycle.
    pub state: ReplicaState,
    /// When billing started (µs).
    pub billed_from: i64,
    /// When billing stopped (µs), once terminated.
    pub billed_to: Option<i64>,
    /// Requests routed to it.
    pub routed: u64,
}

impl Replica {
    /// Whether the router may send it requests.
    pub fn routable(&self) -> bool {
        self.state == ReplicaState::Active
    }
}
