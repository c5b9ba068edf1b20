//! `blis controller`: reconciles `SimulationScenario` and `SimulationSweep` objects into predictions
//! and rankings in their status.
//!
//! One job per module: each reconciler is split into pure steps (validate + build, hash, decide,
//! status mapping: [`scenario::steps`], [`sweep::steps`]) and the thin I/O around them
//! ([`mod@scenario::reconcile`], [`mod@sweep::reconcile`]) built on the generic API helpers of [`client`];
//! [`wiring`] runs the watches, leader election and shutdown, [`server`] the HTTP endpoints.
//! Simulations run off the async runtime on blocking threads, at most `--max-concurrent` at once,
//! each with a cancellation flag (a newer spec or deletion cancels it) and wall-time / request limits.

pub mod client;
pub mod error;
pub mod fair;
pub mod fanout;
pub mod import_refs;
pub mod leader;
pub mod metrics;
pub mod options;
pub mod ref_index;
pub mod runs;
pub mod scenario;
pub mod server;
pub mod status;
pub mod sweep;
pub mod triggers;
pub mod watched;
pub mod wiring;
pub mod worker;

pub use client::FIELD_MANAGER;
pub use error::Error;
pub use options::Options;
pub use wiring::run;

/// Limits of one simulation (and of one in-process sweep).
pub use blis_sim::scenario::limits::Limits;
