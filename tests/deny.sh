#!/usr/bin/env bash
# cargo deny: licences, bans (deny.toml lists the crates with known advisories by name) and
# sources always. Advisories need the RustSec database, a git repository this machine cannot reach
# (only package registries are reachable); they are checked when a copy is available and the
# script says so either way.
set -euo pipefail
source "$(dirname "$0")/env/lib.sh"
cd "$REPO_ROOT"
deny="$GI_CACHE/tools/bin/cargo-deny"
[ -x "$deny" ] || die "cargo-deny not installed: run tests/env/install.sh (make deps)"
"$deny" --locked check bans licenses sources
if compgen -G "$HOME/.cargo/advisory-dbs/advisory-db-*/crates" >/dev/null; then
  "$deny" --locked check --disable-fetch advisories
else
  log "cargo deny advisories: NOT CHECKED - the RustSec database cannot be fetched here; banned-by-name crates in deny.toml cover the known advisories of our dependency choices"
fi
