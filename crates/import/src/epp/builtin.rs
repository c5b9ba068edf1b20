//! The endpoint-picker config files the charts ship and select by name (`pluginsConfigFile:
//! default-plugins.yaml`), per chart and version: the GAIE `inferencepool` / `standalone` charts
//! (v0.5 to v1.5), the llm-d-router charts (v0.9) and the v0.2 llm-d-modelservice chart, which ran
//! its own EPP. The contents are the plugin sets and weights those chart versions render (written
//! out here as configuration, one document per file).

use super::super::llmd::modelservice::Version;

/// GAIE v0.5: a decision-tree cascade of filters and a random picker.
const GAIE_V05_DEFAULT: &str = "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: low-queue-filter, parameters: {threshold: 128}}
- {type: lora-affinity-filter, parameters: {threshold: 0.999}}
- {type: least-queue-filter}
- {type: least-kv-cache-filter}
- name: low-latency-filter
  type: decision-tree-filter
  parameters:
    current: {pluginRef: low-queue-filter}
    nextOnSuccess: {decisionTree: {current: {pluginRef: lora-affinity-filter}}}
    nextOnFailure: {decisionTree: {current: {pluginRef: least-queue-filter}}}
- {type: random-picker, parameters: {maxNumOfEndpoints: 1}}
- {type: single-profile-handler}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: low-latency-filter}, {pluginRef: random-picker}]
";

/// GAIE v0.5 `plugins-v2.yaml`: queue, KV utilisation and the approximate prefix index, weight 1 each.
const GAIE_V05_PLUGINS_V2: &str = "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: queue-scorer}
- {type: kv-cache-scorer}
- {type: prefix-cache-scorer, parameters: {hashBlockSize: 64, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}}
- {type: max-score-picker, parameters: {maxNumOfEndpoints: 1}}
- {type: single-profile-handler}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: kv-cache-scorer, weight: 1}
  - {pluginRef: prefix-cache-scorer, weight: 1}
  - {pluginRef: max-score-picker}
";

/// GAIE v1.0 and v1.1: the three scorers without weights (1 each).
const GAIE_V10_DEFAULT: &str = "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins: [{type: queue-scorer}, {type: kv-cache-utilization-scorer}, {type: prefix-cache-scorer}]
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}, {pluginRef: kv-cache-utilization-scorer}, {pluginRef: prefix-cache-scorer}]
";

/// The three scorers weighted 2/2/3 (GAIE v1.2 onwards, llm-d-router without metrics plugins).
fn weighted_default(api: &str, extra_plugins: &str) -> String {
    format!(
        "
apiVersion: {api}
kind: EndpointPickerConfig
plugins:
- {{type: queue-scorer}}
- {{type: kv-cache-utilization-scorer}}
- {{type: prefix-cache-scorer}}{extra_plugins}
schedulingProfiles:
- name: default
  plugins:
  - {{pluginRef: queue-scorer, weight: 2}}
  - {{pluginRef: kv-cache-utilization-scorer, weight: 2}}
  - {{pluginRef: prefix-cache-scorer, weight: 3}}
"
    )
}

/// GAIE v1.3 to v1.5 with `latencyPredictor.enabled`: one predicted-latency scorer.
const GAIE_LATENCY_DEFAULT: &str = "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [prepareDataPlugins]
plugins:
- {type: queue-scorer}
- {type: kv-cache-utilization-scorer}
- {type: prefix-cache-scorer}
- {type: predicted-latency-scorer}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: predicted-latency-scorer}]
";

/// llm-d-router v0.9 with `router.latencyPredictor.enabled`: the two-gate affinity pipeline.
const ROUTER_LATENCY_DEFAULT: &str = "
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: queue-scorer}
- {type: kv-cache-utilization-scorer}
- {type: prefix-cache-scorer}
- {type: metrics-data-source}
- {type: core-metrics-extractor}
- {type: predicted-latency-producer}
- {name: strict-affinity-filter, type: prefix-cache-affinity-filter, parameters: {affinityThreshold: 0.99, ttftSource: latencyPredictor, maxTTFTPenaltyMs: 5000}}
- {name: loose-affinity-filter, type: prefix-cache-affinity-filter, parameters: {affinityThreshold: 0.80, ttftSource: latencyPredictor, maxTTFTPenaltyMs: 5000}}
- {type: latency-scorer}
- {type: weighted-random-picker}
- {type: slo-headroom-tier-filter}
- {type: latency-slo-admitter}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: predicted-latency-producer}
  - {pluginRef: strict-affinity-filter}
  - {pluginRef: slo-headroom-tier-filter}
  - {pluginRef: loose-affinity-filter}
  - {pluginRef: latency-scorer}
  - {pluginRef: weighted-random-picker}
";

/// llm-d-router v0.9 `payload-agnostic.yaml`: backend-state scorers only.
const ROUTER_PAYLOAD_AGNOSTIC: &str = "
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins: [{type: passthrough-parser}, {type: active-request-scorer}, {type: session-affinity-scorer}]
requestHandler: {parsers: [{pluginRef: passthrough-parser}]}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: active-request-scorer, weight: 1}, {pluginRef: session-affinity-scorer, weight: 1}]
";

/// The charts whose built-in files differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// GAIE `inferencepool` / `standalone` (values under `inferenceExtension`).
    Gaie,
    /// llm-d-router `llm-d-router-standalone` / `-gateway` (values under `router`).
    Router,
}

/// The built-in files of `chart` at `version` as (file name, document text); `latency` is the
/// chart's `latencyPredictor.enabled`.
pub fn files(chart: Chart, version: Version, latency: bool) -> Vec<(&'static str, String)> {
    match chart {
        Chart::Gaie if version < (1, 0, 0) => vec![
            ("default-plugins.yaml", GAIE_V05_DEFAULT.to_string()),
            ("plugins-v2.yaml", GAIE_V05_PLUGINS_V2.to_string()),
        ],
        Chart::Gaie if version < (1, 2, 0) => vec![("default-plugins.yaml", GAIE_V10_DEFAULT.to_string())],
        Chart::Gaie if latency && version >= (1, 3, 0) => {
            vec![("default-plugins.yaml", GAIE_LATENCY_DEFAULT.to_string())]
        }
        Chart::Gaie if version < (1, 4, 0) => {
            vec![("default-plugins.yaml", weighted_default("inference.networking.x-k8s.io/v1alpha1", ""))]
        }
        Chart::Gaie => vec![(
            "default-plugins.yaml",
            weighted_default(
                "inference.networking.x-k8s.io/v1alpha1",
                "\n- {type: metrics-data-source}\n- {type: core-metrics-extractor}",
            ),
        )],
        Chart::Router => vec![
            (
                "default-plugins.yaml",
                if latency {
                    ROUTER_LATENCY_DEFAULT.to_string()
                } else {
                    weighted_default(
                        "llm-d.ai/v1alpha1",
                        "\n- {type: metrics-data-source}\n- {type: core-metrics-extractor}",
                    )
                },
            ),
            ("payload-agnostic.yaml", ROUTER_PAYLOAD_AGNOSTIC.to_string()),
        ],
    }
}

/// The four files of the v0.2 llm-d-modelservice chart's own EPP ConfigMap.
pub fn modelservice_v02() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "default-config.yaml",
            "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: prefix-cache-scorer, parameters: {hashBlockSize: 5, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}}
- {type: decode-filter}
- {type: max-score-picker}
- {type: single-profile-handler}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: decode-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 50}]
",
        ),
        (
            "prefix-cache-tracking-config.yaml",
            "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: single-profile-handler}
- {type: decode-filter}
- type: prefix-cache-scorer
  parameters: {mode: cache_tracking, indexerConfig: {tokenProcessorConfig: {blockSize: 64, hashSeed: '42'}}}
- {type: kv-cache-scorer}
- {type: queue-scorer}
- {type: max-score-picker}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: decode-filter}
  - {pluginRef: prefix-cache-scorer, weight: 3.0}
  - {pluginRef: kv-cache-scorer, weight: 1.0}
  - {pluginRef: queue-scorer, weight: 1.0}
  - {pluginRef: max-score-picker}
",
        ),
        (
            "prefix-estimate-config.yaml",
            "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: single-profile-handler}
- {type: decode-filter}
- {type: prefix-cache-scorer}
- {type: load-aware-scorer}
- {type: max-score-picker}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: decode-filter}
  - {pluginRef: prefix-cache-scorer, weight: 2.0}
  - {pluginRef: load-aware-scorer, weight: 1.0}
  - {pluginRef: max-score-picker}
",
        ),
        (
            "default-pd-config.yaml",
            "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: prefill-header-handler}
- {type: prefix-cache-scorer, parameters: {hashBlockSize: 5, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}}
- {type: prefill-filter}
- {type: decode-filter}
- {type: max-score-picker}
- {type: pd-profile-handler, parameters: {threshold: 10, hashBlockSize: 5}}
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 50}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 50}]
",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_file_parses_without_unregistered_plugins() {
        let mut all: Vec<String> = modelservice_v02().into_iter().map(|(_, t)| t.to_string()).collect();
        for chart in [Chart::Gaie, Chart::Router] {
            for v in [(0, 5, 1), (1, 0, 1), (1, 2, 0), (1, 3, 0), (1, 4, 0), (1, 5, 0), (0, 9, 0)] {
                for latency in [false, true] {
                    all.extend(files(chart, v, latency).into_iter().map(|(_, t)| t));
                }
            }
        }
        for text in all {
            let mut w = Vec::new();
            super::super::parse(&serde_json::Value::String(text.clone()), &Default::default(), &mut w)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }
}
