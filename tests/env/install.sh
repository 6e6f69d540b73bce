#!/usr/bin/env bash
# Installs everything the tests, the demo and the benchmarks need, skipping what is already there:
#   - Debian packages: knot (DNS server), knot-dnsutils (kdig, knsupdate)
#   - moto server, pinned, in the project-local virtualenv .venv (git ignores it)
#   - cargo-deny, in the cache outside the clone
#   - the kube-apiserver harness, built from Go modules when its sources changed
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
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  command -v knotd >/dev/null || die "knotd still missing after installing knot"
}

moto() {
  local lock="$REPO_ROOT/tests/env/requirements.lock" stamp="$MOTO_VENV/.requirements.lock"
  if [ -x "$MOTO_VENV/bin/moto_server" ] && cmp -s "$lock" "$stamp"; then return 0; fi
  log "installing moto into $MOTO_VENV"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check -r "$lock"
  cp "$lock" "$stamp"
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
step "debian packages (knot)" debian_packages
step "moto" moto
step "cargo-deny" cargo_deny
step "kube-apiserver harness" harness
