# Shared settings for the project's scripts. Source it; it defines no behaviour of its own.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Caches live outside the clone so a fresh clone (CI) reuses them: cargo target dir, tools, the
# API-server harness binary. Go keeps its own caches in ~/.cache/go-build and ~/go/pkg/mod.
GI_CACHE=${GI_CACHE:-$HOME/.cache/globalingress}
KUBE_VERSION=v1.36.3
MOTO_VENV=${MOTO_VENV:-$REPO_ROOT/.venv}
HELM_VERSION=v3.22.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# OpenTofu's version is the one tests/tools/tofu/go.mod requires.
TOFU_VERSION=v1.10.10
CHECKOV_VERSION=3.3.30
# external-dns (make bench's peers scenario only); the version tests/tools/external-dns/go.mod requires.
EXTERNAL_DNS_VERSION=v0.22.0

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# harness_path [NAME] prints where the kube-harness binary (or NAME=kubectl, built from the same
# module at the same version) for the current sources lives.
harness_path() {
  local sum
  sum=$(cd "$REPO_ROOT/tests/kube-harness" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
  printf '%s/bin/%s-%s-%s\n' "$GI_CACHE" "${1:-kube-harness}" "$KUBE_VERSION" "$sum"
}

# helm_path prints where helm $HELM_VERSION (built by install.sh) lives.
helm_path() { printf '%s/tools/bin/helm-%s\n' "$GI_CACHE" "$HELM_VERSION"; }

# tofu_path prints where tofu (built by tests/tools/build.sh from tests/tools/tofu) lives.
tofu_path() {
  local sum
  sum=$(cd "$REPO_ROOT/tests/tools/tofu" && cat go.mod go.sum | sha256sum | cut -c1-16)
  printf '%s/tools/bin/tofu-%s-%s\n' "$GI_CACHE" "$TOFU_VERSION" "$sum"
}

# external_dns_path prints where external-dns (built by tests/env/external-dns.sh from
# tests/tools/external-dns) lives.
external_dns_path() {
  local sum
  sum=$(cd "$REPO_ROOT/tests/tools/external-dns" && cat go.mod go.sum | sha256sum | cut -c1-16)
  printf '%s/tools/bin/external-dns-%s-%s\n' "$GI_CACHE" "$EXTERNAL_DNS_VERSION" "$sum"
}

# checkov_venv prints the virtualenv checkov $CHECKOV_VERSION is installed in.
checkov_venv() { printf '%s/tools/checkov-%s\n' "$GI_CACHE" "$CHECKOV_VERSION"; }

# prometheus_operator_crds_dir prints the Prometheus Operator's CRD directory in the Go module
# cache (fails while the module is not downloaded).
prometheus_operator_crds_dir() {
  local dir
  dir=$(GOFLAGS= go list -m -f '{{.Dir}}' "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" 2>/dev/null) || return 1
  [ -n "$dir" ] && [ -d "$dir/example/prometheus-operator-crd" ] || return 1
  printf '%s/example/prometheus-operator-crd\n' "$dir"
}

# free_ports N prints N distinct free TCP ports on 127.0.0.1 (also free for UDP, for DNS).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close(); u.close(); continue
    socks += [t, u]; ports.append(port)
print(" ".join(map(str, ports)))
PY
}

# pid_alive FILE: the process whose PID is in FILE is running.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
