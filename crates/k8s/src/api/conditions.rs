//! kstatus-compliant conditions: a pure merge that keeps `lastTransitionTime` unless the status
//! value changes, and stamps every condition with the generation it was computed for.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition type: the prediction for the current generation is done and usable.
pub const READY: &str = "Ready";
/// Condition type: the predicted SLOs and gates are met.
pub const SLO_MET: &str = "SLOMet";
/// Condition type: the prediction is made but something is approximated or refused.
pub const DEGRADED: &str = "Degraded";
/// Condition type: a simulation for the current generation is in progress.
pub const RECONCILING: &str = "Reconciling";
/// Condition type: no progress without a change by the user (invalid spec, enforced gate, limit).
pub const STALLED: &str = "Stalled";

/// A desired condition, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Condition type.
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: String,
    /// Human message.
    pub message: String,
}

impl Desired {
    /// Builds a desired condition.
    pub fn new(type_: &'static str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: if status { "True" } else { "False" },
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition whose value is not known yet.
    pub fn unknown(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self { type_, status: "Unknown", reason: reason.into(), message: message.into() }
    }
}

/// Merges `desired` into `previous`: conditions are emitted in the order given, each stamped with
/// `generation`; `lastTransitionTime` is kept from `previous` when the status did not change and set to
/// `now` otherwise. Conditions of types not in `desired` are dropped.
pub fn merge(
    previous: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let last = previous
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == d.status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: d.type_.to_string(),
                status: d.status.to_string(),
                reason: d.reason.clone(),
                message: truncate(&d.message, 32 * 1024),
                last_transition_time: last,
                observed_generation: generation,
            }
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The status (`True`/`False`/`Unknown`) of condition `type_`, if present.
pub fn status_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_with_status() {
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let a = merge(&[], &[Desired::new(READY, false, "Simulating", "x")], Some(1), t0);
        let b = merge(&a, &[Desired::new(READY, false, "Simulating", "y")], Some(2), t1);
        assert_eq!(b[0].last_transition_time.0, t0);
        assert_eq!(b[0].observed_generation, Some(2));
        let c = merge(&b, &[Desired::new(READY, true, "Simulated", "z")], Some(2), t1);
        assert_eq!(c[0].last_transition_time.0, t1);
        assert_eq!(status_of(&c, READY), Some("True"));
        assert_eq!(status_of(&c, STALLED), None);
    }
}
