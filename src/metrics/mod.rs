//! Per-request records, summaries with exact percentiles, goodput and SLO attainment.

pub mod slo;

pub use slo::Slo;
