//! Turning summaries into what people and tools read: the JSON document and the text table.

pub mod json;
pub mod sweep;
pub mod table;

pub use json::{Inputs, ScenarioReport};
