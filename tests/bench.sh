#!/usr/bin/env bash
# make bench: the scale benchmark (bench/) against a fresh local environment in .run/bench.
#   SIZES=100,1000,10000 make bench     (default 100,1000)
# Prints a table; asserts nothing. The environment is stopped on every exit path.
set -euo pipefail
source "$(dirname "$0")/env/lib.sh"
cd "$REPO_ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GI_CACHE/target}
STATE=$REPO_ROOT/.run/bench
trap 'bash tests/env/env.sh down "$STATE" >/dev/null 2>&1 || true' EXIT
bash tests/env/install.sh
log "building (release)"
cargo build --locked --release --bin globalingress --bin globalingress-bench
bash tests/env/env.sh up "$STATE"
# shellcheck disable=SC1091
source "$STATE/env"
"$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" apply -f crds/ >/dev/null
"$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" wait --for condition=established --timeout 60s \
  crd/globalingresses.globalingress.io crd/dnszones.globalingress.io crd/spokeclusters.globalingress.io >/dev/null
"$CARGO_TARGET_DIR/release/globalingress-bench" \
  --env "$STATE/env" \
  --operator "$CARGO_TARGET_DIR/release/globalingress" \
  --sizes "${SIZES:-100,1000}"
