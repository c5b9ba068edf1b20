//! llm-d-modelservice Helm values: the `decode` and `prefill` roles (replicas, `parallelism`,
//! container args, accelerator resources) and the model from `modelArtifacts`, read the way the chart
//! renders them into vLLM Deployments.

use std::collections::BTreeMap;

use serde_json::Value;

use super::vllm_args;
use super::workload::{env_of, gpu_from_product, gpus_of_container, int_of, ModelServer};
use blis_sim::error::InvalidInput;
use blis_sim::scenario::spec::PoolRole;

/// The model a values file serves: `modelArtifacts.name`, else its `uri` without the `hf://`
/// scheme, else `routing.modelName`.
fn model_of(values: &Value) -> Option<String> {
    let art = values.get("modelArtifacts");
    art.and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let uri = art?.get("uri")?.as_str()?;
            Some(uri.strip_prefix("hf://").unwrap_or(uri).to_string())
        })
        .or_else(|| values.pointer("/routing/modelName").and_then(Value::as_str).map(str::to_string))
}

/// Reads one role section (`decode` or `prefill`); None when it is absent or `create: false`.
fn role(values: &Value, key: &str, role: PoolRole) -> Result<Option<ModelServer>, InvalidInput> {
    let Some(sec) = values.get(key).filter(|s| s.is_object()) else { return Ok(None) };
    if sec.get("create").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let field = |f: &str| format!("{key}.{f}");
    let replicas = match sec.get("replicas") {
        None => 1,
        Some(v) => int_of(v).filter(|r| *r >= 0).ok_or_else(|| {
            InvalidInput::new(field("replicas"), format!("is {v}, not a count"), "set replicas to 0 or more")
        })?,
    };
    let par = sec.get("parallelism");
    let par_of = |k: &str| par.and_then(|p| p.get(k)).and_then(int_of);
    let containers = sec.get("containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c.get("modelCommand").is_some() || c.get("name").and_then(Value::as_str) == Some("vllm"))
        .or(containers.first())
        .cloned()
        .unwrap_or(Value::Null);
    let env = env_of(&container);
    let raw: Vec<String> = container
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| vllm_args::expand_env(a.as_str().unwrap_or(&a.to_string()), &env))
        .collect();
    let mut args = match container.get("modelCommand").and_then(Value::as_str) {
        Some("custom") => {
            let command: Vec<String> = container
                .get("command")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            vllm_args::parse(&vllm_args::server_args(&command, &raw).unwrap_or(raw))
        }
        _ => vllm_args::parse(&raw),
    };
    if args.model.is_none() {
        args.model = model_of(values);
    }
    // The chart turns `parallelism` into the vLLM flags and the GPU request.
    args.tensor_parallel = args.tensor_parallel.or(par_of("tensor"));
    args.data_parallel = args.data_parallel.or(par_of("data"));
    args.data_parallel_local = args.data_parallel_local.or(par_of("dataLocal"));
    // One replica spans data / dataLocal pods of tensor x dataLocal GPUs each.
    let tp = args.tensor_parallel.unwrap_or(1).max(1);
    let dp = args.data_parallel.unwrap_or(1).max(1);
    let dp_local = args.data_parallel_local.unwrap_or(dp).clamp(1, dp);
    let gpus = Some(gpus_of_container(&container).unwrap_or(tp * dp_local) * (dp / dp_local).max(1));
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    if let Some(m) = values.pointer("/modelArtifacts/labels").and_then(Value::as_object) {
        for (k, v) in m {
            labels.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    labels.insert("llm-d.ai/role".into(), key.to_string());
    let gpu = sec
        .get("acceleratorTypes")
        .and_then(|a| a.get("labelValues"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(gpu_from_product)
        .map(str::to_string);
    Ok(Some(ModelServer {
        name: key.to_string(),
        role: Some(role),
        replicas,
        labels,
        gpu,
        gpus_per_replica: gpus,
        args,
    }))
}

/// Reads llm-d-modelservice values into its model-server roles (decode first). A values file with
/// neither role is an error.
pub fn import(values: &Value) -> Result<Vec<ModelServer>, InvalidInput> {
    let mut out = Vec::new();
    for (key, r) in [("decode", PoolRole::Decode), ("prefill", PoolRole::Prefill)] {
        if let Some(m) = role(values, key, r)? {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(InvalidInput::new(
            "decode",
            "neither a decode nor a prefill role is created",
            "give llm-d-modelservice values with a `decode` (and optionally `prefill`) section",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(path: &str) -> Value {
        let p = crate::shared(&format!("llm-d-manifests/{path}"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p} must be readable: {e}"));
        serde_yaml::from_str(&text).unwrap()
    }

    #[test]
    fn pd_values_have_both_roles() {
        let ms = import(&values("2025-07-v0.2-pd-disaggregation/ms-pd/values.yaml")).unwrap();
        let (d, p) = (&ms[0], &ms[1]);
        assert_eq!(
            (d.role, d.replicas, d.tensor_parallel(), d.gpus_per_replica),
            (Some(PoolRole::Decode), 1, 4, Some(4))
        );
        assert_eq!(
            (p.role, p.replicas, p.tensor_parallel(), p.gpus_per_replica),
            (Some(PoolRole::Prefill), 4, 1, Some(1))
        );
        for m in &ms {
            assert_eq!(m.args.model.as_deref(), Some("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"));
            assert_eq!((m.args.vllm.block_size, m.args.vllm.max_model_len), (Some(128), Some(32000)));
            assert!(m.args.pd_connector);
        }
    }

    #[test]
    fn parallelism_section_sets_tp_and_gpus() {
        let ms = import(&values("2026-02-v0.5-precise-prefix-cache-aware/ms-kv-events/values.yaml")).unwrap();
        assert_eq!(ms.len(), 1, "prefill is not created in this guide");
        let d = &ms[0];
        assert_eq!((d.replicas, d.tensor_parallel(), d.gpus_per_replica), (8, 2, Some(2)));
        assert_eq!((d.args.vllm.block_size, d.args.vllm.gpu_memory_utilization), (Some(64), Some(0.95)));
        assert_eq!(d.args.model.as_deref(), Some("Qwen/Qwen3-32B"));
        assert_eq!(d.labels.get("llm-d.ai/model").map(String::as_str), Some("Qwen3-32B"));
    }

    #[test]
    fn values_without_roles_are_rejected() {
        let e = import(&serde_json::json!({"decode": {"create": false}})).unwrap_err();
        assert_eq!(e.field, "decode");
        let e = import(&serde_json::json!({"decode": {"replicas": "many"}})).unwrap_err();
        assert_eq!(e.field, "decode.replicas");
    }
}
