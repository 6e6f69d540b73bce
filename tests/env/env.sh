#!/usr/bin/env bash
# The local test environment: three real kube-apiservers (hub, spoke-a, spoke-b), the moto AWS
# emulator and a Knot DNS server, all on 127.0.0.1 high ports.
#
#   env.sh up   [DIR]   start everything (safe to re-run: a running environment is reused)
#   env.sh down [DIR]   stop every process it started, by PID, and wait until they are gone
#   env.sh status [DIR] print the endpoints of a running environment
#   env.sh run  [DIR]   up, print "READY DIR/env", stay until standard input closes, then down
#                       (the test binary holds that pipe, so the servers die with it)
#
# DIR defaults to .run/env in the repository. DIR/env is a shell file with every endpoint; the test
# support reads it through GLOBALINGRESS_TEST_ENV.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CLUSTERS=(hub spoke-a spoke-b)
DNS_ZONE=example.test
TSIG_KEY_NAME=globalingress-test
TSIG_ALGORITHM=hmac-sha256

cmd=${1:-}
STATE=${2:-$REPO_ROOT/.run/env}

all_alive() {
  local c
  for c in "${CLUSTERS[@]}"; do pid_alive "$STATE/$c/pid" || return 1; done
  pid_alive "$STATE/moto/pid" && pid_alive "$STATE/knot/pid" && [ -s "$STATE/env" ]
}

stop_all() {
  local pidfile pids=()
  # dataplanes/*.pid: the loopback data planes make demo starts (tests/env/dataplane.py).
  for pidfile in "$STATE"/*/pid "$STATE"/dataplanes/*.pid; do
    [ -e "$pidfile" ] || continue
    if pid_alive "$pidfile"; then
      pids+=("$(cat "$pidfile")")
      kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  local deadline=$((SECONDS + 20)) p
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then kill -KILL "$p" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
  rm -f "$STATE/env"
}

# wait_for DESCRIPTION TIMEOUT_S PIDFILE LOG COMMAND...: run COMMAND until it succeeds; fail with
# the log's tail if the process dies or the timeout passes.
wait_for() {
  local what=$1 timeout=$2 pidfile=$3 logfile=$4; shift 4
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$pidfile"; then
      tail -n 20 "$logfile" >&2 || true
      die "$what exited during start-up (log: $logfile)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$logfile" >&2 || true
      die "$what not ready after ${timeout}s (log: $logfile)"
    fi
    sleep 0.2
  done
}

start_clusters() {
  local harness c
  harness=$("$REPO_ROOT/tests/kube-harness/build.sh")
  for c in "${CLUSTERS[@]}"; do
    mkdir -p "$STATE/$c"
    rm -f "$STATE/$c/kubeconfig"
    # -lifeline=signal: this script returns while the server keeps running; env.sh down stops it.
    "$harness" -name "$c" -dir "$STATE/$c" -lifeline signal </dev/null >"$STATE/$c/harness.log" 2>&1 &
    echo $! >"$STATE/$c/pid"
  done
}

wait_clusters() {
  local c
  for c in "${CLUSTERS[@]}"; do
    # Three API servers start at once on 2 cores: allow them time.
    wait_for "kube-apiserver $c" 240 "$STATE/$c/pid" "$STATE/$c/harness.log" grep -q '^READY' "$STATE/$c/harness.log"
  done
}

start_moto() {
  local port=$1
  [ -x "$MOTO_VENV/bin/moto_server" ] || die "moto not installed in $MOTO_VENV: run tests/env/install.sh (make deps)"
  mkdir -p "$STATE/moto"
  # ACM certificates turn ISSUED after this many seconds (moto's default is 60).
  MOTO_ACM_VALIDATION_WAIT=${MOTO_ACM_VALIDATION_WAIT:-5} \
    "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$STATE/moto/moto.log" 2>&1 &
  echo $! >"$STATE/moto/pid"
  wait_for moto 60 "$STATE/moto/pid" "$STATE/moto/moto.log" \
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=2)"
}

start_knot() {
  local port=$1 dir="$STATE/knot" secret
  command -v knotd >/dev/null || die "knotd not found: install Debian's knot and knot-dnsutils (tests/env/install.sh)"
  rm -rf "$dir"
  mkdir -p "$dir/run" "$dir/storage" "$dir/zones"
  # A fresh TSIG key per run: nothing outside this environment can update the zone.
  secret=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
  printf '%s\n' "$secret" >"$dir/tsig.secret"
  chmod 600 "$dir/tsig.secret"
  cat >"$dir/zones/$DNS_ZONE.zone" <<ZONE
\$ORIGIN $DNS_ZONE.
\$TTL 300
@       SOA  ns1.$DNS_ZONE. hostmaster.$DNS_ZONE. 1 3600 600 86400 30
@       NS   ns1.$DNS_ZONE.
ns1     A    127.0.0.1
ZONE
  cat >"$dir/knot.conf" <<CONF
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$port
    tcp-workers: 2
    udp-workers: 2
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "$dir/storage"
key:
  - id: $TSIG_KEY_NAME
    algorithm: $TSIG_ALGORITHM
    secret: $secret
acl:
  - id: tsig-update
    key: $TSIG_KEY_NAME
    action: [update, transfer]
template:
  - id: default
    storage: "$dir/zones"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
  - domain: $DNS_ZONE
    file: "$DNS_ZONE.zone"
    acl: tsig-update
CONF
  knotd -c "$dir/knot.conf" </dev/null >"$dir/knot.log" 2>&1 &
  echo $! >"$dir/pid"
  wait_for knot 30 "$dir/pid" "$dir/knot.log" \
    sh -c "kdig @127.0.0.1 -p $port +norec +timeout=1 +retry=0 SOA $DNS_ZONE | grep -q 'status: NOERROR'"
}

write_env() {
  local moto_port=$1 dns_port=$2
  cat >"$STATE/env.tmp" <<ENV
# Written by tests/env/env.sh up; every endpoint of this environment.
GI_ENV_DIR=$STATE
GI_HUB_KUBECONFIG=$STATE/hub/kubeconfig
GI_SPOKE_A_KUBECONFIG=$STATE/spoke-a/kubeconfig
GI_SPOKE_B_KUBECONFIG=$STATE/spoke-b/kubeconfig
GI_HUB_UNPRIVILEGED_KUBECONFIG=$STATE/hub/kubeconfig-unprivileged
GI_AWS_ENDPOINT=http://127.0.0.1:$moto_port
GI_AWS_REGION=us-east-1
GI_DNS_SERVER=127.0.0.1:$dns_port
GI_DNS_ZONE=$DNS_ZONE.
GI_TSIG_KEY_NAME=$TSIG_KEY_NAME
GI_TSIG_ALGORITHM=$TSIG_ALGORITHM
GI_TSIG_SECRET_FILE=$STATE/knot/tsig.secret
GI_KUBECTL=$(harness_path kubectl)
ENV
  mv "$STATE/env.tmp" "$STATE/env"
}

print_status() {
  # shellcheck disable=SC1091
  source "$STATE/env"
  local c
  cat >&2 <<TXT
environment in $STATE
  hub        $(awk '/server:/ {print $2}' "$GI_HUB_KUBECONFIG")   kubeconfig $GI_HUB_KUBECONFIG
  spoke-a    $(awk '/server:/ {print $2}' "$GI_SPOKE_A_KUBECONFIG")   kubeconfig $GI_SPOKE_A_KUBECONFIG
  spoke-b    $(awk '/server:/ {print $2}' "$GI_SPOKE_B_KUBECONFIG")   kubeconfig $GI_SPOKE_B_KUBECONFIG
  aws (moto) $GI_AWS_ENDPOINT   region $GI_AWS_REGION, any access key
  dns (knot) $GI_DNS_SERVER   zone $GI_DNS_ZONE, TSIG key $GI_TSIG_KEY_NAME ($GI_TSIG_ALGORITHM) secret in $GI_TSIG_SECRET_FILE
  pids      $(for c in "$STATE"/*/pid; do printf ' %s=%s' "$(basename "$(dirname "$c")")" "$(cat "$c")"; done)
  kubectl    $GI_KUBECTL (same version as the servers)
  try:       $GI_KUBECTL --kubeconfig $GI_HUB_KUBECONFIG get ns
  variables: source $STATE/env   (or GLOBALINGRESS_TEST_ENV=$STATE/env for cargo test)
TXT
}

up() {
  mkdir -p "$STATE"
  if all_alive; then
    log "environment already running"
    print_status
    return 0
  fi
  stop_all # whatever half of an earlier environment is left
  local started=$SECONDS ports moto_port dns_port
  ports=$(free_ports 2)
  moto_port=${ports% *}
  dns_port=${ports#* }
  start_clusters
  start_moto "$moto_port"
  start_knot "$dns_port"
  wait_clusters
  write_env "$moto_port" "$dns_port"
  log "environment up in $((SECONDS - started))s"
  print_status
}

case "$cmd" in
  up)
    trap 'rc=$?; [ $rc -eq 0 ] || stop_all; exit $rc' EXIT
    up
    ;;
  down)
    stop_all
    log "environment in $STATE stopped"
    ;;
  status)
    all_alive || die "no environment running in $STATE (make env-up)"
    print_status
    ;;
  run)
    trap 'stop_all' EXIT
    trap 'exit 143' TERM INT
    up
    echo "READY $STATE/env"
    # Block until whoever started us closes our standard input (or dies).
    cat >/dev/null || true
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
