//! Reconciles `SimulationSweep` objects into a ranked status (best candidate, Pareto set, one entry
//! per candidate): the pure [`steps`] (validate + plan, hash, decide, status mapping) apart from the
//! thin I/O of [`mod@reconcile`]. Small sweeps run in the controller; large ones, or those asking for
//! it, fan out to an Indexed Job.

pub mod reconcile;
pub mod steps;

pub use reconcile::{error_policy, reconcile, SweepContext};
pub use steps::{decide, inputs_hash, prepare, PreparedSweep};
