#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every check.
#   hack/test.sh            format, lint, unit + integration tests (CRD drift included), CLI smoke run,
#                           end-to-end tests against a real kube-apiserver + etcd, benchmark smoke run
#   BLIS_SKIP_E2E=1 hack/test.sh   everything but the end-to-end tests (for quick local loops only)
# Caches live under .cache/ (gitignored) so reruns are fast.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (rustup) first" >&2
  exit 1
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
cargo clippy --all-targets --locked -- -D warnings

step "unit and integration tests"
mkdir -p target && cargo test --locked --all-targets 2>&1 | tee target/test.log
grep -E "^test result:" target/test.log | awk '{p+=$4; f+=$6} END {printf "tests: %d passed, %d failed\n", p, f}'

step "release build and quickstart"
cargo build --release --locked
./target/release/blis run examples/quickstart.yaml
for f in examples/*.yaml examples/llm-d/*/; do
  ./target/release/blis run --no-progress --output json "$f" >/dev/null
done

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
  ./target/release/blis calibrate "$VALIDATION" --gpu H100-SXM-80GB --check data/profiles/H100-SXM-80GB.yaml > target/calibrate.log
  grep -E "^fit quality" target/calibrate.log
else
  echo "skipped: $VALIDATION not found"
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
    cargo test --locked --test e2e -- --nocapture 2>&1 | tee target/e2e.log
  grep -E "^E2E-50:|^e2e: all steps passed" target/e2e.log
  BLIS_E2E_REQUIRED=1 BLIS_E2E_BIN="$PWD/target/release/blis" \
    cargo test --locked --test e2e_import -- --nocapture 2>&1 | tee target/e2e-import.log
  grep -E "^e2e-import: all steps passed" target/e2e-import.log
  hack/control-plane.sh down
fi

step "benchmark smoke run (speed targets are reported by 'blis bench', not asserted here)"
./target/release/blis bench --case 10k --repeat 3

echo
echo "all checks passed"
