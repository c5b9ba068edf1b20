#!/usr/bin/env bash
# A real, local Kubernetes control plane for the end-to-end tests: etcd + kube-apiserver on loopback.
#
#   hack/control-plane.sh build   build kube-apiserver, kubectl (Kubernetes $K8S_VERSION) and etcd ($ETCD_VERSION)
#                                 from Go modules into .cache/k8s/<versions>/bin (skipped when already there)
#   hack/control-plane.sh up      build if needed, generate certificates, start etcd and kube-apiserver
#                                 (RBAC on), wait until /readyz, write an admin kubeconfig; prints `export` lines
#   hack/control-plane.sh down    stop the processes started by `up`
#   hack/control-plane.sh restart-apiserver | stop-apiserver | kill-apiserver | start-apiserver | compact-etcd
#                                 fault injection for the e2e tests: a graceful restart (SIGTERM, then
#                                 start), a graceful stop, a SIGKILL (no shutdown at all), a start; a
#                                 compaction of etcd's history (as the API server's periodic one does), so
#                                 a watch resumed from before it must list again (410 Gone)
#
# State lives in $BLIS_CP_DIR (default .cache/cp): pids, logs, PKI, kubeconfig. Everything binds 127.0.0.1.
# kube-apiserver, etcd and kubectl are built with the wrapper-module technique: k8s.io/kubernetes lists its
# staging modules at v0.0.0 with local replaces, so a throwaway module requires it and replaces every staging
# module by its published v0.<minor>.<patch> version.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

K8S_VERSION=${K8S_VERSION:-v1.34.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CACHE=${BLIS_CACHE:-$ROOT/.cache}
BIN="$CACHE/k8s/$K8S_VERSION-etcd-$ETCD_VERSION/bin"
CP_DIR=${BLIS_CP_DIR:-$CACHE/cp}
ETCD_PORT=${ETCD_PORT:-23790}
API_PORT=${API_PORT:-16443}
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
export CGO_ENABLED=0

log() { printf '[control-plane] %s\n' "$*" >&2; }

build() {
  if [[ -x "$BIN/kube-apiserver" && -x "$BIN/kubectl" && -x "$BIN/etcd" ]]; then
    log "binaries cached in $BIN"
    return
  fi
  command -v go >/dev/null || { log "go not found: cannot build the control plane"; exit 1; }
  local start=$SECONDS
  local work="$CACHE/k8s/wrapper-$K8S_VERSION"
  mkdir -p "$BIN" "$work"
  local staging="v0.${K8S_VERSION#v1.}"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
  [[ -f "$gomod" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  {
    echo "module blis.dev/k8s-wrapper"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s+k8s.io/[^ ]+ v0\.0\.0$' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  log "building kube-apiserver and kubectl $K8S_VERSION (several minutes on a cold cache)"
  (cd "$work" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$work" && go build -o "$BIN/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
     && go build -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl)
  local ework="$CACHE/k8s/wrapper-etcd-$ETCD_VERSION"
  mkdir -p "$ework"
  cat >"$ework/go.mod" <<EOF
module blis.dev/etcd-wrapper

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat >"$ework/tools.go" <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  log "building etcd $ETCD_VERSION"
  (cd "$ework" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$ework" && go build -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  log "built in $((SECONDS - start))s into $BIN"
}

pki() {
  local d="$CP_DIR/pki"
  mkdir -p "$d"
  [[ -f "$d/admin.crt" ]] && return
  command -v openssl >/dev/null || { log "openssl not found"; exit 1; }
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=blis-test-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" \
    -keyout "$d/admin.key" -out "$d/admin.csr" 2>/dev/null
  # v3 certificates with usages: rustls (the Rust client) rejects v1 certificates.
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$d/client.ext"
  openssl x509 -req -in "$d/admin.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
    -extfile "$d/client.ext" -out "$d/admin.crt" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/serving.ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
  openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
    -extfile "$d/serving.ext" -out "$d/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

alive() { [[ -f "$CP_DIR/$1.pid" ]] && kill -0 "$(cat "$CP_DIR/$1.pid")" 2>/dev/null; }

start_etcd() {
  alive etcd && return
  mkdir -p "$CP_DIR/etcd"
  "$BIN/etcd" --data-dir "$CP_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" \
    --unsafe-no-fsync --log-level warn >"$CP_DIR/etcd.log" 2>&1 &
  echo $! >"$CP_DIR/etcd.pid"
}

start_apiserver() {
  alive kube-apiserver && return
  local d="$CP_DIR/pki"
  "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
    --client-ca-file="$d/ca.crt" --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$API_PORT" --service-account-key-file="$d/sa.pub" \
    --service-account-signing-key-file="$d/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount --allow-privileged=true \
    --cert-dir="$CP_DIR/apiserver-certs" >"$CP_DIR/kube-apiserver.log" 2>&1 &
  echo $! >"$CP_DIR/kube-apiserver.pid"
}

kubeconfig() {
  local d="$CP_DIR/pki"
  cat >"$CP_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: blis-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $d/ca.crt
users:
- name: admin
  user:
    client-certificate: $d/admin.crt
    client-key: $d/admin.key
contexts:
- name: admin
  context: {cluster: blis-test, user: admin}
current-context: admin
EOF
}

up() {
  build
  mkdir -p "$CP_DIR"
  pki
  start_etcd
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && break
    alive etcd || { log "etcd died:"; tail -20 "$CP_DIR/etcd.log" >&2; exit 1; }
    sleep 0.2
  done
  start_apiserver
  kubeconfig
  local ok=
  for _ in $(seq 1 300); do
    if "$BIN/kubectl" --kubeconfig "$CP_DIR/kubeconfig" get --raw /readyz >/dev/null 2>&1; then ok=1; break; fi
    alive kube-apiserver || { log "kube-apiserver died:"; tail -30 "$CP_DIR/kube-apiserver.log" >&2; exit 1; }
    sleep 0.2
  done
  [[ -n "$ok" ]] || { log "kube-apiserver not ready; log tail:"; tail -30 "$CP_DIR/kube-apiserver.log" >&2; exit 1; }
  log "ready: https://127.0.0.1:$API_PORT"
  echo "export KUBECONFIG=$CP_DIR/kubeconfig"
  echo "export BLIS_E2E_KUBECONFIG=$CP_DIR/kubeconfig"
  echo "export BLIS_E2E_KUBECTL=$BIN/kubectl"
  echo "export BLIS_E2E_CP=$ROOT/hack/control-plane.sh"
}

# SIGTERM, then SIGKILL if still running after ${2:-5} s (as a kubelet ends a pod's grace period): a
# kube-apiserver shutting down keeps serving its open watches for tens of seconds after it stopped
# listening, so without the kill a restart would leave two servers, the old one holding the watches.
stop_one() {
  if alive "$1"; then
    local pid
    pid=$(cat "$CP_DIR/$1.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((${2:-5} * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$CP_DIR/$1.pid"
}

down() {
  stop_one kube-apiserver
  stop_one etcd
}

case "${1:-up}" in
  build) build ;;
  up) up ;;
  down) down ;;
  restart-apiserver) stop_one kube-apiserver 10; start_apiserver ;;
  kill-apiserver)
    if alive kube-apiserver; then
      pid=$(cat "$CP_DIR/kube-apiserver.pid")
      kill -9 "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$CP_DIR/kube-apiserver.pid" ;;
  stop-apiserver) stop_one kube-apiserver 10 ;;
  start-apiserver) start_apiserver ;;
  compact-etcd)
    # A write moves the revision past everything a client saw; then compact up to it.
    rev=$(curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/put" -d '{"key":"L2JsaXMtZTJlL2NvbXBhY3Q=","value":"eA=="}' \
      | sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')
    [[ -n "$rev" ]] || { log "etcd did not answer"; exit 1; }
    curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
    log "etcd compacted at revision $rev" ;;
  clean) down; rm -rf "$CP_DIR" ;;
  *) echo "usage: $0 build|up|down|restart-apiserver|stop-apiserver|kill-apiserver|start-apiserver|compact-etcd|clean" >&2; exit 2 ;;
esac
