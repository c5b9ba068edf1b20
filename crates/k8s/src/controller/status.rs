//! What every failure path writes, for scenarios and sweeps alike: Stalled with the error's reason
//! and message, the previous result kept, and (when rerunning the same inputs cannot help) the
//! inputs hash, so the same inputs are not run again.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::Error;
use crate::api::conditions::{self, Desired, DEGRADED, READY, RECONCILING, SLO_MET, STALLED};
use crate::api::{SimulationScenarioStatus, SimulationSweepStatus};

/// A status the controller writes: conditions, the generation they are for, the inputs hash.
pub trait ControllerStatus: Clone {
    /// Condition types about the result itself, `Unknown` while there is none for the current spec.
    const RESULT_CONDITIONS: &'static [&'static str];
    /// The conditions.
    fn conditions(&self) -> &[Condition];
    /// Sets the conditions and the generation they were computed for.
    fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>);
    /// Records the inputs this status is about.
    fn set_inputs_hash(&mut self, hash: &str);
}

impl ControllerStatus for SimulationScenarioStatus {
    const RESULT_CONDITIONS: &'static [&'static str] = &[SLO_MET, DEGRADED];
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>) {
        self.conditions = conditions;
        self.observed_generation = generation;
    }
    fn set_inputs_hash(&mut self, hash: &str) {
        self.inputs_hash = Some(hash.to_string());
    }
}

impl ControllerStatus for SimulationSweepStatus {
    const RESULT_CONDITIONS: &'static [&'static str] = &[];
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>) {
        self.conditions = conditions;
        self.observed_generation = generation;
    }
    fn set_inputs_hash(&mut self, hash: &str) {
        self.inputs_hash = Some(hash.to_string());
    }
}

/// Status for an error that needs the user (invalid spec, limit): Stalled with the error's reason
/// and message, the previous result kept. `hash` marks the inputs that failed when running them
/// again cannot help, so the same inputs are not retried.
pub fn status_stalled<S: ControllerStatus>(
    prev: &S,
    generation: Option<i64>,
    hash: Option<&str>,
    err: &Error,
    now: jiff::Timestamp,
) -> S {
    let (reason, msg) = (err.reason(), err.to_string());
    let none = "no prediction for the current spec";
    let desired: Vec<Desired> = std::iter::once(Desired::new(READY, false, reason, &msg))
        .chain(S::RESULT_CONDITIONS.iter().map(|t| Desired::unknown(t, reason, none)))
        .chain([Desired::new(RECONCILING, false, reason, &msg), Desired::new(STALLED, true, reason, &msg)])
        .collect();
    let mut s = prev.clone();
    if let Some(h) = hash {
        s.set_inputs_hash(h);
    }
    s.set_conditions(conditions::merge(prev.conditions(), &desired, generation, now), generation);
    s
}
