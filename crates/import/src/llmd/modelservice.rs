//! llm-d-modelservice Helm values rendered the way the chart renders them, version by version, into
//! the objects it creates: a Deployment (or a LeaderWorkerSet with `multinode`) per role with the
//! chart's pod labels, GPU requests, `vllm serve` arguments and parallelism env; and, for the 2025
//! charts (v0.2.x) that also ran the router, the InferencePool, the endpoint-picker ConfigMap and the
//! InferenceModel. The workload importer then reads those objects like any other.
//!
//! What changes between chart versions (llm-d-incubation/llm-d-modelservice tags):
//! * pod labels: v0.2.x `{llm-d.ai/inferenceServing: "true", llm-d.ai/model: <fullname>}`; from
//!   v0.3.0 `modelArtifacts.labels` merged over the chart default (`inferenceServing` + `model:
//!   random_model`, then `{llm-d.ai/inference-serving: "true"}` from v0.4.5), plus `llm-d.ai/role`;
//! * GPUs per pod: v0.2.0 `parallelism.tensor` when above 1; v0.2.10 the tensor size always; v0.3.0
//!   tensor x dataLocal; from v0.4.0 an explicit accelerator limit in the values wins;
//! * `vllmServe` adds `--tensor-parallel-size` (and from v0.3.0 the data-parallel sizes) itself;
//! * LeaderWorkerSet size: v0.2.x `parallelism.data`; from v0.3.0 the number of workers.

use serde_json::{json, Map, Value};

use super::workload::{int_of, is_simulator_image};
use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::merge_patch;

/// A chart version as (major, minor, patch).
pub type Version = (u32, u32, u32);

/// The newest chart version whose behaviour is encoded here; values of an unnamed version render as it.
pub const NEWEST: Version = (0, 4, 12);

/// Reads `v0.4.5`, `0.4.5`, `~0.5.0`, `llm-d-modelservice-v0.2.0` as a version.
pub fn parse_version(v: &str) -> Option<Version> {
    let v = v.trim().trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut it = v.split(['.', '-', '+']).map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next().flatten().unwrap_or(0), it.next().flatten().unwrap_or(0)))
}

/// Whether a values document is llm-d-modelservice values (`decode` / `prefill` roles with
/// containers, or `modelArtifacts`).
pub fn is_values(v: &Value) -> bool {
    let role =
        |k: &str| v.get(k).is_some_and(|r| r.get("containers").is_some() || r.get("replicas").is_some());
    v.get("kind").is_none() && (v.get("modelArtifacts").is_some() || role("decode") || role("prefill"))
}

/// The chart's full name for a release: the release name when it contains the chart name.
fn fullname(release: &str) -> String {
    let name = if release.contains("llm-d-modelservice") {
        release.to_string()
    } else {
        format!("{release}-llm-d-modelservice")
    };
    name.chars().take(55).collect::<String>().trim_end_matches('-').to_string()
}

/// The chart's defaults for the values this renderer reads, at `ver`.
fn defaults(ver: Version) -> Value {
    let labels = if ver >= (0, 4, 5) {
        json!({"llm-d.ai/inference-serving": "true"})
    } else if ver >= (0, 3, 0) {
        json!({"llm-d.ai/inferenceServing": "true", "llm-d.ai/model": "random_model"})
    } else {
        Value::Null
    };
    json!({
        "multinode": false,
        "modelArtifacts": {"labels": labels, "mountPath": "/model-cache"},
        "routing": {"servicePort": 8000, "proxy": {"targetPort": 8200, "enabled": true},
            "inferencePool": {"create": false}, "inferenceModel": {"create": false},
            "epp": {"create": false, "pluginsConfigFile": "default-config.yaml"}},
        "accelerator": {"type": "nvidia", "resources": {"nvidia": "nvidia.com/gpu", "intel": "gpu.intel.com/i915",
            "intel-i915": "gpu.intel.com/i915", "intel-xe": "gpu.intel.com/xe", "intel-gaudi": "habana.ai/gaudi",
            "amd": "amd.com/gpu", "google": "google.com/tpu", "rebellions-atom": "rebellions.ai/ATOM"}},
        "decode": {"create": true, "replicas": 1, "autoscaling": {"enabled": false}},
        "prefill": {"create": true, "replicas": 0, "autoscaling": {"enabled": false}},
    })
}

/// `parallelism` of a role: (tensor, data, dataLocal, workers) as the chart computes them at `ver`.
fn parallelism(p: Option<&Value>, ver: Version) -> (i64, i64, i64, i64) {
    let get = |k: &str| p.and_then(|p| p.get(k)).and_then(int_of).filter(|x| *x > 0);
    let tp = get("tensor").unwrap_or(1);
    if ver < (0, 3, 0) {
        let data = get("data").unwrap_or(1);
        // v0.2.x: one pod per DP "rank" of the LWS (its size is `data`), no local split.
        return (tp, data, 1, data);
    }
    let (data, local, workers) = (get("data"), get("dataLocal"), get("workers"));
    let dp = data.or(local.zip(workers).map(|(l, w)| l * w)).or(local).unwrap_or(1);
    let dpl = local.or(data.zip(workers).map(|(d, w)| d / w.max(1))).or(data).unwrap_or(1);
    let nw = workers.or(data.zip(local).map(|(d, l)| d / l.max(1))).unwrap_or(1);
    (tp, dp, dpl, nw)
}

/// The model argument `modelArtifacts.uri` gives (`hf://org/m` -> `org/m`, `pvc://claim/path` ->
/// `<mountPath>/path`).
fn model_arg(values: &Value) -> Option<String> {
    let uri = values.pointer("/modelArtifacts/uri").and_then(Value::as_str)?;
    let (proto, rest) = uri.split_once("://").unwrap_or(("hf", uri));
    Some(match proto {
        "pvc" => {
            let path = rest.split_once('/').map(|x| x.1).unwrap_or("");
            let mount =
                values.pointer("/modelArtifacts/mountPath").and_then(Value::as_str).unwrap_or("/model-cache");
            format!("{mount}/{path}")
        }
        "pvc+hf" => {
            rest.rsplitn(3, '/').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("/")
        }
        _ => rest.to_string(),
    })
}

/// The rendered objects and what rendering noticed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// Objects the chart creates (only the parts the importers read).
    pub objects: Vec<Value>,
    /// What was assumed or is not modelled.
    pub warnings: Vec<String>,
}

/// Renders llm-d-modelservice `values` for release `release` at chart `version` (None: the newest
/// encoded, with a warning).
pub fn render(values: &Value, release: &str, version: Option<&str>) -> Result<Rendered, InvalidInput> {
    let mut out = Rendered::default();
    let ver = match version {
        Some(v) => parse_version(v).ok_or_else(|| {
            InvalidInput::new(
                "chartVersion",
                format!("{v:?} is not a chart version"),
                "give a version such as v0.4.5",
            )
        })?,
        None => {
            out.warnings.push(format!(
                "llm-d-modelservice values without a chart version: rendered as chart v{}.{}.{} (name the version to render as another)",
                NEWEST.0, NEWEST.1, NEWEST.2
            ));
            NEWEST
        }
    };
    if values.get("modelArtifacts").is_some_and(|m| !m.is_object() && !m.is_null()) {
        return Err(InvalidInput::new(
            "modelArtifacts",
            "must be a mapping (uri, name, labels...)",
            "give modelArtifacts as in the chart's values.yaml",
        ));
    }
    let mut v = defaults(ver);
    merge_patch(&mut v, values);
    // Helm deep-merges maps: the chart's default labels stay under the user's.
    if ver >= (0, 3, 0) {
        let mut labels = defaults(ver)["modelArtifacts"]["labels"].clone();
        if let Some(user) = values.pointer("/modelArtifacts/labels") {
            merge_patch(&mut labels, user);
        }
        v["modelArtifacts"]["labels"] = labels;
    }
    let full = fullname(release);
    let multinode = v.get("multinode").and_then(Value::as_bool).unwrap_or(false);
    let model_name = if ver < (0, 2, 10) {
        v.pointer("/routing/modelName").and_then(Value::as_str).map(str::to_string)
    } else {
        v.pointer("/modelArtifacts/name").and_then(Value::as_str).map(str::to_string)
    }
    .or_else(|| model_arg(&v));
    let pd_labels: Map<String, Value> = if ver < (0, 3, 0) {
        [
            ("llm-d.ai/inferenceServing".to_string(), json!("true")),
            ("llm-d.ai/model".to_string(), json!(full)),
        ]
        .into_iter()
        .collect()
    } else {
        v.pointer("/modelArtifacts/labels").and_then(Value::as_object).cloned().unwrap_or_default()
    };
    for role in ["decode", "prefill"] {
        let sec = v.get(role).cloned().unwrap_or(Value::Null);
        if sec.get("create").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let replicas = sec.get("replicas").and_then(int_of).unwrap_or(if role == "decode" { 1 } else { 0 });
        if replicas == 0 {
            out.warnings.push(format!(
                "llm-d-modelservice {role}: replicas 0 (the chart default for prefill), so no {role} pods run"
            ));
            continue;
        }
        let mut labels = pd_labels.clone();
        labels.insert("llm-d.ai/role".into(), json!(role));
        let pod = pod_spec(&v, &sec, role, ver, model_name.as_deref())?;
        let (_, _, _, workers) = parallelism(sec.get("parallelism"), ver);
        let name = format!("{full}-{role}");
        let template = json!({"metadata": {"labels": labels}, "spec": pod});
        let mut obj = if multinode {
            json!({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                "metadata": {"name": name, "labels": labels},
                "spec": {"replicas": replicas, "leaderWorkerTemplate": {"size": workers, "workerTemplate": template}}})
        } else {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
                "spec": {"replicas": replicas, "template": template}})
        };
        if sec.pointer("/autoscaling/enabled").and_then(Value::as_bool) == Some(true) {
            // The chart leaves replicas to an autoscaler; the starting count is the values' one.
            obj["metadata"]["annotations"] = json!({"blis.dev/replicas-owned-by": "autoscaler"});
        }
        out.objects.push(obj);
    }
    if ver < (0, 3, 0) {
        routing_objects(&v, &full, &pd_labels, &mut out);
    }
    Ok(out)
}

/// The pod spec of one role: containers with their command, env and GPU requests, node selection.
fn pod_spec(
    v: &Value,
    sec: &Value,
    role: &str,
    ver: Version,
    model: Option<&str>,
) -> Result<Value, InvalidInput> {
    let (tp, dp, dpl, _) = parallelism(sec.get("parallelism"), ver);
    let accel_type = sec
        .pointer("/accelerator/type")
        .or_else(|| v.pointer("/accelerator/type"))
        .and_then(Value::as_str)
        .unwrap_or("nvidia");
    let resource = if ver < (0, 2, 10) {
        Some("nvidia.com/gpu".to_string())
    } else if accel_type == "cpu" {
        None
    } else {
        Some(
            v.pointer(&format!("/accelerator/resources/{accel_type}"))
                .and_then(Value::as_str)
                .unwrap_or("nvidia.com/gpu")
                .to_string(),
        )
    };
    let proxy_off = v.pointer("/routing/proxy/enabled").and_then(Value::as_bool) == Some(false);
    let port = if role == "prefill" || (proxy_off && ver >= (0, 2, 10)) {
        v.pointer("/routing/servicePort").cloned().unwrap_or(json!(8000))
    } else {
        v.pointer("/routing/proxy/targetPort").cloned().unwrap_or(json!(8200))
    };
    let port = port.as_i64().map(|p| p.to_string()).unwrap_or_else(|| port.to_string());
    let mut containers = Vec::new();
    for (i, c) in sec.get("containers").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let field = format!("{role}.containers[{i}]");
        let mut out =
            json!({"name": c.get("name").cloned().unwrap_or(json!("vllm")), "image": c.get("image")});
        let user_args: Vec<Value> = c.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut chart_args: Vec<Value> = Vec::new();
        let parallel_args = |args: &mut Vec<Value>| {
            if ver >= (0, 3, 0) {
                for (flag, n) in [
                    ("--tensor-parallel-size", tp),
                    ("--data-parallel-size", dp),
                    ("--data-parallel-size-local", dpl),
                ] {
                    if n > 1 {
                        args.extend([json!(flag), json!(n.to_string())]);
                    }
                }
            } else {
                // v0.2.x takes the TP flag from the container's own `parallelism`, as a literal "$TP_SIZE"
                // that no shell expands.
                let ctp = c.pointer("/parallelism/tensor").and_then(int_of).unwrap_or(1);
                if ctp > 1 {
                    args.extend([json!("--tensor-parallel-size"), json!("$TP_SIZE")]);
                }
            }
        };
        match c.get("modelCommand").and_then(Value::as_str).unwrap_or("custom") {
            "vllmServe" => {
                out["command"] = json!(["vllm", "serve"]);
                chart_args.extend(model_arg(v).map(Value::from));
                chart_args.extend([json!("--port"), json!(port)]);
                parallel_args(&mut chart_args);
                chart_args.extend([json!("--served-model-name"), json!(model.unwrap_or(""))]);
            }
            "imageDefault" => {
                if let Some(m) = model_arg(v) {
                    chart_args.extend([json!("--model"), json!(m)]);
                }
                chart_args.extend([json!("--port"), json!(port)]);
                parallel_args(&mut chart_args);
                chart_args.extend([json!("--served-model-name"), json!(model.unwrap_or(""))]);
            }
            "custom" => {
                let Some(cmd) = c.get("command") else {
                    return Err(InvalidInput::new(
                        format!("{field}.command"),
                        "is missing: with modelCommand custom (the default) the chart requires a command",
                        "give the container a command, or set modelCommand: vllmServe",
                    ));
                };
                out["command"] = cmd.clone();
            }
            other => {
                return Err(InvalidInput::new(
                    format!("{field}.modelCommand"),
                    format!("{other:?} is not vllmServe, imageDefault or custom"),
                    "use one of vllmServe, imageDefault, custom (as the chart requires)",
                ))
            }
        }
        chart_args.extend(user_args);
        out["args"] = Value::Array(chart_args);
        let mut env: Vec<Value> = c.get("env").and_then(Value::as_array).cloned().unwrap_or_default();
        env.push(json!({"name": "DP_SIZE", "value": dp.to_string()}));
        env.push(json!({"name": "TP_SIZE", "value": tp.to_string()}));
        if ver >= (0, 3, 0) {
            env.push(json!({"name": "DP_SIZE_LOCAL", "value": dpl.to_string()}));
        }
        out["env"] = Value::Array(env);
        // GPU requests: the chart's count, or the values' own where that version lets it win.
        let mut resources = c.get("resources").cloned().unwrap_or(json!({}));
        if !resources.is_object() {
            return Err(InvalidInput::new(
                format!("{field}.resources"),
                "is not a mapping",
                "write resources as a mapping with limits and requests (as the chart expects)",
            ));
        }
        let gpus = if ver < (0, 3, 0) { tp } else { tp * dpl };
        if let Some(r) = resource.as_deref().filter(|_| !is_simulator_image(c)) {
            for part in ["limits", "requests"] {
                let given = resources.pointer(&format!("/{part}/{}", r.replace('/', "~1"))).is_some();
                let set = match ver {
                    v if v < (0, 2, 10) => tp > 1,
                    v if v < (0, 4, 0) => true,
                    _ => !given,
                };
                if set {
                    if !resources.get(part).is_some_and(Value::is_object) {
                        resources[part] = json!({});
                    }
                    resources[part][r] = json!(gpus.to_string());
                }
            }
        }
        out["resources"] = resources;
        containers.push(out);
    }
    let mut pod = json!({"containers": containers});
    if let Some(ns) = sec.get("nodeSelector").filter(|_| ver >= (0, 3, 0)) {
        pod["nodeSelector"] = ns.clone();
    }
    if let Some(a) = sec.get("acceleratorTypes") {
        let key = a.get("labelKey").cloned().unwrap_or(Value::Null);
        let values = a.get("labelValues").cloned().unwrap_or(json!([]));
        pod["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": "In", "values": values}]}]}}});
    }
    if let Some(extra) = sec.get("extraConfig").filter(|_| ver >= (0, 3, 0)) {
        merge_patch(&mut pod, extra);
    }
    Ok(pod)
}

/// v0.2.x charts also created the router's objects when asked (`routing.*.create`).
fn routing_objects(v: &Value, full: &str, pd_labels: &Map<String, Value>, out: &mut Rendered) {
    let r = |p: &str| v.pointer(&format!("/routing/{p}"));
    let pool_name = r("inferencePool/name").and_then(Value::as_str).unwrap_or(full).to_string();
    let epp = format!("{full}-epp");
    if r("inferencePool/create").and_then(Value::as_bool) == Some(true) {
        let ext = r("inferencePool/extensionRef").and_then(Value::as_str).unwrap_or(&epp);
        out.objects.push(
            json!({"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
            "metadata": {"name": pool_name}, "spec": {"selector": pd_labels,
            "targetPortNumber": r("servicePort").cloned().unwrap_or(json!(8000)),
            "extensionRef": {"name": ext, "failureMode": "FailClose"}}}),
        );
    }
    if r("epp/create").and_then(Value::as_bool) == Some(true) {
        let file = r("epp/pluginsConfigFile").and_then(Value::as_str).unwrap_or("default-config.yaml");
        let mut data = Map::new();
        for (k, text) in crate::epp::builtin::modelservice_v02() {
            data.insert(k.to_string(), json!(text));
        }
        for (k, text) in r("epp/pluginsCustomConfig").and_then(Value::as_object).into_iter().flatten() {
            data.insert(k.clone(), text.clone());
        }
        out.objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": epp, "annotations": {crate::epp::CONFIG_FILE_ANNOTATION: file}}, "data": data}));
    }
    if r("inferenceModel/create").and_then(Value::as_bool) == Some(true) {
        let mut spec = json!({"modelName": r("modelName").cloned().unwrap_or(json!(full)), "poolRef": {"name": pool_name}});
        if let Some(c) = r("inferenceModel/criticality") {
            spec["criticality"] = c.clone();
        }
        let name = r("inferenceModel/name").and_then(Value::as_str).unwrap_or(full);
        out.objects
            .push(json!({"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceModel",
            "metadata": {"name": name}, "spec": spec}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llmd::workload;

    fn values(path: &str) -> Value {
        let p = crate::shared(&format!("llm-d-manifests/{path}"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p} must be readable: {e}"));
        serde_yaml::from_str(&text).unwrap()
    }

    fn servers(r: &Rendered) -> Vec<workload::ModelServer> {
        r.objects
            .iter()
            .filter(|o| workload::KINDS.contains(&o["kind"].as_str().unwrap_or("")))
            .map(|o| workload::import(o).unwrap())
            .collect()
    }

    #[test]
    fn pd_values_have_both_roles() {
        let r = render(&values("2025-07-v0.2-pd-disaggregation/ms-pd/values.yaml"), "ms-pd", Some("v0.2.0"))
            .unwrap();
        let ms = servers(&r);
        let (d, p) = (&ms[0], &ms[1]);
        assert_eq!(
            (d.role, d.replicas, d.tensor_parallel(), d.gpus_per_pod),
            (Some(blis_sim::scenario::spec::PoolRole::Decode), 1, 4, Some(4))
        );
        assert_eq!((p.replicas, p.tensor_parallel(), p.gpus_per_pod), (4, 1, Some(1)));
        for m in &ms {
            assert_eq!(m.args.model.as_deref(), Some("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"));
            assert_eq!((m.args.vllm.block_size, m.args.vllm.max_model_len), (Some(128), Some(32000)));
            assert!(m.args.pd_connector);
            // The v0.2 chart's labels, whatever the values say.
            assert_eq!(m.labels.get("llm-d.ai/model").map(String::as_str), Some("ms-pd-llm-d-modelservice"));
            assert_eq!(m.labels.get("llm-d.ai/inferenceServing").map(String::as_str), Some("true"));
        }
    }

    #[test]
    fn parallelism_section_sets_tp_and_gpus() {
        let r = render(
            &values("2026-02-v0.5-precise-prefix-cache-aware/ms-kv-events/values.yaml"),
            "ms-kv-events",
            Some("v0.4.5"),
        )
        .unwrap();
        let ms = servers(&r);
        assert_eq!(ms.len(), 1, "prefill is not created in this guide");
        let d = &ms[0];
        assert_eq!((d.replicas, d.tensor_parallel(), d.gpus_per_pod), (8, 2, Some(2)));
        assert_eq!((d.args.vllm.block_size, d.args.vllm.gpu_memory_utilization), (Some(64), Some(0.95)));
        assert_eq!(d.args.model.as_deref(), Some("Qwen/Qwen3-32B"));
        assert_eq!(d.labels.get("llm-d.ai/model").map(String::as_str), Some("Qwen3-32B"));
        // The chart default label is merged under the values' labels from v0.4.5.
        assert_eq!(d.labels.get("llm-d.ai/inference-serving").map(String::as_str), Some("true"));
    }

    /// E.3: the chart's defaults by version (labels, prefill replicas 0).
    #[test]
    fn chart_defaults_by_version() {
        let v = json!({"modelArtifacts": {"name": "Qwen/Qwen3-32B", "uri": "hf://Qwen/Qwen3-32B"},
            "decode": {"containers": [{"name": "vllm", "image": "vllm", "modelCommand": "vllmServe"}]},
            "prefill": {"containers": [{"name": "vllm", "image": "vllm", "modelCommand": "vllmServe"}]}});
        let r = render(&v, "x", Some("v0.3.8")).unwrap();
        let ms = servers(&r);
        assert_eq!(ms.len(), 1, "prefill replicas default to 0");
        assert!(r.warnings.iter().any(|w| w.contains("prefill: replicas 0")), "{:?}", r.warnings);
        assert_eq!(ms[0].replicas, 1);
        assert_eq!(ms[0].labels.get("llm-d.ai/inferenceServing").map(String::as_str), Some("true"));
        assert_eq!(ms[0].labels.get("llm-d.ai/model").map(String::as_str), Some("random_model"));
        let ms = servers(&render(&v, "x", Some("v0.4.12")).unwrap());
        assert_eq!(ms[0].labels.get("llm-d.ai/inference-serving").map(String::as_str), Some("true"));
        assert!(!ms[0].labels.contains_key("llm-d.ai/inferenceServing"));
        let ms = servers(&render(&v, "x", Some("v0.2.0")).unwrap());
        assert_eq!(ms[0].labels.get("llm-d.ai/model").map(String::as_str), Some("x-llm-d-modelservice"));
        assert!(render(&v, "x", Some("latest")).is_err());
        assert!(render(&v, "x", None)
            .unwrap()
            .warnings
            .iter()
            .any(|w| w.contains("without a chart version")));
    }

    /// E.11(a): multinode data parallelism as the newest chart renders it.
    #[test]
    fn multinode_workers_and_data_parallelism() {
        let v = json!({"multinode": true, "modelArtifacts": {"name": "deepseek-ai/DeepSeek-V2-Lite", "uri": "hf://deepseek-ai/DeepSeek-V2-Lite"},
            "decode": {"replicas": 1, "parallelism": {"tensor": 1, "data": 16, "dataLocal": 8, "workers": 2},
                "containers": [{"name": "vllm", "image": "vllm", "modelCommand": "vllmServe"}]}});
        let ms = servers(&render(&v, "wep", Some("v0.4.12")).unwrap());
        let d = &ms[0];
        assert_eq!(
            (
                d.pods_per_replica,
                d.gpus_per_pod,
                d.data_parallel(),
                d.data_parallel_local(),
                d.tensor_parallel()
            ),
            (2, Some(8), 16, 8, 1)
        );
        assert!(d.check_parallelism(false).unwrap().is_empty());
        // Without `workers` the chart's default of 1 is merged in: 8 ranks start, 16 are expected.
        let mut one = v.clone();
        one["decode"]["parallelism"] = json!({"tensor": 1, "data": 16, "dataLocal": 8, "workers": 1});
        let d = &servers(&render(&one, "wep", Some("v0.4.12")).unwrap())[0];
        assert_eq!(d.pods_per_replica, 1);
        let e = d.check_parallelism(false).unwrap_err();
        assert!(e.problem.contains("DP 16") && e.problem.contains("start 8"), "{e}");
    }

    /// The v0.2 chart could also create the pool, the EPP config and an InferenceModel.
    #[test]
    fn v02_routing_objects() {
        let v = json!({"modelArtifacts": {"uri": "hf://m/m"}, "routing": {"modelName": "m/m",
            "inferencePool": {"create": true, "name": "pool"}, "inferenceModel": {"create": true, "criticality": "Critical"},
            "epp": {"create": true, "pluginsConfigFile": "c.yaml", "pluginsCustomConfig": {"c.yaml": "plugins: []"}}},
            "decode": {"replicas": 2, "containers": [{"name": "vllm", "image": "vllm", "modelCommand": "vllmServe"}]}});
        let r = render(&v, "ms", Some("v0.2.0")).unwrap();
        let kinds: Vec<&str> = r.objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Deployment", "InferencePool", "ConfigMap", "InferenceModel"]);
        assert_eq!(r.objects[1]["spec"]["selector"]["llm-d.ai/model"], "ms-llm-d-modelservice");
        assert_eq!(r.objects[2]["data"]["c.yaml"], "plugins: []");
        assert!(r.objects[2]["data"]["default-config.yaml"].is_string());
        assert_eq!(r.objects[3]["spec"]["criticality"], "Critical");
    }
}
