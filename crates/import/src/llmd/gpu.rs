//! Which GPU a model server runs on, read from what pins its pods to nodes: node selectors and node
//! affinity on the labels of NVIDIA GPU Feature Discovery (`nvidia.com/gpu.product`), CoreWeave
//! (`gpu.nvidia.com/model`), GKE (`cloud.google.com/gke-accelerator`), cloud instance types
//! (`node.kubernetes.io/instance-type`, Karpenter), the AMD and Intel device plugins, and the WVA
//! `inference.optimization/acceleratorName` label. The memory variant is part of the identity
//! (`A100-SXM4-40GB` is not an 80 GB A100). A value on a GPU label that names no GPU the twin knows
//! is an error, unless a memory label lets it pick by memory (with a warning).

use std::collections::BTreeMap;

use serde_json::Value;

use blis_sim::error::InvalidInput;

/// A GPU identified from a label: the profile name and the label it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuPick {
    /// Catalog (or HardwareProfile) name.
    pub name: String,
    /// `key=value` that named it.
    pub via: String,
    /// What was assumed, if anything.
    pub warning: Option<String>,
}

/// Label keys whose value names a GPU product (model and memory variant), in the order they are read.
pub const PRODUCT_KEYS: [&str; 10] = [
    "nvidia.com/gpu.product",
    "gpu.nvidia.com/model",
    "gpu.nvidia.com/class",
    "cloud.google.com/gke-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
    "amd.com/gpu.product-name",
    "beta.amd.com/gpu.product-name",
    "habana.ai/product.name",
    "gpu.intel.com/product",
    "cloud.google.com/gke-tpu-accelerator",
];

/// Label keys whose value is a machine type (GPU model and count implied).
pub const INSTANCE_KEYS: [&str; 2] = ["node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"];

/// Label keys with the GPU memory: (key, MiB per unit of the value).
const MEMORY_KEYS: [(&str, f64); 4] = [
    ("nvidia.com/gpu.memory", 1.0),
    ("karpenter.k8s.aws/instance-gpu-memory", 1.0),
    ("gpu.nvidia.com/vram", 1024.0),
    ("amd.com/gpu.vram", 1024.0),
];

/// The label WVA puts on a VariantAutoscaling / HPA naming the accelerator.
pub const WVA_ACCELERATOR_LABEL: &str = "inference.optimization/acceleratorName";

fn tokens(v: &str) -> Vec<String> {
    v.to_ascii_uppercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The profile a GPU product string names (GFD device names, GKE accelerator names, CoreWeave
/// models and classes, AMD product names, WVA accelerator names), with a note when the memory
/// variant had to be assumed. Profiles outside the built-in catalog (Gaudi, TPU, V100...) are named
/// so that a HardwareProfile of that name can supply them.
pub fn product(value: &str) -> Option<(&'static str, Option<&'static str>)> {
    let t = tokens(value);
    let has = |x: &str| t.iter().any(|y| y == x);
    let any = |f: &dyn Fn(&str) -> bool| t.iter().any(|y| f(y));
    let mem = |gb: &str| t.iter().any(|y| y == gb || y.starts_with(gb));
    if any(&|y| y.starts_with("TPU")) {
        return Some((tpu(value), None));
    }
    Some(match () {
        _ if any(&|y| y.starts_with("GB200")) => ("GB200-186GB", None),
        _ if any(&|y| y.starts_with("GB300")) => ("GB300-288GB", None),
        _ if has("B200") => ("B200-180GB", None),
        _ if has("B300") => ("B300-288GB", None),
        _ if has("H200") && has("NVL") => ("H200-NVL-141GB", None),
        _ if has("H200") => ("H200-SXM-141GB", None),
        _ if has("H100") && has("NVL") => ("H100-NVL-94GB", None),
        _ if has("H100") && any(&|y| y.starts_with("PCIE")) => ("H100-PCIe-80GB", None),
        _ if has("H100") => ("H100-SXM-80GB", None),
        _ if has("H800") => ("H800-80GB", None),
        _ if has("H20") => ("H20-96GB", None),
        _ if has("A100") && mem("40GB") => ("A100-SXM-40GB", None),
        _ if has("A100") && mem("80GB") => ("A100-SXM-80GB", None),
        // GKE's `nvidia-tesla-a100` is the 40 GB A100 (A2 Standard); `nvidia-a100-80gb` is the other.
        _ if has("A100") && has("TESLA") => ("A100-SXM-40GB", None),
        _ if has("A100") => ("A100-SXM-80GB", Some("the memory variant is not named; assumed 80 GB")),
        _ if has("A10G") => ("A10G-24GB", None),
        _ if has("A10") => ("A10-24GB", None),
        _ if has("L40S") => ("L40S-48GB", None),
        _ if has("L40") => ("L40-48GB", None),
        _ if has("L4") => ("L4-24GB", None),
        _ if has("T4") => ("T4-16GB", None),
        _ if has("V100") && mem("32GB") => ("V100-32GB", None),
        _ if has("V100") => ("V100-16GB", None),
        _ if has("MI300X") => ("MI300X-192GB", None),
        _ if any(&|y| y.starts_with("MI325")) => ("MI325X-256GB", None),
        _ if any(&|y| y.starts_with("MI355")) => ("MI355X-288GB", None),
        _ if has("GAUDI") && has("3") => ("Gaudi3-128GB", None),
        _ if has("GAUDI") || any(&|y| y.starts_with("GAUDI2")) => ("Gaudi2-96GB", None),
        _ => return None,
    })
}

/// GPU model words a README names in prose ("validated on 8xH200"), as `product` reads them.
const PROSE_MODELS: [&str; 19] = [
    "H100", "H200", "H20", "H800", "B200", "B300", "GB200", "GB300", "A100", "A10G", "A10", "L40S", "L40",
    "L4", "T4", "V100", "MI300X", "MI325X", "MI355X",
];

/// The distinct catalogued GPUs a text names (a README's "validated on an 8xH200 cluster"): each word
/// (a count prefix such as `8x` dropped) that is a GPU model, with the profile it names, sorted by name.
pub fn named_in_text(text: &str) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let w = word.to_ascii_uppercase();
        let model = w.trim_start_matches(|c: char| c.is_ascii_digit());
        let model = if model.len() < w.len() { model.strip_prefix('X').unwrap_or(model) } else { model };
        if !PROSE_MODELS.contains(&model) {
            continue;
        }
        if let Some((name, _)) = product(model) {
            if !out.iter().any(|(_, n)| *n == name) {
                out.push((word.to_string(), name));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(b.1));
    out
}

/// TPU names keep their generation (`tpu-v6e-slice` -> `TPU-v6e`).
fn tpu(value: &str) -> &'static str {
    let v = value.to_ascii_lowercase();
    if v.contains("v7") || v.contains("7x") {
        "TPU-v7"
    } else if v.contains("v6e") {
        "TPU-v6e"
    } else if v.contains("v5p") {
        "TPU-v5p"
    } else if v.contains("v5") {
        "TPU-v5e"
    } else {
        "TPU"
    }
}

/// The GPU a cloud machine type carries (AWS, Azure, OCI, GCP).
pub fn instance_type(value: &str) -> Option<&'static str> {
    let v = value.to_ascii_lowercase();
    let family = v.split('.').next().unwrap_or("");
    Some(match () {
        // AWS.
        _ if family == "p5" => "H100-SXM-80GB",
        _ if family == "p5e" || family == "p5en" => "H200-SXM-141GB",
        _ if family == "p4d" => "A100-SXM-40GB",
        _ if family == "p4de" => "A100-SXM-80GB",
        _ if family == "p6-b200" => "B200-180GB",
        _ if family.starts_with("p6e-gb200") => "GB200-186GB",
        _ if family == "g5" => "A10G-24GB",
        _ if family == "g6" => "L4-24GB",
        _ if family == "g6e" => "L40S-48GB",
        _ if family == "g4dn" => "T4-16GB",
        _ if family == "p3" || family == "p3dn" => "V100-16GB",
        // Azure.
        _ if v.contains("nd96isr_h100") || v.contains("nd96is_h100") => "H100-SXM-80GB",
        _ if v.contains("nd96isr_h200") => "H200-SXM-141GB",
        _ if v.contains("ncads_h100") || v.contains("nc40ads_h100") || v.contains("nc80adis_h100") => {
            "H100-NVL-94GB"
        }
        _ if v.contains("nd96amsr_a100") => "A100-SXM-80GB",
        _ if v.contains("ads_a100_v4") => "A100-SXM-80GB",
        _ if v.contains("nd96asr_v4") || v.contains("nd96asr_a100") => "A100-SXM-40GB",
        _ if v.contains("ads_a10_v5") => "A10-24GB",
        _ if v.contains("gb200") => "GB200-186GB",
        _ if v.contains("mi300x") => "MI300X-192GB",
        // OCI.
        _ if v.starts_with("bm.gpu.h100") => "H100-SXM-80GB",
        _ if v.starts_with("bm.gpu.h200") => "H200-SXM-141GB",
        _ if v.starts_with("bm.gpu.a100-v2") => "A100-SXM-80GB",
        _ if v.starts_with("bm.gpu4") => "A100-SXM-40GB",
        _ if v.starts_with("bm.gpu.b200") => "B200-180GB",
        _ if v.starts_with("bm.gpu.l40s") => "L40S-48GB",
        _ if v.starts_with("bm.gpu.a10") || v.starts_with("vm.gpu.a10") => "A10-24GB",
        _ if v.starts_with("bm.gpu.mi300x") => "MI300X-192GB",
        // GCP machine types.
        _ if v.starts_with("a3-ultragpu") => "H200-SXM-141GB",
        _ if v.starts_with("a3-") => "H100-SXM-80GB",
        _ if v.starts_with("a4x-") => "GB200-186GB",
        _ if v.starts_with("a4-") => "B200-180GB",
        _ if v.starts_with("a2-ultragpu") => "A100-SXM-80GB",
        _ if v.starts_with("a2-") => "A100-SXM-40GB",
        _ if v.starts_with("g2-") => "L4-24GB",
        _ => return None,
    })
}

/// Memory (GiB) of the built-in GPU profiles, for picking by a memory label.
fn by_memory(gib: f64) -> Option<(String, f64)> {
    blis_sim::catalog::gpu::builtin_names()
        .into_iter()
        .filter_map(|n| blis_sim::catalog::gpu::builtin(n).map(|g| (n.to_string(), g.memory_gib)))
        .filter(|(_, m)| (m - gib).abs() / m <= 0.08)
        .min_by(|a, b| (a.1 - gib).abs().total_cmp(&(b.1 - gib).abs()))
}

/// Label key / value pairs.
pub type LabelPairs = Vec<(String, String)>;

/// Label pairs that pin a pod: its `nodeSelector`, then each value of the `In` expressions of its
/// required node affinity. Preferred terms are returned separately.
pub fn pod_labels(pod: &Value) -> (LabelPairs, LabelPairs) {
    let mut required = Vec::new();
    if let Some(m) = pod.get("nodeSelector").and_then(Value::as_object) {
        for (k, v) in m {
            required.push((k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
        }
    }
    let exprs = |terms: Option<&Value>, out: &mut Vec<(String, String)>| {
        for t in terms.and_then(Value::as_array).into_iter().flatten() {
            let t = t.get("preference").unwrap_or(t);
            for e in t.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
                if e.get("operator").and_then(Value::as_str).unwrap_or("In") != "In" {
                    continue;
                }
                let key = e.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                for v in e.get("values").and_then(Value::as_array).into_iter().flatten() {
                    out.push((key.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
                }
            }
        }
    };
    let na = pod.pointer("/affinity/nodeAffinity");
    exprs(
        na.and_then(|n| n.pointer("/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")),
        &mut required,
    );
    let mut preferred = Vec::new();
    exprs(na.and_then(|n| n.get("preferredDuringSchedulingIgnoredDuringExecution")), &mut preferred);
    (required, preferred)
}

/// The GPU named among label pairs, or an error naming the label whose value is not a GPU the twin
/// knows (`where_` names where the pairs come from, for the error).
pub fn from_labels(pairs: &[(String, String)], where_: &str) -> Result<Option<GpuPick>, InvalidInput> {
    let memory_gib: Option<f64> = MEMORY_KEYS.iter().find_map(|(k, mib)| {
        let v = pairs.iter().find(|(pk, _)| pk == k)?.1.trim().to_ascii_uppercase();
        let num: f64 = v.trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse().ok()?;
        Some(num * mib / 1024.0)
    });
    for (k, v) in pairs {
        let via = format!("{k}={v}");
        let found = if PRODUCT_KEYS.contains(&k.as_str()) || k == WVA_ACCELERATOR_LABEL {
            product(v).map(|(n, w)| (n.to_string(), w.map(str::to_string)))
        } else if INSTANCE_KEYS.contains(&k.as_str()) {
            instance_type(v).map(|n| (n.to_string(), None))
        } else {
            continue;
        };
        match found {
            Some((name, warning)) => return Ok(Some(GpuPick { name, via, warning })),
            None => match memory_gib.and_then(by_memory) {
                Some((name, _)) => {
                    let warning = Some(format!(
                        "{via} is not a GPU the twin knows; picked {name} by its memory ({:.0} GiB)",
                        memory_gib.unwrap_or_default()
                    ));
                    return Ok(Some(GpuPick { name, via, warning }));
                }
                None => {
                    return Err(InvalidInput::new(
                        format!("{where_}: {k}"),
                        if v.contains('$') || v.contains("{{") {
                            format!("{v:?} is an unexpanded variable, not a GPU (or machine type)")
                        } else {
                            format!("{v:?} is not a GPU (or machine type) the twin knows")
                        },
                        format!(
                            "set spec.hardware.gpu to a built-in profile ({}) or to the name of a HardwareProfile describing it",
                            blis_sim::catalog::gpu::builtin_names().join(", ")
                        ),
                    ))
                }
            },
        }
    }
    Ok(None)
}

/// The GPU a pod spec asks for: required labels first, then preferred ones (with a warning).
pub fn of_pod(pod: &Value, where_: &str) -> Result<Option<GpuPick>, InvalidInput> {
    let (required, preferred) = pod_labels(pod);
    if let Some(p) = from_labels(&required, where_)? {
        return Ok(Some(p));
    }
    Ok(from_labels(&preferred, where_)?.map(|mut p| {
        p.warning = Some(format!(
            "GPU read from a preferred (not required) node affinity {}; pods may land elsewhere",
            p.via
        ));
        p
    }))
}

/// The labels of a map (`{k: v}`), as pairs.
pub fn pairs_of(map: Option<&Value>) -> Vec<(String, String)> {
    let m: BTreeMap<String, String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    m.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pick(k: &str, v: &str) -> String {
        from_labels(&[(k.into(), v.into())], "x").unwrap().unwrap().name
    }

    #[test]
    fn labels_name_the_gpu_and_its_memory_variant() {
        for (k, v, want) in [
            ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB", "A100-SXM-40GB"),
            ("cloud.google.com/gke-accelerator", "nvidia-tesla-a100", "A100-SXM-40GB"),
            ("node.kubernetes.io/instance-type", "p4d.24xlarge", "A100-SXM-40GB"),
            ("node.kubernetes.io/instance-type", "Standard_ND96asr_v4", "A100-SXM-40GB"),
            ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB", "A100-SXM-80GB"),
            ("cloud.google.com/gke-accelerator", "nvidia-a100-80gb", "A100-SXM-80GB"),
            ("node.kubernetes.io/instance-type", "g5.12xlarge", "A10G-24GB"),
            ("nvidia.com/gpu.product", "NVIDIA-A10G", "A10G-24GB"),
            ("cloud.google.com/gke-accelerator", "nvidia-l4", "L4-24GB"),
            ("gpu.nvidia.com/model", "H200", "H200-SXM-141GB"),
            ("node.kubernetes.io/instance-type", "p5en.48xlarge", "H200-SXM-141GB"),
            ("cloud.google.com/gke-accelerator", "nvidia-h200-141gb", "H200-SXM-141GB"),
            ("nvidia.com/gpu.product", "NVIDIA-H100-PCIe", "H100-PCIe-80GB"),
            ("nvidia.com/gpu.product", "NVIDIA-H100-NVL", "H100-NVL-94GB"),
            ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3", "H100-SXM-80GB"),
            ("gpu.nvidia.com/class", "H100_NVLINK_80GB", "H100-SXM-80GB"),
            ("cloud.google.com/gke-accelerator", "nvidia-h100-mega-80gb", "H100-SXM-80GB"),
            ("amd.com/gpu.product-name", "AMD_Instinct_MI300X_OAM", "MI300X-192GB"),
            ("nvidia.com/gpu.product", "NVIDIA-GB200", "GB200-186GB"),
            ("node.kubernetes.io/instance-type", "BM.GPU.GB200.4", "GB200-186GB"),
            ("nvidia.com/gpu.product", "NVIDIA-L40S", "L40S-48GB"),
            ("nvidia.com/gpu.product", "Tesla-T4", "T4-16GB"),
            ("habana.ai/product.name", "Intel-Gaudi-2-96GB", "Gaudi2-96GB"),
            ("cloud.google.com/gke-tpu-accelerator", "tpu-v6e-slice", "TPU-v6e"),
            ("inference.optimization/acceleratorName", "H100", "H100-SXM-80GB"),
        ] {
            assert_eq!(pick(k, v), want, "{k}={v}");
        }
    }

    #[test]
    fn prose_names_gpus_by_model_word() {
        let names = |t: &str| named_in_text(t).into_iter().map(|(_, n)| n).collect::<Vec<_>>();
        assert_eq!(names("validated on an 8xH200 cluster with infiniband"), ["H200-SXM-141GB"]);
        assert_eq!(names("H100 or H200; 2 x H100 also work"), ["H100-SXM-80GB", "H200-SXM-141GB"]);
        assert_eq!(names("needs 4 GPUs, 80 GB each, and 16 CPUs"), Vec::<&str>::new());
        assert_eq!(named_in_text("on 8xH200")[0].0, "8xH200", "the word as written");
    }

    #[test]
    fn unknown_values_pick_by_memory_or_fail_naming_the_label() {
        let p = from_labels(
            &[
                ("nvidia.com/gpu.product".into(), "NVIDIA-Foo".into()),
                ("nvidia.com/gpu.memory".into(), "81559".into()),
            ],
            "Deployment d",
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.name, "H100-SXM-80GB");
        assert!(p.warning.unwrap().contains("NVIDIA-Foo"));
        let e = from_labels(&[("nvidia.com/gpu.product".into(), "NVIDIA-Foo".into())], "Deployment d")
            .unwrap_err();
        assert_eq!(e.field, "Deployment d: nvidia.com/gpu.product");
        assert!(e.problem.contains("NVIDIA-Foo") && e.fix.contains("HardwareProfile"), "{e}");
        // Labels that say nothing about the GPU are not an error.
        assert_eq!(
            from_labels(&[("llm-d.ai/accelerator-vendor".into(), "nvidia".into())], "x").unwrap(),
            None
        );
    }

    #[test]
    fn selectors_and_affinity() {
        let pod = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu.nvidia.com/model", "operator": "In", "values": ["H200"]}]}]}}}});
        assert_eq!(of_pod(&pod, "x").unwrap().unwrap().name, "H200-SXM-141GB");
        let pref = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-L4"]}]}}]}}});
        let p = of_pod(&pref, "x").unwrap().unwrap();
        assert_eq!(p.name, "L4-24GB");
        assert!(p.warning.unwrap().contains("preferred"));
        let sel = json!({"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H200"}});
        assert_eq!(of_pod(&sel, "x").unwrap().unwrap().via, "nvidia.com/gpu.product=NVIDIA-H200");
        assert_eq!(of_pod(&json!({}), "x").unwrap(), None);
    }
}
