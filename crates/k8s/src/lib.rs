//! BLIS twin on Kubernetes: the API types of group `twin.blis.dev` ([`api`]) and the controller that
//! reconciles SimulationScenarios and SimulationSweeps into predictions ([`controller`]).

pub mod api;
pub mod compare;
pub mod controller;
