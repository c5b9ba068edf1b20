//! The integration tests: one test binary, so kube, tokio and rustls are linked once. The
//! end-to-end suites under [`e2e`] run only against the control plane `hack/test.sh` starts (each
//! skips with a note otherwise, and fails when `BLIS_E2E_REQUIRED` is set).

mod argocd_health;
mod calibration;
mod cli;
mod cli_import;
mod cluster;
mod cluster_validation;
mod common;
mod crd_drift;
mod e2e;
mod fuzz;
mod guide_folders;
mod helper_threads;
mod invariants;
mod layering;
mod optimize;
mod profiles;
mod report;
mod shared_manifests;
mod ship;
mod streaming;
mod sweep_cli;
