#!/usr/bin/env bash
# Helm for the chart tests, built from Go modules (no container engine or package manager needed).
#
#   hack/helm.sh        build helm $HELM_VERSION into .cache/helm/<version>/bin when missing; print its path
#
# The build is skipped when the binary is already cached, so reruns are instant.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

HELM_VERSION=${HELM_VERSION:-v3.19.5}
CACHE=${BLIS_CACHE:-$ROOT/.cache}
BIN="$CACHE/helm/$HELM_VERSION/bin"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
export CGO_ENABLED=0

if [[ ! -x "$BIN/helm" ]]; then
  command -v go >/dev/null || { echo "[helm] go not found: cannot build helm" >&2; exit 1; }
  mkdir -p "$BIN"
  echo "[helm] building helm $HELM_VERSION (a few minutes on a cold cache)" >&2
  GOBIN="$BIN" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
fi
echo "$BIN/helm"
