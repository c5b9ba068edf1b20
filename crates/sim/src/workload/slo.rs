//! Per-class service-level objectives: what a request must meet to count as "good".

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Per-request latency limits of a client class, in milliseconds, and the fraction of the class's
/// requests that must meet all of them for the class to meet its SLO. A limit left out is not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Slo {
    /// Time to first token limit (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Limit on the request's mean inter-token latency (ms per output token after the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<f64>,
    /// End-to-end latency limit (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
    /// Fraction of the class's requests (0..=1) that must be good for the SLO to be met. Default 0.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attainment: Option<f64>,
}

impl Slo {
    /// Default attainment target when the scenario gives none.
    pub const DEFAULT_ATTAINMENT: f64 = 0.9;

    /// The attainment target in force.
    pub fn attainment_target(&self) -> f64 {
        self.attainment.unwrap_or(Self::DEFAULT_ATTAINMENT)
    }

    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.itl_ms.is_none() && self.e2e_ms.is_none()
    }
}
