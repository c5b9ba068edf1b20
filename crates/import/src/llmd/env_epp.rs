//! The endpoint picker of llm-d-inference-scheduler's first image tags (0.0.x, May 2025), which had no
//! config file: what it schedules is fixed by its `main` and by environment variables. Translated here
//! into the EndpointPickerConfig that schedules the same way, so the router simulates what ran.
//!
//! * 0.0.0 and 0.0.1: `main` builds a demo "dual" scheduler and never loads the environment config, so
//!   `PD_ENABLED`, `PD_PROMPT_LEN_THRESHOLD` and the scorer variables have no effect. Its primary
//!   scheduler has a pass-through filter, one scorer that gives every pod 0 and a max-score picker that
//!   breaks ties at random; the secondary one (used in a few per cent of requests) picks at random too.
//!   Every request goes to a pod drawn uniformly from all pods of the InferencePool, whatever their
//!   `llm-d.ai/role`, and no `x-prefiller-url` header is set, so a decode pod's routing sidecar hands
//!   the request to its own vLLM, which prefills and decodes it: every pod serves whole requests.
//! * 0.0.2 to 0.0.5: the environment config drives a P/D scheduler: with `PD_ENABLED=true` and a
//!   non-cached prompt of at least `PD_PROMPT_LEN_THRESHOLD` characters (default 100) a prefill pod
//!   (role `prefill`) is picked besides the decode pod (role `decode` or `both`); each side with the
//!   scorers of its `PREFILL_` / `DECODE_` variables and a max-score picker.

use serde_json::{json, Value};

/// Default of `PD_PROMPT_LEN_THRESHOLD` in the 0.0.x environment config (characters).
const DEFAULT_THRESHOLD_CHARS: f64 = 100.0;

/// Scorer variable names of the 0.0.x environment config and the plugin type the twin simulates them
/// with (`None`: not simulated).
const SCORERS: [(&str, Option<&str>); 7] = [
    ("KVCACHE_AWARE_SCORER", None),
    ("LOAD_AWARE_SCORER", Some("load-aware-scorer")),
    ("PREFIX_AWARE_SCORER", Some("prefix-cache-scorer")),
    ("SESSION_AWARE_SCORER", Some("session-affinity-scorer")),
    ("GIE_KVCACHE_UTILIZATION_SCORER", Some("kv-cache-utilization-scorer")),
    ("GIE_QUEUE_SCORER", Some("queue-scorer")),
    ("GIE_PREFIX_SCORER", Some("prefix-cache-scorer")),
];

/// Which scheduler an image tag of llm-d-inference-scheduler runs without a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvScheduler {
    /// 0.0.0 / 0.0.1: the demo dual scheduler (uniform random pod, no P/D).
    DualDemo,
    /// 0.0.2 to 0.0.5: the P/D scheduler configured by environment variables.
    EnvPd,
}

/// The scheduler the EPP container `image` runs from its environment, when it is an
/// llm-d-inference-scheduler 0.0.x tag (with or without a leading `v`); `None` for any other image.
pub fn scheduler_of(image: &str) -> Option<EnvScheduler> {
    let (repo, tag) = image.rsplit_once(':')?;
    if !repo.ends_with("/llm-d-inference-scheduler") && repo != "llm-d-inference-scheduler" {
        return None;
    }
    match tag.trim_start_matches('v') {
        "0.0.0" | "0.0.1" => Some(EnvScheduler::DualDemo),
        "0.0.2" | "0.0.3" | "0.0.4" | "0.0.5" => Some(EnvScheduler::EnvPd),
        _ => None,
    }
}

/// The EndpointPickerConfig equivalent to the EPP container `c` (a pod-spec container) when its image
/// is an environment-configured 0.0.x tag, with a warning saying what is simulated; `None` otherwise.
pub fn config_of(c: &Value, warnings: &mut Vec<String>) -> Option<Value> {
    let image = c.get("image").and_then(Value::as_str)?;
    let kind = scheduler_of(image)?;
    let env = env_vars(c);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match kind {
        EnvScheduler::DualDemo => {
            let ignored: Vec<&str> = env
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| n.starts_with("PD_") || n.contains("SCORER"))
                .collect();
            warnings.push(format!(
                "endpoint picker {image}: this tag's main runs the demo dual scheduler and never reads its environment ({}), so every request goes to a pod drawn uniformly from all pods of the pool, prefill-role pods included, and is served whole there (no x-prefiller-url header, a decode pod's sidecar passes it to its own vLLM): simulated so, without P/D",
                if ignored.is_empty() { "no P/D or scorer variables set".to_string() } else { format!("{} ignored", ignored.join(", ")) }
            ));
            Some(json!({
                "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
                "kind": "EndpointPickerConfig",
                "plugins": [{"type": "single-profile-handler"}, {"type": "max-score-picker"}],
                "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "max-score-picker"}]}],
            }))
        }
        EnvScheduler::EnvPd => {
            let pd = get("PD_ENABLED") == Some("true");
            let threshold = match get("PD_PROMPT_LEN_THRESHOLD").map(str::parse::<f64>) {
                Some(Ok(t)) if t >= 0.0 => t,
                _ => DEFAULT_THRESHOLD_CHARS,
            };
            let mut plugins = vec![
                json!({"type": "prefill-filter"}),
                json!({"type": "decode-filter"}),
                json!({"type": "max-score-picker"}),
            ];
            let mut unsimulated = Vec::new();
            let mut profile = |side: &str, filter: &str| {
                let mut refs = vec![json!({"pluginRef": filter})];
                for (name, ty) in SCORERS {
                    if get(&format!("{side}_ENABLE_{name}")) != Some("true") {
                        continue;
                    }
                    let weight = get(&format!("{side}_{name}_WEIGHT"))
                        .and_then(|w| w.parse::<f64>().ok())
                        .unwrap_or(1.0);
                    match ty {
                        Some(ty) => {
                            let id = format!("{}-{ty}", side.to_lowercase());
                            plugins.push(json!({"name": id, "type": ty}));
                            refs.push(json!({"pluginRef": id, "weight": weight}));
                        }
                        None => unsimulated.push(format!("{side}_ENABLE_{name}")),
                    }
                }
                refs.push(json!({"pluginRef": "max-score-picker"}));
                json!({"name": side.to_lowercase(), "plugins": refs})
            };
            let decode = profile("DECODE", "decode-filter");
            let prefill = profile("PREFILL", "prefill-filter");
            let mut profiles = vec![decode];
            if pd {
                plugins
                    .insert(0, json!({"type": "pd-profile-handler", "parameters": {"threshold": threshold}}));
                profiles.push(prefill);
            } else {
                plugins.insert(0, json!({"type": "single-profile-handler"}));
            }
            warnings.push(format!(
                "endpoint picker {image}: P/D scheduler configured by environment variables ({}): decode pods are those of role decode or both{}",
                if pd { format!("PD_ENABLED, a prefill pod picked when the non-cached prompt has at least {threshold} characters") } else { "PD_ENABLED not true: decode pods serve whole requests".into() },
                if unsimulated.is_empty() { String::new() } else { format!("; {} not simulated (no equivalent scorer)", unsimulated.join(", ")) }
            ));
            Some(json!({
                "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
                "kind": "EndpointPickerConfig",
                "plugins": plugins,
                "schedulingProfiles": profiles,
            }))
        }
    }
}

/// The literal `env` entries of a container (`valueFrom` ones have no value the twin can know).
fn env_vars(c: &Value) -> Vec<(String, String)> {
    c.get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let n = e.get("name")?.as_str()?;
            let v = e.get("value")?;
            let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            Some((n.to_string(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_map_to_their_scheduler() {
        let s = |i| scheduler_of(i);
        assert_eq!(s("quay.io/llm-d/llm-d-inference-scheduler:0.0.1"), Some(EnvScheduler::DualDemo));
        assert_eq!(s("ghcr.io/llm-d/llm-d-inference-scheduler:v0.0.4"), Some(EnvScheduler::EnvPd));
        assert_eq!(s("ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.1"), None);
        assert_eq!(s("quay.io/other/epp:0.0.1"), None);
    }

    #[test]
    fn env_pd_config_follows_the_variables() {
        let c = json!({"image": "quay.io/llm-d/llm-d-inference-scheduler:0.0.3", "env": [
            {"name": "PD_ENABLED", "value": "true"}, {"name": "PD_PROMPT_LEN_THRESHOLD", "value": "400"},
            {"name": "DECODE_ENABLE_LOAD_AWARE_SCORER", "value": "true"},
            {"name": "DECODE_LOAD_AWARE_SCORER_WEIGHT", "value": "2"},
            {"name": "PREFILL_ENABLE_KVCACHE_AWARE_SCORER", "value": "true"}]});
        let mut w = Vec::new();
        let cfg = config_of(&c, &mut w).expect("0.0.3 is an environment-configured tag");
        assert_eq!(cfg.pointer("/plugins/0/parameters/threshold"), Some(&json!(400.0)));
        assert_eq!(cfg.pointer("/schedulingProfiles/0/plugins/1/weight"), Some(&json!(2.0)));
        assert_eq!(cfg.pointer("/schedulingProfiles/1/plugins/0/pluginRef"), Some(&json!("prefill-filter")));
        assert!(w[0].contains("PREFILL_ENABLE_KVCACHE_AWARE_SCORER not simulated"), "{w:?}");
        // Without PD_ENABLED: one decode profile.
        let c = json!({"image": "llm-d-inference-scheduler:0.0.3"});
        let cfg = config_of(&c, &mut w).expect("tag known");
        assert_eq!(cfg["schedulingProfiles"].as_array().map(Vec::len), Some(1));
        assert_eq!(cfg.pointer("/plugins/0/type"), Some(&json!("single-profile-handler")));
    }
}
