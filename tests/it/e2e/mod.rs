//! End-to-end suites against a real kube-apiserver + etcd (harness: `common::kube`), one test each,
//! run one at a time by `hack/test.sh` (`cargo test --test it e2e::<suite>`).

mod faults;
mod helm;
mod import;
mod scenarios;
mod sweep;
