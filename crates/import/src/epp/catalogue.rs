//! Every endpoint-picker plugin type the real EPPs register (GAIE v0.5.1 to v1.5, llm-d inference
//! scheduler v0.2 to v0.8, llm-d-router to 2026-08), what it does, and what the twin makes of it:
//! modelled, accepted without effect on the simulation (inert), or registered but not modelled
//! (it then acts as neutral and a warning says so). A type in no registry is what the real EPP
//! refuses to start on: `plugin type 'X' is not registered`.

/// What a plugin is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Scores endpoints in [0, 1].
    Scorer,
    /// Drops endpoints.
    Filter,
    /// Picks the endpoint.
    Picker,
    /// Chooses which profiles run.
    Handler,
    /// Decides whether a request is disaggregated.
    Decider,
    /// Saturation detector.
    Detector,
    /// Produces data other plugins read (prefix match info, in-flight load, tokens).
    Producer,
    /// Data sources and extractors of the data layer.
    DataLayer,
    /// Request parsers.
    Parser,
    /// Admission plugins.
    Admitter,
    /// Flow-control policies (fairness, ordering, usage limits, eviction).
    FlowPolicy,
    /// Request control (header handlers, reporters).
    RequestControl,
}

/// How the twin treats a plugin type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Simulated with its semantics.
    Modelled,
    /// Has no effect on what the twin simulates (parsing, metrics plumbing, headers).
    Inert,
    /// Changes routing in a way the twin does not simulate: neutral, with a warning giving the reason.
    Unmodelled(&'static str),
}

/// One registered plugin type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The type string.
    pub ty: &'static str,
    /// Its role.
    pub role: Role,
    /// What the twin does with it.
    pub treatment: Treatment,
    /// The current name when this one is an older or deprecated name.
    pub renamed_to: Option<&'static str>,
}

const fn e(ty: &'static str, role: Role, treatment: Treatment) -> Entry {
    Entry { ty, role, treatment, renamed_to: None }
}

const fn old(ty: &'static str, role: Role, treatment: Treatment, new: &'static str) -> Entry {
    Entry { ty, role, treatment, renamed_to: Some(new) }
}

use Role::*;
use Treatment::*;

const LATENCY: &str = "the latency predictor is not simulated";
const LORA: &str = "LoRA adapters are not simulated";
const MULTI: &str = "multi-cluster routing is not simulated";
const MM: &str = "multimodal encoder caches are not simulated";
const ATTR: &str = "endpoint attributes other than role and labels are not simulated";
const TOPO: &str = "network topology is not simulated";
const DT: &str = "the GAIE v0.5 decision-tree cascade is not simulated";

/// The registry: every type string a released EPP accepts.
pub const REGISTRY: &[Entry] = &[
    // Scorers.
    e("queue-scorer", Scorer, Modelled),
    e("kv-cache-utilization-scorer", Scorer, Modelled),
    old("kv-cache-scorer", Scorer, Modelled, "kv-cache-utilization-scorer"),
    e("prefix-cache-scorer", Scorer, Modelled),
    e("precise-prefix-cache-scorer", Scorer, Modelled),
    e("no-hit-lru-scorer", Scorer, Modelled),
    e("load-aware-scorer", Scorer, Modelled),
    e("active-request-scorer", Scorer, Modelled),
    e("session-affinity-scorer", Scorer, Modelled),
    e("running-requests-size-scorer", Scorer, Modelled),
    e("token-load-scorer", Scorer, Modelled),
    e("lora-affinity-scorer", Scorer, Unmodelled(LORA)),
    e("latency-scorer", Scorer, Unmodelled(LATENCY)),
    old("predicted-latency-scorer", Scorer, Unmodelled(LATENCY), "latency-scorer"),
    e(
        "context-length-aware",
        Scorer,
        Unmodelled("context-length label ranges on endpoints are not simulated"),
    ),
    e("endpoint-attribute-scorer", Scorer, Unmodelled(ATTR)),
    e("topology-affinity-scorer", Scorer, Unmodelled(TOPO)),
    e("header-label-affinity-scorer", Scorer, Unmodelled("request headers are not simulated")),
    e("mm-embeddings-cache-scorer", Scorer, Unmodelled(MM)),
    e("multicluster-queue-scorer", Scorer, Unmodelled(MULTI)),
    e("multicluster-kv-cache-utilization-scorer", Scorer, Unmodelled(MULTI)),
    e("multicluster-prefix-cache-scorer", Scorer, Unmodelled(MULTI)),
    // Filters.
    e("decode-filter", Filter, Modelled),
    e("prefill-filter", Filter, Modelled),
    e("encode-filter", Filter, Unmodelled("encode (E/P/D) stages are not simulated")),
    e("label-selector-filter", Filter, Modelled),
    old("by-label", Filter, Modelled, "label-selector-filter"),
    old("by-label-selector", Filter, Modelled, "label-selector-filter"),
    e("prefix-cache-affinity-filter", Filter, Modelled),
    e("slo-headroom-tier-filter", Filter, Unmodelled(LATENCY)),
    e("utilization-filter", Filter, Unmodelled("utilization caps per endpoint are not simulated")),
    e(
        "session-affinity-filter",
        Filter,
        Unmodelled("session-affinity filtering is not simulated (the scorer is)"),
    ),
    e("endpoint-attribute-filter", Filter, Unmodelled(ATTR)),
    e("topology-affinity-filter", Filter, Unmodelled(TOPO)),
    e("low-queue-filter", Filter, Unmodelled(DT)),
    e("lora-affinity-filter", Filter, Unmodelled(DT)),
    e("least-queue-filter", Filter, Unmodelled(DT)),
    e("least-kv-cache-filter", Filter, Unmodelled(DT)),
    e("decision-tree-filter", Filter, Unmodelled(DT)),
    // Pickers.
    e("max-score-picker", Picker, Modelled),
    e("random-picker", Picker, Modelled),
    e("weighted-random-picker", Picker, Modelled),
    // Profile handlers and deciders.
    e("single-profile-handler", Handler, Modelled),
    old("pd-profile-handler", Handler, Modelled, "disagg-profile-handler"),
    e("disagg-profile-handler", Handler, Modelled),
    e(
        "data-parallel-profile-handler",
        Handler,
        Unmodelled("DP ranks are routed to directly; the primary-port handler is not needed"),
    ),
    e("header-profile-handler", Handler, Unmodelled("request headers are not simulated")),
    e("always-disagg-pd-decider", Decider, Modelled),
    e("prefix-based-pd-decider", Decider, Modelled),
    e("always-disagg-multimodal-decider", Decider, Unmodelled(MM)),
    // Saturation detectors.
    e("utilization-detector", Detector, Modelled),
    e("concurrency-detector", Detector, Modelled),
    // Producers.
    e("approx-prefix-cache-producer", Producer, Modelled),
    e("precise-prefix-cache-producer", Producer, Modelled),
    e("inflight-load-producer", Producer, Inert),
    e("token-producer", Producer, Inert),
    old("tokenizer", Producer, Inert, "token-producer"),
    e("session-id-producer", Producer, Inert),
    e("predicted-latency-producer", Producer, Unmodelled(LATENCY)),
    e("mm-embeddings-cache-producer", Producer, Unmodelled(MM)),
    e("burst-prefix-cache-producer", Producer, Unmodelled("burst prefix tracking is not simulated")),
    e("p2p-source-producer", Producer, Unmodelled("peer-to-peer KV sourcing is not simulated")),
    e("multicluster-approx-prefix-cache-producer", Producer, Unmodelled(MULTI)),
    // Data layer.
    e("metrics-data-source", DataLayer, Inert),
    e("core-metrics-extractor", DataLayer, Inert),
    e("models-data-source", DataLayer, Inert),
    e("models-data-extractor", DataLayer, Inert),
    e("endpoint-notification-source", DataLayer, Inert),
    e("k8s-notification-source", DataLayer, Inert),
    e("dcgm-data-source", DataLayer, Inert),
    e("dcgm-extractor", DataLayer, Inert),
    e("topology-extractor", DataLayer, Inert),
    e("file-discovery", DataLayer, Inert),
    e("multicluster-metrics-data-source", DataLayer, Unmodelled(MULTI)),
    // Parsers.
    e("openai-parser", Parser, Inert),
    e("vllmgrpc-parser", Parser, Inert),
    e("vllmhttp-parser", Parser, Inert),
    e("passthrough-parser", Parser, Inert),
    e("anthropic-parser", Parser, Inert),
    e("vertexai-parser", Parser, Inert),
    e("sglanghttp-parser", Parser, Inert),
    // Admission and request control.
    e("latency-slo-admitter", Admitter, Unmodelled(LATENCY)),
    e(
        "probabilistic-admitter",
        Admitter,
        Unmodelled("use spec.router.admission.probabilistic for probabilistic shedding"),
    ),
    e("request-attribute-reporter", RequestControl, Inert),
    e("agent-identity", RequestControl, Inert),
    e("disaggregatedset-rollout-screener", RequestControl, Inert),
    old("prefill-header-handler", RequestControl, Inert, "disagg-profile-handler"),
    old("disagg-headers-handler", RequestControl, Inert, "disagg-profile-handler"),
    // Flow control.
    e("global-strict-fairness-policy", FlowPolicy, Inert),
    e(
        "round-robin-fairness-policy",
        FlowPolicy,
        Unmodelled("fairness inside a priority band is first come, first served"),
    ),
    e(
        "program-aware-fairness",
        FlowPolicy,
        Unmodelled("fairness inside a priority band is first come, first served"),
    ),
    e("fcfs-ordering-policy", FlowPolicy, Inert),
    e("edf-ordering-policy", FlowPolicy, Unmodelled("queues are ordered first come, first served")),
    e("slo-deadline-ordering-policy", FlowPolicy, Unmodelled("queues are ordered first come, first served")),
    e("static-usage-limit-policy", FlowPolicy, Inert),
    e(
        "priority-holdback-policy",
        FlowPolicy,
        Unmodelled("usage limits other than the static one are not simulated"),
    ),
    e(
        "soft-reflective-ceiling-policy",
        FlowPolicy,
        Unmodelled("usage limits other than the static one are not simulated"),
    ),
    e("sheddable-eviction-filter", FlowPolicy, Unmodelled("in-flight eviction is not simulated")),
    old(
        "eviction-sheddable-filter",
        FlowPolicy,
        Unmodelled("in-flight eviction is not simulated"),
        "sheddable-eviction-filter",
    ),
    e(
        "priority-then-time-eviction-order-policy",
        FlowPolicy,
        Unmodelled("in-flight eviction is not simulated"),
    ),
    old(
        "eviction-priority-then-time-ordering",
        FlowPolicy,
        Unmodelled("in-flight eviction is not simulated"),
        "priority-then-time-eviction-order-policy",
    ),
];

/// The registry entry of a type, if any EPP registers it.
pub fn lookup(ty: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.ty == ty)
}

/// The registered type closest to a misspelled one (edit distance at most a third of its length).
pub fn closest(ty: &str) -> Option<&'static str> {
    let best = REGISTRY.iter().map(|e| (distance(ty, e.ty), e.ty)).min()?;
    (best.0 <= ty.len().max(3) / 3).then_some(best.1)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_unique_and_renames_point_inside_it() {
        for (i, e) in REGISTRY.iter().enumerate() {
            assert!(REGISTRY[..i].iter().all(|x| x.ty != e.ty), "{} twice", e.ty);
            if let Some(new) = e.renamed_to {
                assert!(lookup(new).is_some(), "{} renamed to unknown {new}", e.ty);
            }
        }
    }

    #[test]
    fn typos_find_their_type() {
        assert_eq!(closest("queue-scorrer"), Some("queue-scorer"));
        assert_eq!(closest("prefix-cache-scorer"), Some("prefix-cache-scorer"));
        assert_eq!(closest("totally-different"), None);
        assert!(lookup("queue").is_none());
    }
}
