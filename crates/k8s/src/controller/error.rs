//! Why a reconcile or a simulation did not produce a prediction, with the stable reason and the
//! requeue rule of each kind of failure.

use std::time::Duration;

use blis_sim::error::InvalidInput;

/// Longest wait before a reconcile that failed on the API server is tried again: short, so an
/// object that failed through an outage is retried soon after the server returns.
pub const MAX_API_BACKOFF: Duration = Duration::from_secs(30);

/// Why a reconcile or a simulation did not produce a prediction. Each variant has a stable reason
/// (for conditions, Events and metrics) and its own requeue rule.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec (or an object it references) is wrong: waits for a change.
    #[error("{0}")]
    Invalid(InvalidInput),
    /// The run hit a limit (wall time or simulated requests): waits for a change.
    #[error("simulation limit exceeded: {0}")]
    Limit(String),
    /// The simulator failed (an internal invariant) on these inputs: rerunning them cannot help, so
    /// it waits for a change.
    #[error("simulation failed: {0}")]
    Simulation(String),
    /// The API server failed or was unreachable: retried with backoff.
    #[error("Kubernetes API error: {0}")]
    Api(#[from] kube::Error),
}

impl Error {
    /// Stable CamelCase reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "InvalidSpec",
            Error::Limit(_) => "SimulationLimitExceeded",
            Error::Simulation(_) => "SimulationFailed",
            Error::Api(_) => "ApiError",
        }
    }

    /// When to try again after `attempts` consecutive failures; `None`: only when the object changes.
    pub fn requeue(&self, attempts: u32) -> Option<Duration> {
        match self {
            Error::Invalid(_) | Error::Limit(_) | Error::Simulation(_) => None,
            Error::Api(_) => {
                Some(Duration::from_millis(500 * 2u64.saturating_pow(attempts.min(9))).min(MAX_API_BACKOFF))
            }
        }
    }

    /// Whether the user must change something (the object is Stalled).
    pub fn is_stalled(&self) -> bool {
        !matches!(self, Error::Api(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_reasons_and_requeue_rules() {
        let inv = Error::Invalid(InvalidInput::new("spec.replicas", "bad", "fix"));
        assert_eq!(inv.reason(), "InvalidSpec");
        assert_eq!(inv.requeue(3), None);
        assert!(inv.is_stalled());
        let lim = Error::Limit("wall".into());
        assert_eq!((lim.reason(), lim.requeue(1)), ("SimulationLimitExceeded", None));
        let api = Error::Api(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert_eq!(api.reason(), "ApiError");
        assert!(api.requeue(1).unwrap() < api.requeue(4).unwrap());
        assert_eq!(api.requeue(50), Some(MAX_API_BACKOFF));
        assert!(!api.is_stalled());
        let sim = Error::Simulation("clock moved back".into());
        assert_eq!((sim.requeue(1), sim.is_stalled(), sim.reason()), (None, true, "SimulationFailed"));
    }
}
