//! The discrete-event core: an llm-d cluster on one clock. The gateway (admission, flow control)
//! and endpoint picker (plugin pipeline, P/D profile handler) in front of pools of vLLM replicas
//! (scheduler + paged KV cache), KV transfers between prefill and decode, autoscaling.
//! Pure and synchronous: no I/O, no async, no global state.

mod decoders;
pub mod engine;
pub mod gateway;
pub mod instance;
pub mod kv;
mod memo;
pub mod offload;
pub mod pool;
pub mod request;
pub mod router;
mod wakes;

pub use engine::{run, ClusterConfig, NoObserver, Observer, PdConfig, SimError, SimOptions};
pub use instance::InstanceConfig;
pub use pool::{Autoscaling, PoolConfig, Role, ScalePolicy};
pub use router::{RouterConfig, RouterPolicy};
