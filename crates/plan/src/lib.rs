//! BLIS twin's planning layer: what many simulations answer together. Sweeps over candidate
//! configurations with Pareto ranking and rate searches ([`sweep`]), policy search ([`optimize`]),
//! fitting and scoring the latency model against real measurements ([`calibrate`]), and the speed
//! benchmark ([`mod@bench`]).

pub mod bench;
pub mod calibrate;
pub mod cluster;
pub mod optimize;
pub mod sweep;
