//! Reconciles `SimulationScenario` objects into predictions in their status: the pure [`steps`]
//! (validate + build, hash, decide, status mapping) apart from the thin I/O of [`mod@reconcile`]
//! (fetch, status apply, Events, the simulation on a blocking thread).

pub mod reconcile;
pub mod steps;

pub use reconcile::{error_policy, fetch, reconcile, Context};
