//! BLIS twin: a calibrated discrete-event digital twin of llm-d / vLLM inference serving.
//!
//! Data flows one way: manifests -> [`scenario`] -> [`sim`] -> [`metrics`] records -> summary ->
//! CLI table / JSON (and, later, Kubernetes status). The simulator core is pure and synchronous: no
//! I/O, no async, no global state; every random draw flows from the scenario seed ([`rng`]).

pub mod api;
pub mod bench;
pub mod calibrate;
pub mod catalog;
pub mod controller;
pub mod error;
pub mod import;
pub mod latency;
pub mod metrics;
pub mod optimize;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod workload;
