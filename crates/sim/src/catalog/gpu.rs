//! GPU profiles: the accelerator facts the capacity planner and the latency models need.

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calibration::Calibration;
use crate::error::InvalidInput;

/// One accelerator type: memory, peak compute and bandwidth, interconnect, price, and the efficiency
/// factors the roofline model applies to the peaks. All figures are per GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuProfile {
    /// Profile name, e.g. `H100-SXM-80GB`.
    pub name: String,
    /// Device memory in GiB.
    #[schemars(range(min = 0.0, max = 4096.0))]
    pub memory_gib: f64,
    /// Dense BF16 (and FP16) tensor peak, TFLOPS.
    pub tflops_bf16: f64,
    /// Dense FP8 tensor peak, TFLOPS; 0 when the GPU has no FP8 support.
    #[serde(default)]
    pub tflops_fp8: f64,
    /// Peak device-memory bandwidth, TB/s.
    pub hbm_tbps: f64,
    /// Per-GPU, per-direction interconnect bandwidth for tensor-parallel all-reduce, GB/s.
    pub nvlink_gbps: f64,
    /// Per-GPU scale-out network bandwidth between nodes (RDMA NIC), GB/s; used by expert-parallel
    /// all-to-all that leaves the node (default 50, a 400 Gb/s NIC per GPU).
    #[serde(default = "default_scale_out_gbps")]
    pub scale_out_gbps: f64,
    /// Price of one GPU-hour in dollars (on demand).
    #[serde(default)]
    pub dollars_per_gpu_hour: f64,
    /// Fraction of peak FLOPS achieved by prefill (roofline model).
    #[serde(default = "default_mfu_prefill")]
    pub mfu_prefill: f64,
    /// Fraction of peak FLOPS achieved by decode (roofline model).
    #[serde(default = "default_mfu_decode")]
    pub mfu_decode: f64,
    /// Fraction of peak memory bandwidth achieved when streaming weights and KV (roofline model).
    #[serde(default = "default_hbm_efficiency")]
    pub hbm_efficiency: f64,
    /// Fixed latency of one all-reduce, µs (roofline model).
    #[serde(default = "default_all_reduce_latency_us")]
    pub all_reduce_latency_us: f64,
    /// Extra wall time per transformer layer of every engine step when vLLM runs `--enforce-eager` (no
    /// CUDA graphs, so each layer's kernels are launched one by one from the CPU), µs; absent = not
    /// measured on this GPU (eager mode then costs nothing in the prediction, with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eager_us_per_layer: Option<f64>,
    /// Fraction by which the prompt part of a step is slower under `--enforce-eager` than with the
    /// compiled model (no fused kernels for the token-parallel work), measured apart from the launch cost;
    /// absent = not measured on this GPU (prompt work then costs the same in both modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eager_prefill_slowdown: Option<f64>,
    /// Coefficients of the calibrated latency model (fitted by `blis calibrate`, or transferred from the
    /// nearest calibrated GPU); absent = only the roofline model is available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

fn default_scale_out_gbps() -> f64 {
    50.0
}
fn default_mfu_prefill() -> f64 {
    0.45
}
fn default_mfu_decode() -> f64 {
    0.30
}
fn default_hbm_efficiency() -> f64 {
    0.80
}
fn default_all_reduce_latency_us() -> f64 {
    6.0
}

impl GpuProfile {
    /// Checks that every figure is usable (positive where the models divide by it), naming the bad field.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let positive = [
            ("memoryGib", self.memory_gib),
            ("tflopsBf16", self.tflops_bf16),
            ("hbmTbps", self.hbm_tbps),
            ("nvlinkGbps", self.nvlink_gbps),
            ("scaleOutGbps", self.scale_out_gbps),
        ];
        for (field, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(InvalidInput::new(
                    field,
                    format!("must be a positive number (got {v})"),
                    "take the figure from the GPU's datasheet",
                ));
            }
        }
        let non_negative = [
            ("tflopsFp8", self.tflops_fp8),
            ("dollarsPerGpuHour", self.dollars_per_gpu_hour),
            ("allReduceLatencyUs", self.all_reduce_latency_us),
            ("eagerUsPerLayer", self.eager_us_per_layer.unwrap_or(0.0)),
        ];
        for (field, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(InvalidInput::new(
                    field,
                    format!("must be >= 0 (got {v})"),
                    "use 0 or a positive number",
                ));
            }
        }
        let slowdown = self.eager_prefill_slowdown.unwrap_or(0.0);
        if !(slowdown.is_finite() && (0.0..1.0).contains(&slowdown)) {
            return Err(InvalidInput::new(
                "eagerPrefillSlowdown",
                format!("must be in [0, 1) (got {slowdown})"),
                "give the fraction by which eager mode slows prompt work, e.g. 0.07",
            ));
        }
        let fractions = [
            ("mfuPrefill", self.mfu_prefill),
            ("mfuDecode", self.mfu_decode),
            ("hbmEfficiency", self.hbm_efficiency),
        ];
        for (field, v) in fractions {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(InvalidInput::new(
                    field,
                    format!("must be in (0, 1] (got {v})"),
                    "use a fraction of the peak, e.g. 0.4",
                ));
            }
        }
        Ok(())
    }

    /// Whether the GPU has FP8 tensor cores (so FP8 weights run at the FP8 peak).
    pub fn has_fp8(&self) -> bool {
        self.tflops_fp8 > 0.0
    }
}

const GPUS_YAML: &str = include_str!("../../data/gpus.yaml");

/// Calibrations shipped with the catalog (produced by `blis calibrate`), compiled in.
const CALIBRATIONS: &[&str] = &[
    include_str!("../../data/profiles/H100-SXM-80GB.yaml"),
    include_str!("../../data/profiles/A100-SXM-80GB.yaml"),
];

/// The shipped calibrations (a parse failure is a build defect, checked by a test).
pub fn shipped_calibrations() -> Vec<Calibration> {
    CALIBRATIONS.iter().filter_map(|t| serde_yaml::from_str(t).ok()).collect()
}

/// Attaches calibrations: each profile gets its own if one was shipped, else the one of the nearest
/// GPU calibrated on its own measurements (by memory bandwidth and compute peak, on a log scale), flagged
/// as transferred. A shipped calibration that is itself a refined transfer is only used for its own GPU.
pub fn attach_calibrations(table: &mut [GpuProfile], shipped: &[Calibration]) {
    let own: Vec<(GpuProfile, Calibration)> = table
        .iter()
        .filter_map(|g| shipped.iter().find(|c| c.gpu == g.name).map(|c| (g.clone(), c.clone())))
        .collect();
    let fitted: Vec<&(GpuProfile, Calibration)> =
        own.iter().filter(|(_, c)| c.transferred_from.is_none()).collect();
    for g in table.iter_mut() {
        if let Some((_, c)) = own.iter().find(|(f, _)| f.name == g.name) {
            g.calibration = Some(c.clone());
            continue;
        }
        let distance = |f: &GpuProfile| {
            (g.hbm_tbps / f.hbm_tbps).ln().abs() + (g.tflops_bf16 / f.tflops_bf16).ln().abs()
        };
        let nearest = fitted.iter().min_by(|a, b| distance(&a.0).total_cmp(&distance(&b.0)));
        g.calibration = nearest.map(|(f, c)| c.transferred(f, g));
    }
}

static TABLE: OnceLock<Vec<GpuProfile>> = OnceLock::new();

/// The built-in table, parsed once; the YAML is compiled in and checked by a test, so a parse failure is a
/// build defect and yields an empty table rather than a panic.
fn table() -> &'static [GpuProfile] {
    TABLE.get_or_init(|| {
        let mut t: Vec<GpuProfile> = serde_yaml::from_str(GPUS_YAML).unwrap_or_default();
        attach_calibrations(&mut t, &shipped_calibrations());
        t
    })
}

/// Short names accepted for the built-in profiles (lower case), mapped to the profile name.
const ALIASES: &[(&str, &str)] = &[
    ("h100", "H100-SXM-80GB"),
    ("h100-sxm", "H100-SXM-80GB"),
    ("h100-80gb", "H100-SXM-80GB"),
    ("h100-sxm5", "H100-SXM-80GB"),
    ("h100-sxm5-80gb", "H100-SXM-80GB"),
    ("h200", "H200-SXM-141GB"),
    ("h200-sxm", "H200-SXM-141GB"),
    ("h200-141gb", "H200-SXM-141GB"),
    ("a100", "A100-SXM-80GB"),
    ("a100-sxm", "A100-SXM-80GB"),
    ("a100-80gb", "A100-SXM-80GB"),
    ("a100-80", "A100-SXM-80GB"),
    ("a100-sxm4-80gb", "A100-SXM-80GB"),
    ("l40s", "L40S-48GB"),
    ("b200", "B200-180GB"),
    ("b200-sxm", "B200-180GB"),
    ("mi300x", "MI300X-192GB"),
    ("a100-40gb", "A100-SXM-40GB"),
    ("a100-sxm4-40gb", "A100-SXM-40GB"),
    ("h100-pcie", "H100-PCIe-80GB"),
    ("h100-nvl", "H100-NVL-94GB"),
    ("h200-nvl", "H200-NVL-141GB"),
    ("gb200", "GB200-186GB"),
    ("l4", "L4-24GB"),
    ("a10g", "A10G-24GB"),
    ("a10", "A10-24GB"),
    ("t4", "T4-16GB"),
    ("mi325x", "MI325X-256GB"),
];

/// Looks up a built-in GPU profile by name or short alias, case-insensitively (`H100`, `a100-80gb`, ...).
pub fn builtin(name: &str) -> Option<GpuProfile> {
    let key = name.trim().to_ascii_lowercase();
    let target = ALIASES.iter().find(|(alias, _)| *alias == key).map(|(_, full)| full.to_ascii_lowercase());
    let wanted = target.as_deref().unwrap_or(&key);
    if TABLE.get().is_none() {
        if let Some(g) = own_calibrated(wanted) {
            return Some(g);
        }
    }
    table().iter().find(|g| g.name.to_ascii_lowercase() == wanted).cloned()
}

/// The built-in profile `wanted` (lower case) with its own shipped calibration, each parsed alone (a
/// command that needs one GPU does not parse the whole table); `None` when it has no calibration of
/// its own (it then takes the nearest fitted GPU's, which needs the table).
fn own_calibrated(wanted: &str) -> Option<GpuProfile> {
    // Entries start at a line `- name: ...`; what comes before the first is comments.
    let entry = GPUS_YAML.split("\n- ").skip(1).find(|e| {
        e.strip_prefix("name:")
            .and_then(|r| r.lines().next())
            .is_some_and(|n| n.trim().eq_ignore_ascii_case(wanted))
    })?;
    let calibration = CALIBRATIONS.iter().find(|t| {
        t.lines().any(|l| l.strip_prefix("gpu:").is_some_and(|n| n.trim().eq_ignore_ascii_case(wanted)))
    })?;
    let mut one: Vec<GpuProfile> = serde_yaml::from_str(&format!("- {entry}")).ok()?;
    let calibration: Calibration = serde_yaml::from_str(calibration).ok()?;
    let g = one.pop().filter(|g| one.is_empty() && g.name.to_ascii_lowercase() == wanted)?;
    (calibration.gpu == g.name).then_some(GpuProfile { calibration: Some(calibration), ..g })
}

/// Names of the built-in GPU profiles, for help texts and error messages.
pub fn builtin_names() -> Vec<&'static str> {
    table().iter().map(|g| g.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_validates() {
        let parsed: Vec<GpuProfile> = serde_yaml::from_str(GPUS_YAML).expect("data/gpus.yaml parses");
        assert_eq!(parsed.len(), 16);
        for g in &parsed {
            g.validate().unwrap_or_else(|e| panic!("{}: {e}", g.name));
            assert!(g.dollars_per_gpu_hour > 0.0, "{} has a price", g.name);
        }
        assert_eq!(
            builtin_names(),
            vec![
                "H100-SXM-80GB",
                "H200-SXM-141GB",
                "A100-SXM-80GB",
                "L40S-48GB",
                "B200-180GB",
                "MI300X-192GB",
                "A100-SXM-40GB",
                "H100-PCIe-80GB",
                "H100-NVL-94GB",
                "H200-NVL-141GB",
                "GB200-186GB",
                "L4-24GB",
                "A10G-24GB",
                "A10-24GB",
                "T4-16GB",
                "MI325X-256GB"
            ]
        );
    }

    /// A GPU with a calibration of its own, looked up alone, is its entry in the whole table.
    #[test]
    fn a_gpu_parsed_alone_is_its_table_entry() {
        let mut alone = 0;
        for g in table() {
            if let Some(one) = own_calibrated(&g.name.to_ascii_lowercase()) {
                assert_eq!(&one, g);
                alone += 1;
            }
        }
        assert_eq!(alone, CALIBRATIONS.len(), "every shipped calibration's GPU is found alone");
    }

    #[test]
    fn aliases_resolve_case_insensitively() {
        for (alias, full) in [
            ("H100", "H100-SXM-80GB"),
            ("h100-sxm", "H100-SXM-80GB"),
            ("h100-sxm-80gb", "H100-SXM-80GB"),
            ("A100", "A100-SXM-80GB"),
            ("A100-80GB", "A100-SXM-80GB"),
            ("L40S", "L40S-48GB"),
            ("H200", "H200-SXM-141GB"),
            ("B200", "B200-180GB"),
            ("MI300X", "MI300X-192GB"),
            (" mi300x-192gb ", "MI300X-192GB"),
        ] {
            assert_eq!(builtin(alias).map(|g| g.name), Some(full.to_string()), "{alias}");
        }
        assert!(builtin("TPU-v5e").is_none());
    }

    #[test]
    fn json_schema_and_round_trip() {
        let text = serde_json::to_value(schemars::schema_for!(GpuProfile)).unwrap().to_string();
        assert!(text.contains("memoryGib") && text.contains("allReduceLatencyUs"));
        let g = builtin("B200").unwrap();
        let back: GpuProfile = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn datasheet_figures() {
        let h100 = builtin("H100").unwrap();
        assert_eq!(
            (h100.memory_gib, h100.tflops_bf16, h100.tflops_fp8, h100.hbm_tbps),
            (80.0, 989.5, 1979.0, 3.35)
        );
        let a100 = builtin("A100").unwrap();
        assert!(!a100.has_fp8());
        assert!(h100.has_fp8());
        let h200 = builtin("H200").unwrap();
        assert_eq!(h200.tflops_bf16, h100.tflops_bf16);
        assert!(h200.hbm_tbps > h100.hbm_tbps);
    }

    #[test]
    fn user_profile_gets_default_efficiencies_and_bad_values_are_named() {
        let g: GpuProfile = serde_yaml::from_str(
            "name: X\nmemoryGib: 24\ntflopsBf16: 100\nhbmTbps: 1\nnvlinkGbps: 32\ndollarsPerGpuHour: 1\n",
        )
        .unwrap();
        assert_eq!(g.mfu_prefill, 0.45);
        assert_eq!(g.tflops_fp8, 0.0);
        g.validate().unwrap();
        let bad = GpuProfile { hbm_efficiency: 1.5, ..g.clone() };
        assert_eq!(bad.validate().unwrap_err().field, "hbmEfficiency");
        let bad = GpuProfile { memory_gib: 0.0, ..g };
        assert_eq!(bad.validate().unwrap_err().field, "memoryGib");
    }
}
