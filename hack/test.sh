#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every check.
#   hack/test.sh            format, lint, helm lint/template, unit + integration tests (CRD drift included),
#                           CLI smoke run (run, gate), end-to-end tests against a real kube-apiserver + etcd
#                           (controller, Helm chart), benchmark smoke run
#   BLIS_SKIP_E2E=1 hack/test.sh   everything but the end-to-end tests (for quick local loops only)
# Caches live under .cache/ (gitignored) so reruns are fast.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain (pinned in rust-toolchain.toml)"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (rustup) first" >&2
  exit 1
fi
pinned=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$pinned-"; then
  # An offline machine cannot download it: use an installed stable of the same version if there is one.
  host=$(rustc +stable -vV 2>/dev/null | sed -n 's/^host: //p')
  if [[ -n "$host" && "$(rustc +stable --version 2>/dev/null)" == "rustc $pinned "* ]]; then
    ln -s "$(rustc +stable --print sysroot)" "$(rustup show home)/toolchains/$pinned-$host"
  else
    rustup toolchain install "$pinned" --profile minimal --component rustfmt,clippy
  fi
fi
cargo --version
for c in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
    rustup component add "$c"
  fi
done

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
# Doc links that resolve (a renamed item breaks the link that names it).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "layering: no crate below the CLI and the controller links kube or tokio"
for c in blis-sim blis-import blis-plan blis-report; do
  bad=$(cargo tree --locked -p "$c" -e normal --prefix none | grep -E '^(kube|kube-[a-z]+|k8s-openapi|tokio) ' | sort -u || true)
  if [[ -n "$bad" ]]; then
    echo "$c depends on $(echo "$bad" | tr '\n' ' '): the layering is broken (see ARCHITECTURE.md)" >&2
    exit 1
  fi
done
echo "blis-sim, blis-import, blis-plan, blis-report: no kube, no tokio"

step "helm chart (helm built from Go modules, cached in .cache/helm): lint and template"
BLIS_HELM=$(hack/helm.sh)
export BLIS_HELM
"$BLIS_HELM" lint --strict charts/blis
"$BLIS_HELM" template blis charts/blis --namespace blis-system >/dev/null
"$BLIS_HELM" template blis charts/blis --namespace blis-system --set 'watchNamespaces={a,b}' \
  --set replicaCount=2 --set serviceMonitor.enabled=true --set networkPolicy.enabled=true >/dev/null
echo "helm lint and template: ok (rendered objects are checked by tests/it/ship.rs)"

step "unit and integration tests"
mkdir -p target && cargo test --workspace --locked --all-targets 2>&1 | tee target/test.log
grep -E "^test result:" target/test.log | awk '{p+=$4; f+=$6} END {printf "tests: %d passed, %d failed\n", p, f}'

step "release build and quickstart"
cargo build --release --locked
./target/release/blis run examples/quickstart.yaml
for f in examples/*.yaml examples/llm-d/*/; do
  ./target/release/blis run --no-progress --output json "$f" >/dev/null
done
./target/release/blis gate examples/quickstart.yaml
rc=0; ./target/release/blis gate examples/gate-fails.yaml || rc=$?
if [[ $rc != 1 ]]; then
  echo "blis gate on examples/gate-fails.yaml (misses its SLOs) exited $rc, not 1" >&2
  exit 1
fi

step "fuzz: 10,000 mutated manifests (seeded) through the CLI's and the controller's paths"
# No panic, every error names a field, the same seed gives the same outcomes (tests/it/fuzz.rs).
BLIS_FUZZ_CASES=10000 BLIS_FUZZ_SEED=15 \
  cargo test --release --locked --test it fuzz:: -- --nocapture 2>&1 | tee target/fuzz.log
grep -E "^fuzz:" target/fuzz.log

step "HTML report in headless Chromium (no console errors; screenshots in target/report-*.png)"
hack/chromium-check.sh

step "validation against real measurements (ratchet: no median APE may get worse)"
VALIDATION=../shared/validation/experiments
if [ -d "$VALIDATION" ]; then
  start=$(date +%s.%N)
  ./target/release/blis validate "$VALIDATION" --ratchet data/validation-ratchet.json --output json > target/validate-1.json
  end=$(date +%s.%N)
  ./target/release/blis validate "$VALIDATION" --output table | tail -n 40
  awk -v s="$start" -v e="$end" 'BEGIN {printf "validation wall time: %.2f s (target < 30 s)\n", e - s}'
  ./target/release/blis validate "$VALIDATION" --output json > target/validate-2.json
  # Determinism: the same command gives the same numbers (wall time aside).
  if ! diff <(grep -v wall_seconds target/validate-1.json) <(grep -v wall_seconds target/validate-2.json) >/dev/null; then
    echo "validate is not deterministic: target/validate-1.json and target/validate-2.json differ" >&2
    exit 1
  fi
  echo "determinism: two validation runs gave identical numbers"
  # The shipped coefficients are reproduced by the fit (train-* and extra-* only).
  ./target/release/blis calibrate "$VALIDATION" --gpu H100-SXM-80GB --check crates/sim/data/profiles/H100-SXM-80GB.yaml > target/calibrate.log
  grep -E "^fit quality" target/calibrate.log
else
  echo "skipped: $VALIDATION not found"
fi

step "cluster validation against llm-d cluster benchmarks (ratchet: no median APE may get worse)"
if [ -d ../shared/validation/cluster ]; then
  start=$(date +%s.%N)
  ./target/release/blis validate validation/cluster --ratchet data/cluster-ratchet.json --output json > target/cluster-validate-1.json
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN {printf "cluster validation wall time: %.2f s (target < 60 s)\n", e - s}'
  ./target/release/blis validate validation/cluster --output table | grep -E "^==|knee|median APE|worst|NOT SCORED|stacks"
  ./target/release/blis validate validation/cluster --output json > target/cluster-validate-2.json
  if ! cmp -s target/cluster-validate-1.json target/cluster-validate-2.json; then
    echo "cluster validate is not deterministic: target/cluster-validate-1.json and -2.json differ" >&2
    exit 1
  fi
  echo "determinism: two cluster validation runs gave identical bytes"
else
  echo "skipped: ../shared/validation/cluster not found"
fi

if [[ -z "${BLIS_SKIP_E2E:-}" ]]; then
  step "control plane (kube-apiserver + etcd from Go modules, cached in .cache/k8s)"
  export BLIS_CP_DIR="$PWD/.cache/cp"
  hack/control-plane.sh clean >/dev/null 2>&1 || true
  trap 'hack/control-plane.sh down >/dev/null 2>&1 || true' EXIT
  if ! cp_env=$(hack/control-plane.sh up); then
    echo "FAILED: the control plane could not be built or started (see .cache/cp/*.log)" >&2
    exit 1
  fi
  eval "$cp_env"

  step "end-to-end tests (controller under a least-privilege ServiceAccount)"
  BLIS_E2E_REQUIRED=1 BLIS_E2E_BIN="$PWD/target/release/blis" \
    cargo test --locked --test it e2e::scenarios -- --nocapture 2>&1 | tee target/e2e.log
  grep -E "^E2E-50:|^e2e: all steps passed" target/e2e.log

  step "end-to-end fault tests (kube-apiserver restarts under load; 500 scenarios with the controller SIGKILLed)"
  BLIS_E2E_REQUIRED=1 BLIS_E2E_BIN="$PWD/target/release/blis" \
    cargo test --locked --test it e2e::faults -- --nocapture 2>&1 | tee target/e2e-faults.log
  grep -E "^recovery:|^e2e-faults: all steps passed" target/e2e-faults.log

  step "end-to-end test of the Helm chart (helm install; controller under the chart's ServiceAccount)"
  BLIS_E2E_REQUIRED=1 BLIS_E2E_BIN="$PWD/target/release/blis" \
    cargo test --locked --test it e2e::helm -- --nocapture 2>&1 | tee target/e2e-helm.log
  grep -E "^e2e-helm: all steps passed" target/e2e-helm.log

  step "end-to-end test of imports (live llm-d manifests referenced by a scenario)"
  BLIS_E2E_REQUIRED=1 BLIS_E2E_BIN="$PWD/target/release/blis" \
    cargo test --locked --test it e2e::import -- --nocapture 2>&1 | tee target/e2e-import.log
  grep -E "^e2e-import: all steps passed" target/e2e-import.log

  step "end-to-end test of sweeps"
  BLIS_E2E_REQUIRED=1 BLIS_E2E_BIN="$PWD/target/release/blis" \
    cargo test --locked --test it e2e::sweep -- --nocapture 2>&1 | tee target/e2e-sweep.log
  grep -E "^e2e-sweep: all steps passed" target/e2e-sweep.log
  hack/control-plane.sh down
fi

step "benchmark smoke run (speed targets are reported by 'blis bench', not asserted here)"
./target/release/blis bench --case 10k --repeat 3

step "the training runs of the profile-guided release build (hack/release.sh, the image's build)"
hack/release.sh --train-with ./target/release/blis

echo
echo "all checks passed"
