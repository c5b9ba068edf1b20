//! Per-request records, summaries with exact percentiles (or streamed, with bounded-error
//! percentiles), goodput and SLO attainment.

pub mod cdf;
pub mod gates;
pub mod record;
pub mod series;
pub mod stages;
pub mod stream;
pub mod summary;

pub use record::{InstanceReport, PoolReport, Rejected, RequestRecord, SimOutput, TimelinePoint};
pub use series::{PoolSample, Series};
pub use stream::{StreamSummary, SummaryMode};
pub use summary::{summarize, Summary, SummaryContext};
