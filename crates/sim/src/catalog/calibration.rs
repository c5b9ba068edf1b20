//! A GPU profile's calibration: the fitted coefficients of the calibrated step-time model, where
//! they came from, and how they carry over to another GPU. Data of the catalog; the model that uses
//! them is [`crate::latency::calibrated`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::GpuProfile;
use crate::error::InvalidInput;

/// Number of step-time basis terms.
pub const NUM_BASIS: usize = 14;
/// Context length (tokens per sequence) beyond which the `longContextKv` term counts KV reads and the
/// `longPromptCompute` term counts prompt tokens. Every single-replica fitting experiment decodes
/// below it, so the decode term is zero on them and both coefficients come from long-context cluster
/// measurements only.
pub const LONG_CONTEXT_TOKENS: f64 = 2048.0;

/// Coefficients the single-replica fit cannot identify (their basis terms are zero or tiny at the
/// fitting experiments' prompt and context lengths); they are fitted to per-step observations of
/// long-context cluster runs (see the profile's provenance) and held fixed by `blis calibrate`.
pub const STEP_FITTED: [&str; 3] = ["prefillAttention", "longContextKv", "longPromptCompute"];

/// Number of fitted parameters: the step-time coefficients plus three per-request overheads.
pub const NUM_PARAMS: usize = NUM_BASIS + 3;

/// Names of the parameters, in [`Coefficients::to_vec`] order.
pub const PARAM_NAMES: [&str; NUM_PARAMS] = [
    "weightRead",
    "weightRead8bit",
    "kvTraffic",
    "prefillCompute",
    "decodeCompute",
    "tpAllReduce",
    "perLayerUs",
    "perTpLayerUs",
    "perRequestUs",
    "perRequestPer100kVocabUs",
    "perStepUs",
    "prefillAttention",
    "longContextKv",
    "longPromptCompute",
    "beforeFirstTokenUs",
    "perOutputTokenUs",
    "afterLastTokenUs",
];

/// Fitted coefficients of the calibrated model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Coefficients {
    /// Multiplier on the weight-read time at peak HBM bandwidth (16-bit weights).
    pub weight_read: f64,
    /// Multiplier on the weight-read time at peak HBM bandwidth (8-bit weights).
    pub weight_read_8bit: f64,
    /// Multiplier on the KV read/write time at peak HBM bandwidth.
    pub kv_traffic: f64,
    /// Multiplier on prefill FLOPs at peak compute.
    pub prefill_compute: f64,
    /// Multiplier on decode FLOPs at peak compute.
    pub decode_compute: f64,
    /// Multiplier on the ring all-reduce transfer time at peak interconnect bandwidth.
    pub tp_all_reduce: f64,
    /// µs per layer of every forward pass.
    pub per_layer_us: f64,
    /// Extra µs per layer of every forward pass and per extra tensor-parallel rank (TP - 1).
    pub per_tp_layer_us: f64,
    /// µs per request scheduled in the step.
    pub per_request_us: f64,
    /// µs per request scheduled in the step and per 100k vocabulary entries (logits, sampling).
    pub per_request_per_100k_vocab_us: f64,
    /// µs per step (scheduler loop, inter-step gap).
    pub per_step_us: f64,
    /// Multiplier on prompt attention FLOPs (query-key pairs) at peak compute: causal attention kernels
    /// run well below the linear layers' GEMM efficiency, which only shows in long prompts.
    pub prefill_attention: f64,
    /// Multiplier on the time to read, at peak HBM bandwidth, the KV one sequence of the batch's mean
    /// context holds beyond [`LONG_CONTEXT_TOKENS`], once per decode step, on top of `kvTraffic`: decode
    /// attention over long contexts reads each sequence with few thread blocks, well below streaming
    /// bandwidth. Zero below the threshold, so short-context data cannot see it.
    pub long_context_kv: f64,
    /// Multiplier on the linear-layer FLOPs, at peak compute, of the prompt tokens computed at a position
    /// beyond [`LONG_CONTEXT_TOKENS`] in their sequence, on top of `prefillCompute`: exp-7's 8k- and
    /// 10k-token prompts cost more per token than the short prompts the single-replica fit sees, by an
    /// amount that grows with the tokens beyond the threshold (not with their attention pairs). Zero for
    /// prompts within the threshold; absent from older profiles, which then read 0.
    #[serde(default)]
    pub long_prompt_compute: f64,
    /// µs from arrival to the request reaching the engine queue (API server, tokenisation).
    pub before_first_token_us: f64,
    /// µs added to every output token's delivery (detokenise, stream).
    pub per_output_token_us: f64,
    /// µs added once after the last token (response completion).
    pub after_last_token_us: f64,
}

impl Coefficients {
    /// The parameters as a vector, in [`PARAM_NAMES`] order.
    pub fn to_vec(&self) -> [f64; NUM_PARAMS] {
        [
            self.weight_read,
            self.weight_read_8bit,
            self.kv_traffic,
            self.prefill_compute,
            self.decode_compute,
            self.tp_all_reduce,
            self.per_layer_us,
            self.per_tp_layer_us,
            self.per_request_us,
            self.per_request_per_100k_vocab_us,
            self.per_step_us,
            self.prefill_attention,
            self.long_context_kv,
            self.long_prompt_compute,
            self.before_first_token_us,
            self.per_output_token_us,
            self.after_last_token_us,
        ]
    }

    /// The inverse of [`Coefficients::to_vec`].
    pub fn from_vec(v: &[f64; NUM_PARAMS]) -> Self {
        Coefficients {
            weight_read: v[0],
            weight_read_8bit: v[1],
            kv_traffic: v[2],
            prefill_compute: v[3],
            decode_compute: v[4],
            tp_all_reduce: v[5],
            per_layer_us: v[6],
            per_tp_layer_us: v[7],
            per_request_us: v[8],
            per_request_per_100k_vocab_us: v[9],
            per_step_us: v[10],
            prefill_attention: v[11],
            long_context_kv: v[12],
            long_prompt_compute: v[13],
            before_first_token_us: v[14],
            per_output_token_us: v[15],
            after_last_token_us: v[16],
        }
    }

    /// Checks every coefficient is finite and non-negative.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        for (name, v) in PARAM_NAMES.iter().zip(self.to_vec()) {
            if !(v.is_finite() && v >= 0.0) {
                return Err(InvalidInput::new(
                    format!("coefficients.{name}"),
                    format!("must be a finite number >= 0 (got {v})"),
                    "re-run `blis calibrate` or fix the profile file",
                ));
            }
        }
        Ok(())
    }

    /// A neutral starting point (roughly the roofline's efficiencies and typical vLLM overheads), used as
    /// the fit's initial point and as the prior its regularisation pulls towards.
    pub fn prior() -> Self {
        Coefficients {
            weight_read: 1.25,
            weight_read_8bit: 1.25,
            kv_traffic: 1.5,
            prefill_compute: 2.0,
            decode_compute: 1.0,
            tp_all_reduce: 1.0,
            per_layer_us: 20.0,
            per_tp_layer_us: 10.0,
            per_request_us: 10.0,
            per_request_per_100k_vocab_us: 10.0,
            per_step_us: 300.0,
            prefill_attention: 2.0,
            long_context_kv: 1.0,
            long_prompt_compute: 1.0,
            before_first_token_us: 10_000.0,
            per_output_token_us: 50.0,
            after_last_token_us: 500.0,
        }
    }
}

/// A GPU profile's calibration: coefficients, where they came from, and how well they fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Calibration {
    /// GPU profile the coefficients were fitted on.
    pub gpu: String,
    /// Set when the coefficients were not fitted on this GPU but transferred from the named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferred_from: Option<String>,
    /// The coefficients.
    pub coefficients: Coefficients,
    /// Provenance: how the coefficients were produced (command, experiments, fit quality).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_object")]
    pub provenance: Option<serde_json::Value>,
    /// Coefficients of a transferred calibration refitted on this GPU's own data, each with the data
    /// it was fitted on: resolution then says which coefficients are measured here and which are
    /// still transferred.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refitted: Vec<Refit>,
}

/// One coefficient refitted on the profile's own GPU after a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Refit {
    /// The coefficient's name as in `coefficients` (e.g. `perLayerUs`).
    pub coefficient: String,
    /// The data it was fitted on, as the resolution warning shows it (e.g. `A100 cluster data (...)`).
    pub data: String,
}

impl Calibration {
    /// Checks the coefficients and that every refitted entry names one of them, once, on a
    /// transferred calibration (a profile fitted on its own GPU has nothing to refit).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        self.coefficients.validate()?;
        if !self.refitted.is_empty() && self.transferred_from.is_none() {
            return Err(InvalidInput::new(
                "refitted",
                "is set on a calibration that was not transferred (no transferredFrom)",
                "remove refitted, or set transferredFrom to the GPU the other coefficients come from",
            ));
        }
        for (i, r) in self.refitted.iter().enumerate() {
            if !PARAM_NAMES.contains(&r.coefficient.as_str()) {
                return Err(InvalidInput::new(
                    format!("refitted[{i}].coefficient"),
                    format!("{:?} is not a coefficient", r.coefficient),
                    format!("use one of {}", PARAM_NAMES.join(", ")),
                ));
            }
            if self.refitted[..i].iter().any(|o| o.coefficient == r.coefficient) {
                return Err(InvalidInput::new(
                    format!("refitted[{i}].coefficient"),
                    format!("{} is listed twice", r.coefficient),
                    "list each refitted coefficient once, with all the data it was fitted on",
                ));
            }
        }
        Ok(())
    }

    /// What resolution tells the user about a transferred calibration: which coefficients were
    /// refitted on this GPU's own data (and on what), and that the rest come from another GPU
    /// through datasheet ratios; `None` for a calibration fitted on its own GPU.
    pub fn transfer_note(&self) -> Option<String> {
        let from = self.transferred_from.as_ref()?;
        if self.refitted.is_empty() {
            return Some(format!(
                "no measurements on {}: latency coefficients transferred from {from} through datasheet ratios",
                self.gpu
            ));
        }
        let fitted: Vec<String> =
            self.refitted.iter().map(|r| format!("{} fitted on {}", r.coefficient, r.data)).collect();
        Some(format!(
            "{}: {}; other coefficients transferred from {from} through datasheet ratios",
            self.gpu,
            fitted.join("; ")
        ))
    }

    /// The coefficients of this calibration (fitted on `from`) carried over to `to`. The basis terms are
    /// normalised by each GPU's own datasheet peaks, so the multipliers carry over once corrected by the
    /// catalog's achieved-efficiency ratios: bandwidth terms by `hbmEfficiency`, prefill and decode compute
    /// by `mfuPrefill` / `mfuDecode`, the per-TP-layer latency by `allReduceLatencyUs`. Host-side
    /// overheads (per step, per request, per token) are kept. Flagged with `transferred_from`.
    pub fn transferred(&self, from: &GpuProfile, to: &GpuProfile) -> Calibration {
        let ratio = |a: f64, b: f64| if a > 0.0 && b > 0.0 && (a / b).is_finite() { a / b } else { 1.0 };
        let mut c = self.coefficients;
        let bw = ratio(from.hbm_efficiency, to.hbm_efficiency);
        c.weight_read *= bw;
        c.weight_read_8bit *= bw;
        c.kv_traffic *= bw;
        c.long_context_kv *= bw;
        c.prefill_compute *= ratio(from.mfu_prefill, to.mfu_prefill);
        c.prefill_attention *= ratio(from.mfu_prefill, to.mfu_prefill);
        c.long_prompt_compute *= ratio(from.mfu_prefill, to.mfu_prefill);
        c.decode_compute *= ratio(from.mfu_decode, to.mfu_decode);
        c.per_tp_layer_us *= ratio(to.all_reduce_latency_us, from.all_reduce_latency_us);
        Calibration {
            gpu: to.name.clone(),
            transferred_from: Some(self.gpu.clone()),
            coefficients: c,
            provenance: None,
            refitted: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transferred(refitted: &[(&str, &str)]) -> Calibration {
        Calibration {
            gpu: "A100-SXM-80GB".into(),
            transferred_from: Some("H100-SXM-80GB".into()),
            coefficients: Coefficients::prior(),
            provenance: None,
            refitted: refitted
                .iter()
                .map(|(c, d)| Refit { coefficient: c.to_string(), data: d.to_string() })
                .collect(),
        }
    }

    #[test]
    fn the_note_names_refitted_coefficients_and_their_data_and_the_rest_as_transferred() {
        let plain = transferred(&[]).transfer_note().unwrap();
        assert!(
            plain.contains("no measurements on A100-SXM-80GB") && plain.contains("from H100-SXM-80GB"),
            "{plain}"
        );
        let note = transferred(&[("perLayerUs", "A100 runs (exp-2)"), ("perStepUs", "A100 idle steps")])
            .transfer_note()
            .unwrap();
        assert!(!note.contains("no measurements"), "{note}");
        assert!(note.contains("perLayerUs fitted on A100 runs (exp-2)"), "{note}");
        assert!(note.contains("perStepUs fitted on A100 idle steps"), "{note}");
        assert!(
            note.ends_with("other coefficients transferred from H100-SXM-80GB through datasheet ratios"),
            "{note}"
        );
        let own = Calibration { transferred_from: None, ..transferred(&[]) };
        assert_eq!(own.transfer_note(), None);
    }

    /// Profiles and resources written before the long-prompt term still load, with the term off.
    #[test]
    fn coefficients_without_long_prompt_compute_load_with_it_zero() {
        let mut v = serde_json::to_value(Coefficients::prior()).unwrap();
        assert_eq!(v["longPromptCompute"], 1.0);
        v.as_object_mut().unwrap().remove("longPromptCompute");
        let c: Coefficients = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c, Coefficients { long_prompt_compute: 0.0, ..Coefficients::prior() });
        // Every other coefficient is still required.
        v.as_object_mut().unwrap().remove("longContextKv");
        assert!(serde_json::from_value::<Coefficients>(v).is_err());
    }

    #[test]
    fn refitted_entries_must_name_a_coefficient_once_on_a_transfer() {
        assert!(transferred(&[("perLayerUs", "d")]).validate().is_ok());
        let e = transferred(&[("perLayerUS", "d")]).validate().unwrap_err();
        assert_eq!(e.field, "refitted[0].coefficient");
        assert!(e.to_string().contains("perLayerUs"), "{e}");
        let e = transferred(&[("perLayerUs", "a"), ("perLayerUs", "b")]).validate().unwrap_err();
        assert_eq!(e.field, "refitted[1].coefficient");
        let own = Calibration { transferred_from: None, ..transferred(&[("perLayerUs", "d")]) };
        assert_eq!(own.validate().unwrap_err().field, "refitted");
    }
}
