#!/usr/bin/env bash
# make demo: installs what is missing, brings the local environment up (hub + two spokes, moto,
# Knot), builds globalingress, installs the CRDs with a DNSZone (Knot), a SpokeCluster (spoke-a)
# and two GlobalIngresses (one valid, one referring to a missing zone), starts `globalingress run`
# against the hub, shows statuses, Events, the plan and metrics, and prints where everything is.
# Everything keeps running afterwards; `make env-down` stops it all.
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
K=("$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG")
step "installing the CRDs and the demo objects on the hub (demo namespace: demo)"
"${K[@]}" apply -f crds/ >/dev/null
"${K[@]}" create namespace globalingress-system --dry-run=client -o yaml | "${K[@]}" apply -f - >/dev/null
"${K[@]}" create namespace demo --dry-run=client -o yaml | "${K[@]}" apply -f - >/dev/null
"${K[@]}" -n globalingress-system create secret generic demo-tsig --from-literal=secret="$(cat "$GI_TSIG_SECRET_FILE")" \
  --dry-run=client -o yaml | "${K[@]}" apply -f - >/dev/null
"${K[@]}" -n globalingress-system create secret generic spoke-a --from-file=kubeconfig="$GI_SPOKE_A_KUBECONFIG" \
  --dry-run=client -o yaml | "${K[@]}" apply -f - >/dev/null
"${K[@]}" apply -f - >/dev/null <<YAML
apiVersion: globalingress.io/v1alpha1
kind: DNSZone
metadata: {name: demo}
spec:
  domain: ${GI_DNS_ZONE%.}
  ownerId: demo-hub
  provider:
    rfc2136:
      server: $GI_DNS_SERVER
      tsigKeyName: $GI_TSIG_KEY_NAME
      algorithm: $GI_TSIG_ALGORITHM
      tsigSecretRef: {namespace: globalingress-system, name: demo-tsig, key: secret}
---
apiVersion: globalingress.io/v1alpha1
kind: SpokeCluster
metadata: {name: spoke-a}
spec:
  region: eu-west-1
  kubeconfigSecretRef: {namespace: globalingress-system, name: spoke-a}
---
apiVersion: globalingress.io/v1alpha1
kind: GlobalIngress
metadata: {name: shop, namespace: demo}
spec:
  hostnames: [shop.${GI_DNS_ZONE%.}]
  dnsZoneRef: demo
  routing: {policy: Weighted}
  targets:
    - {name: eu-west-1, weight: 90, region: eu-west-1, loadBalancer: {mode: External, external: {addresses: [127.0.0.11]}}}
    - {name: us-east-1, weight: 10, region: us-east-1, loadBalancer: {mode: External, external: {addresses: [127.0.0.12]}}}
---
apiVersion: globalingress.io/v1alpha1
kind: GlobalIngress
metadata: {name: orphan, namespace: demo}
spec:
  hostnames: [orphan.${GI_DNS_ZONE%.}]
  dnsZoneRef: no-such-zone
  routing: {policy: Weighted}
  targets:
    - {name: only, weight: 1, loadBalancer: {mode: External, external: {addresses: [127.0.0.13]}}}
YAML

admin_port=$(free_ports 1)
step "starting globalingress run (admin server on 127.0.0.1:$admin_port)"
AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
  "$bin" run --kubeconfig "$GI_HUB_KUBECONFIG" --admin-address "127.0.0.1:$admin_port" \
  --aws-endpoint-url "$GI_AWS_ENDPOINT" --spoke-check-interval 5s \
  </dev/null >"$op/operator.log" 2>&1 &
echo $! >"$op/pid"

fetch() { python3 -c "import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end='')" "$1"; }
deadline=$((SECONDS + 60))
until fetch "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; do
  pid_alive "$op/pid" || { cat "$op/operator.log" >&2; die "globalingress run exited"; }
  [ $SECONDS -lt $deadline ] || { cat "$op/operator.log" >&2; die "globalingress not ready after 60s"; }
  sleep 0.2
done
step "operator ready (every watch synced): /healthz says '$(fetch "http://127.0.0.1:$admin_port/healthz" | tr -d '\n')'"
deadline=$((SECONDS + 30))
until [ "$("${K[@]}" -n demo get gi shop -o jsonpath='{.status.conditions[?(@.type=="DNSSynced")].status}')" = True ]; do
  [ $SECONDS -lt $deadline ] || die "GlobalIngress demo/shop not DNSSynced after 30s (log: $op/operator.log)"
  sleep 0.2
done
step "GlobalIngress demo/shop is published (DNSSynced)"

printf '\n--- kubectl get dnszones,spokeclusters,globalingresses ---\n'
"${K[@]}" get dnsz,spoke | sed 's/^/  /'
"${K[@]}" -n demo get gi | sed 's/^/  /'
printf '\n--- kubectl -n demo get events ---\n'
"${K[@]}" -n demo get events --sort-by=.lastTimestamp | sed 's/^/  /'
dns_host=${GI_DNS_SERVER%:*}
dns_port=${GI_DNS_SERVER#*:}
printf '\n--- what Knot answers (kdig @%s -p %s, recursion off) ---\n' "$dns_host" "$dns_port"
for q in "shop.${GI_DNS_ZONE%.} A" "_gi.shop.${GI_DNS_ZONE%.} TXT"; do
  # shellcheck disable=SC2086
  printf '  %-40s %s\n' "$q" "$(kdig @"$dns_host" -p "$dns_port" +norec +short $q | tr '\n' ' ')"
done
printf '\n--- globalingress plan for demo/shop (what it publishes) ---\n'
"${K[@]}" -n demo get gi shop -o yaml >"$op/shop.yaml"
"${K[@]}" get dnsz demo -o yaml >"$op/zone.yaml"
"$bin" plan -f "$op/zone.yaml" "$op/shop.yaml" | sed 's/^/  /'
printf '\n--- metrics (http://127.0.0.1:%s/metrics) ---\n' "$admin_port"
fetch "http://127.0.0.1:$admin_port/metrics" | grep -E '^globalingress_(leader|reconciles_total|writes_total|objects_by_condition)' | sed 's/^/  /'
printf '\n'
bash tests/env/env.sh status "$STATE"
cat >&2 <<TXT
  operator   pid $(cat "$op/pid"), admin http://127.0.0.1:$admin_port/{healthz,readyz,metrics}, log $op/operator.log

demo ready in $((SECONDS - started))s. Everything keeps running; stop it all with: make env-down
TXT
