#!/usr/bin/env bash
# make demo: installs what is missing, brings the local environment up (hub + two spokes, moto,
# Knot), builds globalingress, starts `globalingress run` against the hub, shows it at work, and
# prints where everything is. Everything keeps running afterwards; `make env-down` stops it all.
set -euo pipefail
source "$(dirname "$0")/env/lib.sh"
cd "$REPO_ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GI_CACHE/target}
STATE=$REPO_ROOT/.run/env
started=$SECONDS

step() { log "[$((SECONDS - started))s] $*"; }

step "installing what is missing (first run: ~20 min, mostly building kube-apiserver and Rust dependencies)"
bash tests/env/install.sh
step "starting the environment"
bash tests/env/env.sh up "$STATE"
# shellcheck disable=SC1091
source "$STATE/env"
step "building globalingress"
cargo build --locked --bin globalingress
bin="$CARGO_TARGET_DIR/debug/globalingress"

op="$STATE/operator"
mkdir -p "$op"
if pid_alive "$op/pid"; then
  step "stopping the operator from an earlier demo"
  kill -TERM "$(cat "$op/pid")"
  while pid_alive "$op/pid"; do sleep 0.1; done
fi
admin_port=$(free_ports 1)
step "starting globalingress run (admin server on 127.0.0.1:$admin_port)"
"$bin" run --kubeconfig "$GI_HUB_KUBECONFIG" --admin-address "127.0.0.1:$admin_port" \
  </dev/null >"$op/operator.log" 2>&1 &
echo $! >"$op/pid"

fetch() { python3 -c "import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end='')" "$1"; }
deadline=$((SECONDS + 60))
until fetch "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; do
  pid_alive "$op/pid" || { cat "$op/operator.log" >&2; die "globalingress run exited"; }
  [ $SECONDS -lt $deadline ] || { cat "$op/operator.log" >&2; die "globalingress not ready after 60s"; }
  sleep 0.2
done
step "operator ready: /healthz says '$(fetch "http://127.0.0.1:$admin_port/healthz" | tr -d '\n')'"

demo_ns="demo-$(date +%H%M%S)"
step "creating namespace $demo_ns on the hub; the operator should report it"
"$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" create namespace "$demo_ns" >/dev/null
deadline=$((SECONDS + 15))
until grep -q "$demo_ns" "$op/operator.log"; do
  [ $SECONDS -lt $deadline ] || die "the operator did not report namespace $demo_ns (log: $op/operator.log)"
  sleep 0.2
done

printf '\n--- operator log (%s) ---\n' "$op/operator.log"
sed 's/^/  /' "$op/operator.log"
printf '\n--- kubectl get ns (hub) ---\n'
"$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" get ns | sed 's/^/  /'
printf '\n--- metrics (http://127.0.0.1:%s/metrics) ---\n' "$admin_port"
fetch "http://127.0.0.1:$admin_port/metrics" | grep '^globalingress_' | sed 's/^/  /'
printf '\n'
bash tests/env/env.sh status "$STATE"
cat >&2 <<TXT
  operator   pid $(cat "$op/pid"), admin http://127.0.0.1:$admin_port/{healthz,readyz,metrics}, log $op/operator.log

demo ready in $((SECONDS - started))s. Everything keeps running; stop it all with: make env-down
TXT
