#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every check.
#   hack/test.sh            format, lint, unit + integration tests, CLI smoke run, benchmark smoke run
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
for f in examples/*.yaml; do
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

step "benchmark smoke run (speed targets are reported by 'blis bench', not asserted here)"
./target/release/blis bench --case 10k --repeat 3

echo
echo "all checks passed"
