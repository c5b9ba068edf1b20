//! The controller's settings (the flags of `blis controller`).

use std::net::SocketAddr;

use super::fanout::FanOutConfig;
use super::Limits;

/// Controller settings (the flags of `blis controller`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch only these namespaces (empty: all); each gets its own watches.
    pub namespaces: Vec<String>,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: SocketAddr,
    /// Most simulations at once.
    pub max_concurrent: usize,
    /// Take a Lease before reconciling.
    pub leader_election: bool,
    /// Namespace of the Lease.
    pub leader_election_namespace: String,
    /// This replica's identity (Lease holder, Event reporter instance).
    pub identity: String,
    /// Limits of one simulation.
    pub limits: Limits,
    /// When and how sweeps fan out to Indexed Jobs.
    pub fan_out: FanOutConfig,
}
