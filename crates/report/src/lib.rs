//! Turning summaries into what people and tools read: the JSON document, the text table and the
//! gate verdicts of `blis gate`, the side-by-side comparison of `blis compare`, and the self-contained
//! HTML report.

pub mod cluster;
pub mod compare;
pub mod gate;
pub mod html;
pub mod json;
pub mod predictions;
pub mod sweep;
pub mod table;

pub use json::ScenarioReport;
