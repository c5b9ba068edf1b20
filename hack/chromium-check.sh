#!/usr/bin/env bash
# Renders the HTML reports in a real headless Chromium and fails on any console error, uncaught
# exception or network request; checks that the sweep page's Pareto plot has one point per candidate;
# saves PNG screenshots to target/report-*.png. Installs Debian's chromium (and playwright-core from
# npm into the gitignored .cache/) when missing. Uses target/release/blis (or $BLIS_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BLIS_BIN:-target/release/blis}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export PW_DIR="$PWD/.cache/playwright-core"
PW_VERSION=1.65.1
apt_install() {
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}
[ -x "$CHROMIUM" ] || apt_install chromium
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
if [ "$(node -p "require('$PW_DIR/node_modules/playwright-core/package.json').version" 2>/dev/null)" != "$PW_VERSION" ]; then
  mkdir -p "$PW_DIR"
  npm install --prefix "$PW_DIR" --no-audit --no-fund --silent "playwright-core@$PW_VERSION"
fi
"$CHROMIUM" --version

check() { node hack/chromium-check.mjs "$@"; }

# Self-test: the check must catch a console error, an uncaught exception and a network request.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '<!DOCTYPE html><svg width="400" height="100"></svg><script>console.error("boom")</script>' > "$tmp/error.html"
printf '<!DOCTYPE html><svg width="400" height="100"></svg><script>null.x()</script>' > "$tmp/throw.html"
printf '<!DOCTYPE html><svg width="400" height="100"></svg><img src="http://127.0.0.1:9/x.png">' > "$tmp/fetch.html"
for bad in error throw fetch; do
  if check "$tmp/$bad.html" "$tmp/$bad.png" >/dev/null 2>&1; then
    echo "chromium check self-test FAILED: $bad.html was not reported" >&2
    exit 1
  fi
done
echo "self-test: a console error, an uncaught exception and a network request are each caught"

# The run page (two scenarios, one autoscaling) and the sweep sample written by tests/it/report.rs.
"$BIN" run --no-progress --report target/report-run.html \
  examples/quickstart.yaml examples/llm-d-autoscaling.yaml >/dev/null
cargo test --locked -q --test it report:: >/dev/null
check target/report-run.html target/report-run.png
check target/report-sample-sweep.html target/report-sample-sweep.png 4
