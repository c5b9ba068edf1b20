//! Turning summaries into what people and tools read: the JSON document, the text table and the
//! HTML report.

pub mod html;
pub mod json;
pub mod table;

pub use json::{Inputs, ScenarioReport};
