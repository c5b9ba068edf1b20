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

step "benchmark smoke run (speed targets are reported by 'blis bench', not asserted here)"
./target/release/blis bench --case 10k --repeat 3

echo
echo "all checks passed"
