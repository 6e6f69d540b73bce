#!/usr/bin/env bash
# make demo: installs what is missing, brings the local environment up (hub + two spokes, moto,
# Knot), builds globalingress, installs the CRDs with a DNSZone (Knot), a SpokeCluster (spoke-a)
# and two GlobalIngresses (one valid, one referring to a missing zone), starts `globalingress run`
# against the hub, shows statuses, Events, the plan and metrics. Then a failover: GlobalIngress
# demo/checkout with two regions, each a loopback data plane (tests/env/dataplane.py); it stops
# region eu, prints the timeline (detected, submitted, in sync, answer changed) and Knot's answers
# before and after, restarts eu and prints the failback, and draws both timelines as an SVG in
# .run/env/demo/. A Prometheus scrapes the operator throughout, with the chart's alert rules, and
# the dashboard's failover panels are queried from it at the end. Everything keeps running afterwards; `make env-down` stops it all (the data
# planes included).
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
"${K[@]}" -n globalingress-system create secret generic spoke-a --from-file=kubeconfig="$GI_SPOKE_A_GRANT_KUBECONFIG" \
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
# As the Helm chart runs it: with its ServiceAccount's token (tests/env/grants.sh installed the
# chart's RBAC on the hub), its Lease in globalingress-system.
# moto enforces IAM: the operator signs as the user holding only terraform/policies/hub.json.
AWS_ACCESS_KEY_ID=$GI_AWS_OPERATOR_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$GI_AWS_OPERATOR_SECRET_ACCESS_KEY \
  "$bin" run --kubeconfig "$GI_OPERATOR_KUBECONFIG" --admin-address "127.0.0.1:$admin_port" \
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

# A real Prometheus scraping the operator every second, with the chart's alert rules: the
# dashboard's queries (deploy/globalingress/files/dashboard.json) work in its UI as they are.
prom="$STATE/prometheus"
mkdir -p "$prom"
if pid_alive "$prom/pid"; then
  kill -TERM "$(cat "$prom/pid")"
  while pid_alive "$prom/pid"; do sleep 0.1; done
fi
prom_port=$(free_ports 1)
cp deploy/globalingress/files/alerts.yaml "$prom/alerts.yaml"
cat >"$prom/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 5s}
rule_files: [alerts.yaml]
scrape_configs:
  - job_name: globalingress
    static_configs: [{targets: ['127.0.0.1:$admin_port']}]
YAML
prometheus --config.file="$prom/prometheus.yml" --storage.tsdb.path="$prom/data" \
  --web.listen-address="127.0.0.1:$prom_port" </dev/null >"$prom/prometheus.log" 2>&1 &
echo $! >"$prom/pid"
deadline=$((SECONDS + 30))
until fetch "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1; do
  pid_alive "$prom/pid" || { cat "$prom/prometheus.log" >&2; die "prometheus exited"; }
  [ $SECONDS -lt $deadline ] || die "prometheus not ready after 30s (log: $prom/prometheus.log)"
  sleep 0.2
done
step "prometheus on http://127.0.0.1:$prom_port scraping the operator every second, with the chart's alerts"

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

# --- failover: two loopback data planes (regions eu and us) behind demo/checkout; eu stops -----
planes="$STATE/dataplanes"
out="$STATE/demo"
mkdir -p "$planes" "$out"
host="checkout.${GI_DNS_ZONE%.}"
now() { date +%s.%N; }
answer() { kdig @"$dns_host" -p "$dns_port" +norec +short "$host" A | sort | paste -sd' ' -; }
stop_plane() { # NAME: stop it (like a region that dies) and wait until it is gone
  if pid_alive "$planes/$1.pid"; then
    kill -TERM "$(cat "$planes/$1.pid")"
    while pid_alive "$planes/$1.pid"; do sleep 0.005; done
  fi
  rm -f "$planes/$1.pid"
}
start_plane() { # NAME IP: start it on $plane_port, wait for its READY line
  python3 tests/env/dataplane.py "$2" "$plane_port" </dev/null >"$planes/$1.log" 2>&1 &
  echo $! >"$planes/$1.pid"
  until grep -q '^READY' "$planes/$1.log"; do
    pid_alive "$planes/$1.pid" || return 1
    sleep 0.02
  done
}
# until_answer WANT TIMEOUT_S: poll Knot every ~20 ms until it answers WANT; prints when it did.
until_answer() {
  local deadline=$((SECONDS + $2))
  until [ "$(answer)" = "$1" ]; do
    [ $SECONDS -lt $deadline ] || die "Knot still answers '$(answer)' for $host, not '$1', after $2s"
    sleep 0.02
  done
  now
}
# until_record KIND BEFORE: wait for status.lastFailover of that kind, newer than BEFORE (its
# detectedAt), and save it as JSON.
until_record() {
  local deadline=$((SECONDS + 30)) kind detected
  while :; do
    kind=$("${K[@]}" -n demo get gi checkout -o jsonpath='{.status.lastFailover.kind}')
    detected=$("${K[@]}" -n demo get gi checkout -o jsonpath='{.status.lastFailover.detectedAt}')
    [ "$kind" = "$1" ] && [ "$detected" != "$2" ] && break
    [ $SECONDS -lt $deadline ] || die "no $1 recorded in demo/checkout status after 30s (log: $op/operator.log)"
    sleep 0.1
  done
  "${K[@]}" -n demo get gi checkout -o jsonpath='{.status.lastFailover}' >"$out/$(tr '[:upper:]' '[:lower:]' <<<"$1").json"
}
last_detected() { "${K[@]}" -n demo get gi checkout -o jsonpath='{.status.lastFailover.detectedAt}'; }
show() {
  printf '  %-28s %s\n' "kdig $host A" "$(answer)"
  "${K[@]}" -n demo get gi checkout | sed 's/^/  /'
  "${K[@]}" -n demo get gi checkout \
    -o jsonpath='{range .status.targets[*]}{"  target "}{.name}{": "}{.health}{" since "}{.since}{" ("}{.message}{")"}{"\n"}{end}'
}

printf '\n=== failover ===\n'
stop_plane eu # from an earlier demo
stop_plane us
for attempt in 1 2 3 4 5; do
  plane_port=$(free_ports 1) # free on 127.0.0.1; both planes must also get it on .2 and .3
  start_plane eu 127.0.0.2 && start_plane us 127.0.0.3 && break
  stop_plane eu
  stop_plane us
  [ "$attempt" -lt 5 ] || die "no port free on both 127.0.0.2 and 127.0.0.3 (logs: $planes/)"
done
if "${K[@]}" -n demo get gi checkout >/dev/null 2>&1; then
  step "deleting demo/checkout from an earlier demo (its status would answer for this one)"
  "${K[@]}" -n demo delete gi checkout --wait --timeout 60s >/dev/null
fi
step "data planes up: eu on 127.0.0.2:$plane_port (pid $(cat "$planes/eu.pid")), us on 127.0.0.3:$plane_port (pid $(cat "$planes/us.pid"))"
"${K[@]}" apply -f - >/dev/null <<YAML
apiVersion: globalingress.io/v1alpha1
kind: GlobalIngress
metadata: {name: checkout, namespace: demo}
spec:
  hostnames: [$host]
  dnsZoneRef: demo
  ttl: 5
  routing: {policy: Weighted}
  healthCheck: {protocol: HTTP, path: /healthz, port: $plane_port, interval: 1s, timeout: 500ms,
                healthyThreshold: 1, unhealthyThreshold: 2}
  failover: {failback: Automatic, failbackAfter: 5s}
  targets:
    - {name: eu, weight: 1, region: eu-west-1, loadBalancer: {mode: External, external: {addresses: [127.0.0.2]}}}
    - {name: us, weight: 1, region: us-east-1, loadBalancer: {mode: External, external: {addresses: [127.0.0.3]}}}
YAML
step "GlobalIngress demo/checkout: eu + us, probed every 1s (down after 2 failures), failbackAfter 5s, TTL 5"
until_answer "127.0.0.2 127.0.0.3" 60 >/dev/null
deadline=$((SECONDS + 60))
until [ "$("${K[@]}" -n demo get gi checkout -o jsonpath='{.status.targets[*].health}')" = "Healthy Healthy" ]; do
  [ $SECONDS -lt $deadline ] || die "demo/checkout targets not both Healthy after 60s (log: $op/operator.log)"
  sleep 0.2
done
step "both regions Healthy and published"
show
# The false-failover guard withholds withdrawals while more than panicThreshold (50 %) of all
# probed endpoints fell within --panic-window (30 s). shop's and orphan's addresses above
# (127.0.0.11-13) have no data plane: they failed at start-up and count until the window passes.
failing() { fetch "http://127.0.0.1:$admin_port/metrics" | awk '$1 == "globalingress_failing_endpoints_percent" {print $2 + 0}'; }
if [ "$(failing)" != 0 ]; then
  step "the false-failover guard counts $(failing)% of probed endpoints as failing (shop's and orphan's" \
    "addresses 127.0.0.11-13 have no data plane and fell at start-up); waiting for its 30s window to pass"
  deadline=$((SECONDS + 60))
  until [ "$(failing)" = 0 ]; do
    [ $SECONDS -lt $deadline ] || die "the false-failover guard still counts $(failing)% failing after 60s"
    sleep 0.25
  done
  step "guard settled (0% failing)"
fi

before=$(last_detected)
stop_plane eu # returns within ~10 ms of the process (and its listener) being gone
down=$(now)
step "region eu down: its data plane (127.0.0.2:$plane_port) stopped; waiting for the failover"
seen=$(until_answer "127.0.0.3" 60)
until_record Failover "$before"
step "failover done: Knot answers 127.0.0.3 only"
python3 tests/timeline_svg.py table "$out/failover.json" "$down" "$seen"
show

before=$(last_detected)
start_plane eu 127.0.0.2 || die "data plane eu did not restart: $(cat "$planes/eu.log")"
up=$(now)
step "region eu back (pid $(cat "$planes/eu.pid")); traffic returns after failbackAfter (5s)"
seen_back=$(until_answer "127.0.0.2 127.0.0.3" 60)
until_record Failback "$before"
step "failback done: Knot answers both again"
python3 tests/timeline_svg.py table "$out/failback.json" "$up" "$seen_back"
show
printf '\n--- kubectl -n demo get events (demo/checkout) ---\n'
uid=$("${K[@]}" -n demo get gi checkout -o jsonpath='{.metadata.uid}')
"${K[@]}" -n demo get events --field-selector "involvedObject.uid=$uid" --sort-by=.eventTime | sed 's/^/  /'
printf '\n--- prometheus (http://127.0.0.1:%s): the dashboard'"'"'s failover panels ---\n' "$prom_port"
sleep 2
for q in 'sum by (kind) (globalingress_failover_duration_seconds_count{until="answer_seen"})' \
  'max by (kind) (globalingress_failover_duration_seconds_sum{until="answer_seen"} / globalingress_failover_duration_seconds_count{until="answer_seen"})'; do
  printf '  %s\n' "$q"
  python3 - "http://127.0.0.1:$prom_port" "$q" <<'PY'
import json, sys, urllib.parse, urllib.request
url, q = sys.argv[1], sys.argv[2]
data = json.load(urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=5))
for r in data["data"]["result"]:
    print(f"    {r['metric'].get('kind', '')}: {float(r['value'][1]):.2f}")
PY
done
python3 tests/timeline_svg.py svg "$out/failover-timeline.svg" \
  "$out/failover.json" "$down" "$seen" "$out/failback.json" "$up" "$seen_back"
printf '\n  timeline plot: %s\n' "$out/failover-timeline.svg"

printf '\n'
bash tests/env/env.sh status "$STATE"
cat >&2 <<TXT
  operator   pid $(cat "$op/pid"), admin http://127.0.0.1:$admin_port/{healthz,readyz,metrics}, log $op/operator.log
             (as the Helm chart's ServiceAccount: $GI_OPERATOR_KUBECONFIG)
  prometheus http://127.0.0.1:$prom_port (pid $(cat "$prom/pid")): /alerts for the chart's alerts, /graph for the
             dashboard's queries, e.g. sum by (kind) (globalingress_failover_duration_seconds_count)
  regions    eu 127.0.0.2:$plane_port pid $(cat "$planes/eu.pid"), us 127.0.0.3:$plane_port pid $(cat "$planes/us.pid")
             (tests/env/dataplane.py; kill -TERM one to fail its region over again)

demo ready in $((SECONDS - started))s. Everything keeps running; stop it all with: make env-down
TXT
