//! The reader against the configs of every EPP generation: weights, old names, the EPP's refusals,
//! prefix modes, P/D handlers and deciders, flow control.

use super::*;
use blis_sim::sim::router::{Decider, Detector, Filter, Handler, Scorer};

fn parse_str(s: &str) -> (Result<EppConfig, InvalidInput>, Vec<String>) {
    let mut w = Vec::new();
    (parse(&Value::String(s.to_string()), &EppReadOptions::default(), &mut w), w)
}

fn ok(s: &str) -> (EppConfig, Vec<String>) {
    let (c, w) = parse_str(s);
    (c.unwrap_or_else(|e| panic!("{e}")), w)
}

fn err(s: &str) -> InvalidInput {
    parse_str(s).0.unwrap_err()
}

#[test]
fn well_lit_inference_scheduling_parses_with_weights() {
    let (c, w) = ok("apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-scorer
- type: prefix-cache-scorer
  parameters: {hashBlockSize: 64, lruCapacityPerServer: 1000, maxPrefixBlocksToMatch: 256}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3.0}
");
    // The 2025 name `kv-cache-scorer` is read as the current one, with a warning naming both.
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("\"kv-cache-scorer\"") && w[0].contains("\"kv-cache-utilization-scorer\""));
    assert_eq!(
        c.profiles[0].scorers,
        vec![(Scorer::Queue, 2.0), (Scorer::KvUtilization, 2.0), (Scorer::ApproxPrefix, 3.0)]
    );
    // hashBlockSize is in characters: 64 characters = 16 tokens.
    assert_eq!(
        (c.prefix.block_size_tokens, c.prefix.lru_capacity_per_server, c.prefix.max_blocks),
        (16, 1000, 256)
    );
    assert_eq!(c.handler, Handler::Single);
}

/// E.6: what the real EPP refuses, in its words.
#[test]
fn the_epps_refusals() {
    let e = err("plugins: [{type: queue-scorrer}]\nschedulingProfiles: [{name: d, plugins: [{pluginRef: queue-scorrer}]}]");
    assert_eq!(e.field, "plugins[0].type");
    assert!(e.problem.starts_with("plugin type 'queue-scorrer' is not registered"), "{e}");
    assert!(
        e.fix.contains("did you mean 'queue-scorer'") && e.fix.contains("allowUnregisteredPlugins"),
        "{e}"
    );
    let e = err("plugins: [{type: queue-scorer, name: a}, {type: kv-cache-utilization-scorer, name: a}]");
    assert_eq!((e.field.as_str(), e.problem.as_str()), ("plugins[1].name", "duplicate plugin name 'a'"));
    let e = err("plugins: [{name: x}]");
    assert_eq!((e.field.as_str(), e.problem.as_str()), ("plugins[0].type", "plugin 'x' is missing a type"));
    let e = err("plugins: [{type: single-profile-handler}, {type: disagg-profile-handler, name: h}]
schedulingProfiles: [{name: decode}, {name: prefill}]");
    assert!(e.problem.contains("multiple profile handlers found ('single-profile-handler', 'h')"), "{e}");
    // Allowed explicitly: the typo runs as neutral, with a warning.
    let mut w = Vec::new();
    let c = parse(
        &Value::String("plugins: [{type: queue-scorrer}]".into()),
        &EppReadOptions { allow_unregistered_plugins: true },
        &mut w,
    )
    .unwrap();
    assert_eq!(c.profiles[0].scorers, vec![(Scorer::Neutral, 1.0)]);
    assert!(w[0].contains("queue-scorrer") && w[0].contains("refuse"), "{w:?}");
}

#[test]
fn registered_but_unmodelled_plugins_warn_and_undefined_refs_error() {
    let (c, w) = ok("apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: latency-scorer
- type: lora-affinity-scorer
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins: [{pluginRef: latency-scorer}, {pluginRef: lora-affinity-scorer}, {pluginRef: queue-scorer}]
");
    assert_eq!(
        c.profiles[0].scorers,
        vec![(Scorer::Neutral, 1.0), (Scorer::Neutral, 1.0), (Scorer::Queue, 1.0)]
    );
    assert!(w.iter().any(|x| x.contains("latency-scorer") && x.contains("not modelled")), "{w:?}");
    assert!(w.iter().any(|x| x.contains("lora-affinity-scorer") && x.contains("LoRA")), "{w:?}");
    let e = err("plugins: [{type: queue-scorer}]
schedulingProfiles:
- name: fast
  plugins: [{pluginRef: nope}]
");
    assert!(e.problem.contains("\"fast\"") && e.problem.contains("\"nope\""), "{e:?}");
}

/// E.4: the v0.2 scheduler's prefix-cache-scorer modes.
#[test]
fn prefix_scorer_modes() {
    let cfg = |mode: &str| {
        format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-scorer
  parameters: {{mode: {mode}, indexerConfig: {{tokenProcessorConfig: {{blockSize: 64, hashSeed: '42'}}}}}}
- type: kv-cache-scorer
- type: queue-scorer
- type: max-score-picker
- type: single-profile-handler
schedulingProfiles:
- name: default
  plugins: [{{pluginRef: prefix-cache-scorer, weight: 2.0}}, {{pluginRef: kv-cache-scorer, weight: 1.0}}, {{pluginRef: queue-scorer, weight: 1.0}}, {{pluginRef: max-score-picker}}]
"
        )
    };
    let (c, _) = ok(&cfg("cache_tracking"));
    assert_eq!(
        c.profiles[0].scorers,
        vec![(Scorer::PrecisePrefix, 2.0), (Scorer::KvUtilization, 1.0), (Scorer::Queue, 1.0)]
    );
    assert_eq!(c.precise_block_tokens, Some(64));
    let (c, _) = ok(&cfg("estimate"));
    assert_eq!(c.profiles[0].scorers[0], (Scorer::ApproxPrefix, 2.0));
    let e = err(&cfg("bogus"));
    assert_eq!(
        (e.field.as_str(), e.problem.as_str()),
        ("plugins[0].parameters.mode", "unknown mode for prefix-cache-scorer plugin: bogus")
    );
}

fn pd(plugins: &str) -> String {
    format!(
        "plugins:
{plugins}
- type: prefill-filter
- type: decode-filter
schedulingProfiles:
- {{name: prefill, plugins: [{{pluginRef: prefill-filter}}]}}
- {{name: decode, plugins: [{{pluginRef: decode-filter}}]}}
"
    )
}

fn decider_of(c: &EppConfig) -> Decider {
    match c.handler {
        Handler::Disagg { decode: 1, prefill: 0, decider } => decider,
        ref h => panic!("{h:?}"),
    }
}

/// E.5: P/D handler and decider semantics by era.
#[test]
fn pd_handlers_and_deciders() {
    let (c, _) = ok(&pd("- {type: pd-profile-handler, parameters: {threshold: 0, hashBlockSize: 5}}"));
    assert_eq!(decider_of(&c), Decider::Always);
    let (c, w) = ok(&pd("- {type: pd-profile-handler, parameters: {threshold: 400, hashBlockSize: 64}}"));
    assert_eq!(decider_of(&c), Decider::PrefixBased { non_cached_tokens: 100, prompt_tokens: 0 });
    assert!(w.iter().any(|x| x.contains("characters")), "{w:?}");
    let (c, _) = ok(&pd("- {type: prefix-based-pd-decider}\n- {type: pd-profile-handler, parameters: {deciderPluginName: prefix-based-pd-decider}}"));
    assert_eq!(decider_of(&c), Decider::Never, "nonCachedTokens defaults to 0, which disables P/D");
    let (c, _) = ok(&pd("- {type: prefix-based-pd-decider, parameters: {nonCachedTokens: 16}}\n- {type: disagg-profile-handler, parameters: {deciders: {prefill: prefix-based-pd-decider}}}"));
    assert_eq!(decider_of(&c), Decider::PrefixBased { non_cached_tokens: 16, prompt_tokens: 0 });
    let (c, _) = ok(&pd("- {type: always-disagg-pd-decider}\n- {type: disagg-profile-handler, parameters: {deciderPluginName: always-disagg-pd-decider}}"));
    assert_eq!(decider_of(&c), Decider::Always);
    let e = err(&pd("- {type: disagg-profile-handler, parameters: {deciders: {prefill: nope}}}"));
    assert!(e.problem.contains("\"nope\""), "{e}");
}

/// E.7: the affinity filter is read with its parameters (defaults where left out).
#[test]
fn prefix_affinity_filter() {
    let (c, w) = ok("apiVersion: llm-d.ai/v1
kind: EndpointPickerConfig
plugins:
- {type: approx-prefix-cache-producer, parameters: {blockSizeTokens: 16}}
- {type: inflight-load-producer}
- {type: prefix-cache-affinity-filter, parameters: {affinityThreshold: 0.8, maxTTFTPenaltyMs: 1000, peakPrefillThroughput: 10000}}
- {type: token-load-scorer}
- {type: max-score-picker}
schedulingProfiles:
- {name: default, plugins: [{pluginRef: prefix-cache-affinity-filter}, {pluginRef: token-load-scorer}, {pluginRef: max-score-picker}]}
");
    assert_eq!(
        c.profiles[0].filters,
        vec![Filter::PrefixAffinity {
            threshold: 0.8,
            exploration: 0.0,
            max_ttft_penalty_ms: 1000.0,
            peak_prefill_tps: 10000.0
        }]
    );
    assert!(c.uses_approx_index());
    assert!(w.iter().all(|x| !x.contains("not modelled")), "{w:?}");
}

#[test]
fn helm_values_and_flow_control_are_read() {
    let (c, _) = ok("router:
  epp:
    pluginsConfigFile: c.yaml
    pluginsCustomConfig:
      c.yaml: |
        apiVersion: llm-d.ai/v1alpha1
        kind: EndpointPickerConfig
        featureGates: [flowControl]
        plugins:
        - type: queue-scorer
        - type: concurrency-detector
          parameters: {maxConcurrency: 132}
        schedulingProfiles:
        - name: default
          plugins: [{pluginRef: queue-scorer, weight: 2}]
        flowControl:
          maxRequests: 1k
          defaultRequestTTL: 30s
          saturationDetector: {pluginRef: concurrency-detector}
          priorityBands:
          - {priority: 100, maxRequests: '500'}
          - {priority: -10, maxRequests: '50'}
");
    assert!(c.flow.enabled);
    assert_eq!(c.flow.max_requests, 1000);
    assert_eq!(c.flow.ttl_us, Some(30_000_000));
    assert_eq!(c.flow.bands, vec![(100, 500), (-10, 50)]);
    assert_eq!(c.detector, Detector::Concurrency { max_concurrency: 132.0, headroom: 0.0 });
    // Values that only name a chart built-in get the newest chart's file of that name.
    let (c, w) = ok("router: {epp: {pluginsConfigFile: payload-agnostic.yaml}}");
    assert_eq!(
        c.profiles[0].scorers,
        vec![(Scorer::ActiveRequest { max_busy_score: 1.0 }, 1.0), (Scorer::SessionAffinity, 1.0)]
    );
    assert!(w.iter().any(|x| x.contains("payload-agnostic.yaml")), "{w:?}");
}

#[test]
fn tiered_prefix_indexes_are_named() {
    let (_, w) = ok("plugins:
- {type: prefix-cache-scorer, name: gpu}
- {type: prefix-cache-scorer, name: cpu, parameters: {autoTune: false, lruCapacityPerServer: 41000}}
- {type: queue-scorer}
");
    assert!(w.iter().any(|x| x.contains("keep 2 approximate prefix indexes")), "{w:?}");
}
