//! The discrete-event core: replicas (vLLM scheduler + paged KV cache) on one clock behind a router.
//! Pure and synchronous: no I/O, no async, no global state.

pub mod engine;
pub mod instance;
pub mod kv;
pub mod offload;
pub mod request;

pub use engine::{run, ClusterConfig, NoObserver, Observer, RouterPolicy, SimError, SimOptions};
pub use instance::InstanceConfig;
