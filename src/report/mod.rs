//! Turning summaries into what people and tools read: the JSON document, the text table and the
//! gate verdicts of `blis gate`, and the self-contained HTML report.

pub mod gate;
pub mod html;
pub mod json;
pub mod table;

pub use json::{Inputs, ScenarioReport};
