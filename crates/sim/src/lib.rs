//! BLIS twin's simulator core: the scenario spec and its resolution, the catalog of GPUs and
//! models, workload generation, step-time models, the discrete-event cluster simulation and the
//! summary of its records.
//!
//! Data flows one way: [`scenario`] spec -> resolved scenario -> [`sim`] -> [`metrics`] records ->
//! summary. The core is pure and synchronous: no I/O, no async, no global state; every random draw
//! flows from the scenario seed ([`rng`]). Reading foreign formats and files is the importers' job.
//! A run may use helper threads, only for work around the engine whose result cannot depend on
//! their timing: generating an open-loop workload ahead ([`workload::source`]) and summarising
//! streamed records behind, in order ([`metrics::stream::summarised_behind`]).

pub mod catalog;
pub mod error;
pub mod float;
pub mod handoff;
pub mod latency;
pub mod metrics;
pub mod rng;
pub mod scenario;
pub mod schema;
pub mod sim;
pub mod workload;
