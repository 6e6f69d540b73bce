#!/usr/bin/env bash
# Installs everything the tests, the demo and the benchmarks need, skipping what is already there:
#   - Debian packages: knot (DNS server), knot-dnsutils (kdig, knsupdate)
#   - moto server, pinned, in the project-local virtualenv .venv (git ignores it)
#   - cargo-deny, in the cache outside the clone
#   - the kube-apiserver harness, built from Go modules when its sources changed
#   - helm, built from its Go module at a pinned version; the Prometheus Operator's CRDs (its Go
#     module holds them), for the chart's ServiceMonitor and PrometheusRule
#   - Debian's prometheus package (prometheus and promtool), for the alert rules' tests
#   - OpenTofu's tofu, built from its Go module when tests/tools/tofu changed; checkov, pinned, in
#     a virtualenv in the cache (it also brings the HCL parser tests/terraform_check.py uses)
# Each step prints how long it took. Fails loudly when something cannot be installed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CARGO_DENY_VERSION=0.20.2

step() {
  local name=$1; shift
  local t=$SECONDS
  "$@"
  log "deps: $name ready ($((SECONDS - t))s)"
}

debian_packages() {
  local missing=()
  command -v knotd >/dev/null || missing+=(knot)
  command -v kdig >/dev/null || missing+=(knot-dnsutils)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v patch >/dev/null || missing+=(patch) # for tests/env/moto-*.patch
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  command -v knotd >/dev/null || die "knotd still missing after installing knot"
  command -v promtool >/dev/null || die "promtool still missing after installing prometheus"
  command -v patch >/dev/null || die "patch still missing after installing patch"
  # The package starts its own server where a service manager runs; the tests start theirs.
  if pgrep -x prometheus >/dev/null && [ -e /etc/init.d/prometheus ]; then
    $sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
}

helm() {
  local bin
  bin=$(helm_path)
  if [ -x "$bin" ]; then return 0; fi
  log "building helm $HELM_VERSION from its Go module (cold: ~2 min)"
  mkdir -p "$(dirname "$bin")"
  local gobin
  gobin=$(mktemp -d)
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN=$gobin GOFLAGS= go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$gobin/helm" "$bin"
  rm -rf "$gobin"
  "$bin" version --short | grep -q "^$HELM_VERSION" || die "$bin does not report $HELM_VERSION"
}

tofu() {
  "$REPO_ROOT/tests/tools/build.sh" >/dev/null
}

checkov() {
  local venv
  venv=$(checkov_venv)
  if [ -x "$venv/bin/checkov" ] && "$venv/bin/python" -c 'import hcl2' 2>/dev/null; then return 0; fi
  log "installing checkov $CHECKOV_VERSION into $venv (~1.5 min)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  "$venv/bin/checkov" --version | grep -qx "$CHECKOV_VERSION" || die "checkov in $venv is not $CHECKOV_VERSION"
}

prometheus_operator_crds() {
  local dir
  dir=$(prometheus_operator_crds_dir 2>/dev/null) && [ -s "$dir/monitoring.coreos.com_prometheusrules.yaml" ] && return 0
  GOFLAGS= go mod download "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION"
  dir=$(prometheus_operator_crds_dir) || die "the Prometheus Operator module has no CRDs at example/prometheus-operator-crd"
  [ -s "$dir/monitoring.coreos.com_prometheusrules.yaml" ] || die "$dir lacks the PrometheusRule CRD"
}

# moto-signature.patch: moto 5.2.5 checks a bodiless request's signature (every REST GET, e.g.
# Route 53's ListResourceRecordSets) over its parsed parameters or its headers instead of the
# empty payload it was signed over, so with IAM enforcement on no such request ever passed.
# moto-route53-scale.patch: its Route 53 zone scanned the whole change journal for every change
# of a batch and the whole zone for every upsert and listing page (a 1,000-change batch took
# 8 s at 30,000 records, 0.13 s with the indexes), and a DELETE with a SetIdentifier removed
# that identifier's record sets at every name of the zone.
MOTO_PATCHES=(moto-signature.patch moto-route53-scale.patch)
moto() {
  local lock="$REPO_ROOT/tests/env/requirements.lock" patches=() p
  for p in "${MOTO_PATCHES[@]}"; do patches+=("$REPO_ROOT/tests/env/$p"); done
  local stamp="$MOTO_VENV/.requirements.lock"
  if [ -x "$MOTO_VENV/bin/moto_server" ] && cat "$lock" "${patches[@]}" | cmp -s - "$stamp"; then return 0; fi
  log "installing moto into $MOTO_VENV"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check -r "$lock"
  local site
  site=$("$MOTO_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  for p in "${patches[@]}"; do
    patch -p1 -d "$site" --forward --quiet <"$p" || die "$p does not apply to moto in $site"
  done
  cat "$lock" "${patches[@]}" >"$stamp"
}

cargo_deny() {
  local bin="$GI_CACHE/tools/bin/cargo-deny"
  if [ -x "$bin" ] && "$bin" --version | grep -q " $CARGO_DENY_VERSION\$"; then return 0; fi
  log "installing cargo-deny $CARGO_DENY_VERSION (cold: ~5 min)"
  cargo install --quiet --locked --root "$GI_CACHE/tools" --version "$CARGO_DENY_VERSION" cargo-deny
}

harness() {
  "$REPO_ROOT/tests/kube-harness/build.sh" >/dev/null
}

command -v cargo >/dev/null || die "cargo not found"
command -v go >/dev/null || die "go not found"
command -v python3 >/dev/null || die "python3 not found"
step "debian packages (knot, prometheus)" debian_packages
step "moto" moto
step "cargo-deny" cargo_deny
step "kube-apiserver harness" harness
step "helm $HELM_VERSION" helm
step "tofu $TOFU_VERSION" tofu
step "checkov $CHECKOV_VERSION" checkov
step "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION" prometheus_operator_crds
