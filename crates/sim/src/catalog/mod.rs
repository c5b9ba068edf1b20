//! Built-in hardware and model facts: GPU profiles, model architectures from Hugging Face configs, and the
//! KV cache capacity they imply. User-supplied profiles use the same types and override the built-ins.

pub mod calibration;
pub mod capacity;
pub mod gpu;
pub mod model;

pub use calibration::{Calibration, Coefficients};
pub use capacity::{kv_capacity, KvCapacity};
pub use gpu::GpuProfile;
pub use model::{MlaArch, ModelArch, MoeArch};
