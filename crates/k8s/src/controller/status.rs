//! What every failure path writes, for scenarios and sweeps alike: Stalled with the error's reason
//! and message, the previous result kept, and (when rerunning the same inputs cannot help) the
//! inputs hash, so the same inputs are not run again; and the record of what this controller
//! wrote, so that a status written by anyone else is rewritten.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

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
    /// Records the inputs this status is about (`None`: inputs that could not be read).
    fn set_inputs_hash(&mut self, hash: Option<&str>);
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
    fn set_inputs_hash(&mut self, hash: Option<&str>) {
        self.inputs_hash = hash.map(str::to_string);
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
    fn set_inputs_hash(&mut self, hash: Option<&str>) {
        self.inputs_hash = hash.map(str::to_string);
    }
}

/// Status for an error that needs the user (invalid spec, limit): Stalled with the error's reason
/// and message, the previous result kept. `hash` marks the inputs that failed, so the same inputs
/// are not retried; `None` (inputs that could not be read) clears it, so a fix runs again.
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
    s.set_inputs_hash(hash);
    s.set_conditions(conditions::merge(prev.conditions(), &desired, generation, now), generation);
    s
}

/// The digest of the status this controller last wrote, per object uid: a status another client
/// wrote (a fake condition, a fake figure) does not match it and is rewritten. After a restart no
/// digest is known: the status seen first is adopted unless the object's `managedFields` say that
/// another field manager wrote its status (kept by the API server, so a change made while the
/// controller was down, or just before it restarted, is still repaired).
#[derive(Default)]
pub struct Written(Mutex<HashMap<String, [u8; 32]>>);

impl Written {
    /// Records `status` as written by this controller for `uid`.
    pub fn record<S: Serialize + DeserializeOwned>(&self, uid: &str, status: &S) {
        self.0.lock().expect("lock").insert(uid.to_string(), digest(status));
    }

    /// Whether `status` is the one this controller last wrote for `uid`. When none is known it is
    /// adopted, unless `by_another` (another field manager wrote the status).
    pub fn is_ours<S: Serialize + DeserializeOwned>(&self, uid: &str, status: &S, by_another: bool) -> bool {
        let d = digest(status);
        let mut known = self.0.lock().expect("lock");
        match known.get(uid) {
            Some(ours) => *ours == d,
            None if by_another => false,
            None => {
                known.insert(uid.to_string(), d);
                true
            }
        }
    }

    /// Keeps only the uids for which `live` holds.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.0.lock().expect("lock").retain(|uid, _| live(uid));
    }
}

/// sha256 of `status` as the API server gives it back: re-read through its type, timestamps at
/// the second (what `metav1.Time` keeps).
fn digest<S: Serialize + DeserializeOwned>(status: &S) -> [u8; 32] {
    let mut v = serde_json::to_value(status).unwrap_or_default();
    if let Ok(typed) = serde_json::from_value::<S>(v.clone()) {
        v = serde_json::to_value(typed).unwrap_or_default();
    }
    if let Some(conds) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conds {
            if let Some(t) = c.get_mut("lastTransitionTime") {
                let cut: String = t.as_str().unwrap_or("").chars().take(19).collect();
                *t = cut.into();
            }
        }
    }
    Sha256::digest(serde_json::to_vec(&v).unwrap_or_default()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SimulationScenarioStatus;

    #[test]
    fn another_writers_status_is_not_ours_and_our_own_survives_the_round_trip() {
        let w = Written::default();
        let now: jiff::Timestamp = "2026-01-01T00:00:00.123456Z".parse().unwrap();
        let err = Error::Limit("wall".into());
        let ours = status_stalled(&SimulationScenarioStatus::default(), Some(2), Some("h"), &err, now);
        w.record("u", &ours);
        // What the API server gives back: whole seconds, numbers re-read.
        let back: SimulationScenarioStatus =
            serde_json::from_str(&serde_json::to_string(&ours).unwrap().replace(".123456", "")).unwrap();
        assert!(w.is_ours("u", &back, false));
        let mut fake = back.clone();
        fake.conditions[0].status = "True".into();
        assert!(!w.is_ours("u", &fake, false));
        assert!(!w.is_ours("u", &fake, true));
        assert!(w.is_ours("other", &fake, false), "an unknown object's status is adopted");
        assert!(!w.is_ours("other", &back, false));
        w.retain(|uid| uid == "u");
        assert!(w.is_ours("other", &back, false), "forgotten, then adopted again");
        // After a restart (nothing known): another writer's status is not adopted, and stays
        // unknown until the controller writes its own.
        let restarted = Written::default();
        assert!(!restarted.is_ours("u", &fake, true));
        assert!(!restarted.is_ours("u", &fake, true));
        restarted.record("u", &back);
        assert!(restarted.is_ours("u", &back, true), "once rewritten, the digest decides");
    }
}
