//! Prometheus metrics of the controller (prometheus-client, OpenMetrics text on `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label set of the error counter: the error's stable reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Stable reason (`InvalidSpec`, `ApiError`, ...).
    pub reason: String,
}

/// The controller's metrics and their registry.
pub struct Metrics {
    /// Registry holding them all (prefix `blis_controller`).
    pub registry: Registry,
    /// Reconciles run.
    pub reconciles: Counter,
    /// Reconciles that found the status up to date.
    pub skipped: Counter,
    /// Reconcile durations (s).
    pub reconcile_duration: Histogram,
    /// Simulations finished (any outcome).
    pub simulations: Counter,
    /// Simulation wall times (s).
    pub simulation_duration: Histogram,
    /// Simulations running now.
    pub in_flight: Gauge,
    /// Simulations stopped because their scenario changed or was deleted.
    pub cancelled: Counter,
    /// 1 while this replica holds the leader Lease (or runs without leader election), else 0.
    pub leader: Gauge,
    /// Errors by reason.
    pub errors: Family<ReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("blis_controller");
        let m = Self {
            reconciles: Counter::default(),
            skipped: Counter::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            simulations: Counter::default(),
            simulation_duration: Histogram::new(exponential_buckets(0.01, 3.0, 12)),
            in_flight: Gauge::default(),
            cancelled: Counter::default(),
            leader: Gauge::default(),
            errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register("reconciles", "Reconciles run", m.reconciles.clone());
        registry.register(
            "reconciles_skipped",
            "Reconciles that found the prediction current",
            m.skipped.clone(),
        );
        registry.register("reconcile_duration_seconds", "Reconcile duration", m.reconcile_duration.clone());
        registry.register("simulations", "Simulations finished", m.simulations.clone());
        registry.register(
            "simulation_duration_seconds",
            "Simulation wall time",
            m.simulation_duration.clone(),
        );
        registry.register("simulations_in_flight", "Simulations running", m.in_flight.clone());
        registry.register(
            "simulations_cancelled",
            "Simulations stopped by a newer spec or deletion",
            m.cancelled.clone(),
        );
        registry.register("leader", "Whether this replica leads", m.leader.clone());
        registry.register("errors", "Errors by reason", m.errors.clone());
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Counts an error by its reason.
    pub fn error(&self, reason: &str) {
        self.errors.get_or_create(&ReasonLabels { reason: reason.to_string() }).inc();
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_named_metrics() {
        let m = Metrics::default();
        m.reconciles.inc();
        m.error("InvalidSpec");
        let t = m.encode();
        assert!(t.contains("blis_controller_reconciles_total 1"), "{t}");
        assert!(t.contains("blis_controller_errors_total{reason=\"InvalidSpec\"} 1"), "{t}");
        assert!(t.contains("blis_controller_simulations_in_flight 0"));
    }
}
