#!/usr/bin/env bash
# The local test environment: three real kube-apiservers (hub, spoke-a, spoke-b), the moto AWS
# emulator and a Knot DNS server, all on 127.0.0.1 high ports. moto enforces IAM
# (tests/env/iam_setup.py): the operator signs with a user holding only terraform/policies/hub.json
# (GI_AWS_OPERATOR_*), the tests with an admin's keys (GI_AWS_ADMIN_*); GI_AWS_ENDPOINT is a
# recording proxy in front of it (tests/env/fault_proxy.py --record) whose GI_AWS_OPERATIONS file
# tests/iam_report.py reads.
#
#   env.sh up   [DIR]   start everything fresh (safe to re-run: a running environment is reused)
#   env.sh down [DIR]   stop every process it started (components included), by PID, and wait
#   env.sh status [DIR] print the endpoints of a running environment
#   env.sh run  [DIR]   up, print "READY DIR/env", stay until standard input closes, then down
#                       (the test binary holds that pipe, so the servers die with it)
#
# One component inside DIR, its data kept across stop and start (tests restart servers with it):
#   env.sh start   DIR NAME            start NAME in DIR/NAME in the background, reusing what
#                                      DIR/NAME holds from before (same port, key, certificates,
#                                      data) or creating it fresh; prints "READY DIR/NAME/env"
#   env.sh stop    DIR NAME            stop it (SIGTERM, KILL after 20 s), keep its data
#   env.sh restart DIR NAME [SECONDS]  stop, sleep SECONDS (default 0), start; prints READY too
# NAME is knot or a cluster name (hub, spoke-a, spoke-b, or any other DNS label: a private
# kube-apiserver). DIR/NAME/env describes it: a cluster has GI_KUBECONFIG, GI_URL and
# GI_UNPRIVILEGED_KUBECONFIG; knot has GI_DNS_SERVER, GI_DNS_ZONE, GI_TSIG_KEY_NAME,
# GI_TSIG_ALGORITHM, GI_TSIG_SECRET_FILE and GI_KNOT_LOG. up writes them for its own parts too.
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
# Absolute: the env file it writes is read from other directories.
mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd)
# Names up or make demo use for other things inside DIR.
RESERVED_NAMES=(moto aws-proxy operator dataplanes demo)

all_alive() {
  local c
  for c in "${CLUSTERS[@]}"; do pid_alive "$STATE/$c/pid" || return 1; done
  pid_alive "$STATE/moto/pid" && pid_alive "$STATE/aws-proxy/pid" && pid_alive "$STATE/knot/pid" &&
    [ -s "$STATE/env" ]
}

stop_all() {
  local pidfile pids=()
  # dataplanes/*.pid: the loopback data planes make demo starts (tests/env/dataplane.py);
  # private/*/*/pid: components tests start for themselves (a hub to restart, a Knot to stop).
  for pidfile in "$STATE"/*/pid "$STATE"/private/*/*/pid "$STATE"/dataplanes/*.pid; do
    [ -e "$pidfile" ] || continue
    if pid_alive "$pidfile"; then
      pids+=("$(cat "$pidfile")")
      kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  local deadline=$((SECONDS + 20)) p
  for p in "${pids[@]}"; do
    while running "$p"; do
      if [ $SECONDS -ge $deadline ]; then kill -KILL "$p" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
  rm -f "$STATE/env"
}

# running PID: the process exists and has not exited (a zombie left for init to reap, as our
# background servers are once the script that started them is gone, counts as gone).
running() {
  kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_one PIDFILE: SIGTERM its process, wait until it is gone (KILL after 20 s), remove PIDFILE.
stop_one() {
  local pidfile=$1 p deadline=$((SECONDS + 20))
  if pid_alive "$pidfile"; then
    p=$(cat "$pidfile")
    kill -TERM "$p" 2>/dev/null || true
    while running "$p"; do
      if [ $SECONDS -ge $deadline ]; then
        log "pid $p ($pidfile) still running after 20s: KILL"
        kill -KILL "$p" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
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

# ready_lines LOG: how many READY lines the harness wrote to LOG (its log is appended to at every
# start, so a restart waits for one more than before).
ready_lines() {
  local n
  n=$(grep -c '^READY' "$1" 2>/dev/null || true)
  echo "${n:-0}"
}

# launch_cluster DIR: start the kube-apiserver harness for cluster $(basename DIR) in DIR, in the
# background. -keep-data: DIR's state from an earlier start (etcd data, certificates, tokens,
# ports) is used again, so kubeconfigs stay valid across env.sh stop/start; up wipes DIR first.
launch_cluster() {
  local dir=$1 harness
  harness=$("$REPO_ROOT/tests/kube-harness/build.sh")
  mkdir -p "$dir"
  # -lifeline=signal: this script returns while the server keeps running; env.sh down stops it.
  "$harness" -name "$(basename "$dir")" -dir "$dir" -keep-data -lifeline signal </dev/null >>"$dir/harness.log" 2>&1 &
  echo $! >"$dir/pid"
}

# wait_cluster DIR BEFORE: wait for the READY line after the BEFORE ones in DIR/harness.log, then
# write DIR/env from it ("READY <kubeconfig> <url>").
wait_cluster() {
  local dir=$1 before=$2 line kubeconfig url
  # Three API servers start at once on 2 cores: allow them time.
  wait_for "kube-apiserver $(basename "$dir")" 240 "$dir/pid" "$dir/harness.log" \
    sh -c "[ \$(grep -c '^READY' '$dir/harness.log') -gt $before ]"
  line=$(grep '^READY' "$dir/harness.log" | tail -n 1)
  read -r _ kubeconfig url <<<"$line"
  cat >"$dir/env.tmp" <<ENV
# Written by tests/env/env.sh: kube-apiserver $(basename "$dir"); its data is kept across env.sh stop/start.
GI_KUBECONFIG=$kubeconfig
GI_URL=$url
GI_UNPRIVILEGED_KUBECONFIG=$dir/kubeconfig-unprivileged
ENV
  mv "$dir/env.tmp" "$dir/env"
}

start_clusters() {
  local c
  for c in "${CLUSTERS[@]}"; do
    rm -rf "${STATE:?}/$c" # a fresh cluster: nothing of an earlier environment's state
    launch_cluster "$STATE/$c"
  done
}

wait_clusters() {
  local c
  for c in "${CLUSTERS[@]}"; do
    wait_cluster "$STATE/$c" 0
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

# enforce_iam MOTO_PORT: users, roles and policies (tests/env/iam_setup.py), then IAM enforcement
# on; the keys go to $STATE/moto/keys.env.
enforce_iam() {
  "$MOTO_VENV/bin/python" "$REPO_ROOT/tests/env/iam_setup.py" "http://127.0.0.1:$1" "$STATE/moto/keys.env" ||
    die "tests/env/iam_setup.py failed against moto (log: $STATE/moto/moto.log)"
}

# start_aws_proxy MOTO_PORT PORT: the recording proxy every AWS call of the tests goes through.
start_aws_proxy() {
  mkdir -p "$STATE/aws-proxy"
  : >"$STATE/aws-proxy/operations.jsonl"
  python3 "$REPO_ROOT/tests/env/fault_proxy.py" --upstream "http://127.0.0.1:$1" --port "$2" \
    --record "$STATE/aws-proxy/operations.jsonl" --forever </dev/null >"$STATE/aws-proxy/log" 2>&1 &
  echo $! >"$STATE/aws-proxy/pid"
  wait_for aws-proxy 20 "$STATE/aws-proxy/pid" "$STATE/aws-proxy/log" grep -q READY "$STATE/aws-proxy/log"
}

# knot_conf DIR PORT SECRET ZONEFILE_LOAD: Knot's configuration for the server in DIR.
knot_conf() {
  local dir=$1 port=$2 secret=$3 zonefile_load=$4
  cat <<CONF
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$port
    tcp-workers: 2
    udp-workers: 2
    background-workers: 1
log:
  - target: stderr
    any: info
    # debug for zones only: Knot 3.2 logs the remote address of an update (and a transfer) only in
    # its ACL line, "[zone] ACL, allowed, action update, remote 127.0.0.11@40000, key 'name.'";
    # tests tell operator replicas apart by their source addresses in it.
    zone: debug
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
    zonefile-load: $zonefile_load
    journal-content: all
zone:
  - domain: $DNS_ZONE
    file: "$DNS_ZONE.zone"
    acl: tsig-update
CONF
}

# start_knot DIR fresh|keep: start Knot in DIR and write DIR/env. keep reuses DIR's port, TSIG
# key and zone contents (journal) when DIR holds them; fresh (or no state) starts over.
start_knot() {
  local dir=$1 mode=$2 port secret zonefile_load
  command -v knotd >/dev/null || die "knotd not found: install Debian's knot and knot-dnsutils (tests/env/install.sh)"
  if [ "$mode" = keep ] && [ -s "$dir/port" ] && [ -s "$dir/tsig.secret" ] && [ -d "$dir/storage" ]; then
    port=$(cat "$dir/port")
    secret=$(cat "$dir/tsig.secret")
    # The zone as the journal holds it: the zone file was never synced (zonefile-sync: -1), and
    # loading it as a difference would revert every update made before the restart.
    zonefile_load=none
  else
    rm -rf "$dir"
    mkdir -p "$dir/run" "$dir/storage" "$dir/zones"
    port=$(free_ports 1)
    printf '%s\n' "$port" >"$dir/port"
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
    zonefile_load=difference-no-serial
  fi
  knot_conf "$dir" "$port" "$secret" "$zonefile_load" >"$dir/knot.conf"
  # Appended to: a test reading the log after a restart still sees what came before.
  knotd -c "$dir/knot.conf" </dev/null >>"$dir/knot.log" 2>&1 &
  echo $! >"$dir/pid"
  wait_for knot 30 "$dir/pid" "$dir/knot.log" \
    sh -c "kdig @127.0.0.1 -p $port +norec +timeout=1 +retry=0 SOA $DNS_ZONE | grep -q 'status: NOERROR'"
  cat >"$dir/env.tmp" <<ENV
# Written by tests/env/env.sh: Knot DNS; its zone, port and TSIG key are kept across env.sh stop/start.
GI_DNS_SERVER=127.0.0.1:$port
GI_DNS_ZONE=$DNS_ZONE.
GI_TSIG_KEY_NAME=$TSIG_KEY_NAME
GI_TSIG_ALGORITHM=$TSIG_ALGORITHM
GI_TSIG_SECRET_FILE=$dir/tsig.secret
GI_KNOT_LOG=$dir/knot.log
ENV
  mv "$dir/env.tmp" "$dir/env"
}

write_env() {
  local moto_port=$1 dns_port=$2 proxy_port=$3
  cat >"$STATE/env.tmp" <<ENV
# Written by tests/env/env.sh up; every endpoint of this environment.
GI_ENV_DIR=$STATE
GI_HUB_KUBECONFIG=$STATE/hub/kubeconfig
GI_SPOKE_A_KUBECONFIG=$STATE/spoke-a/kubeconfig
GI_SPOKE_B_KUBECONFIG=$STATE/spoke-b/kubeconfig
GI_HUB_UNPRIVILEGED_KUBECONFIG=$STATE/hub/kubeconfig-unprivileged
GI_OPERATOR_KUBECONFIG=$STATE/hub/kubeconfig-operator
GI_SPOKE_A_GRANT_KUBECONFIG=$STATE/spoke-a/kubeconfig-hub-grant
GI_SPOKE_B_GRANT_KUBECONFIG=$STATE/spoke-b/kubeconfig-hub-grant
GI_OPERATOR_NAMESPACE=globalingress-system
GI_HELM=$(helm_path)
GI_AWS_ENDPOINT=http://127.0.0.1:$proxy_port
GI_MOTO_ENDPOINT=http://127.0.0.1:$moto_port
GI_AWS_OPERATIONS=$STATE/aws-proxy/operations.jsonl
GI_AWS_REGION=us-east-1
$(cat "$STATE/moto/keys.env")
GI_DNS_SERVER=127.0.0.1:$dns_port
GI_DNS_ZONE=$DNS_ZONE.
GI_TSIG_KEY_NAME=$TSIG_KEY_NAME
GI_TSIG_ALGORITHM=$TSIG_ALGORITHM
GI_TSIG_SECRET_FILE=$STATE/knot/tsig.secret
GI_KUBECTL=$(harness_path kubectl)
GI_MOTO_SERVER=$MOTO_VENV/bin/moto_server
GI_IAM_SETUP=$REPO_ROOT/tests/env/iam_setup.py
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
  aws (moto) $GI_AWS_ENDPOINT   region $GI_AWS_REGION, IAM enforced: keys GI_AWS_ADMIN_* (everything), GI_AWS_OPERATOR_* (hub.json)
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
  # Servers tests started for themselves last time (stopped just above): their data goes too.
  rm -rf "$STATE/private"
  local started=$SECONDS moto_port proxy_port
  read -r moto_port proxy_port < <(free_ports 2 | xargs)
  start_clusters
  start_moto "$moto_port"
  enforce_iam "$moto_port"
  start_aws_proxy "$moto_port" "$proxy_port"
  start_knot "$STATE/knot" fresh
  wait_clusters
  bash "$REPO_ROOT/tests/env/grants.sh" "$STATE"
  write_env "$moto_port" "$(cat "$STATE/knot/port")" "$proxy_port"
  log "environment up in $((SECONDS - started))s"
  print_status
}

# component_dir: DIR/NAME for the component commands (absolute, NAME checked).
component_dir() {
  [ -n "${COMPONENT:-}" ] || die "usage: env.sh $cmd DIR NAME (NAME: knot or a cluster name)"
  [[ $COMPONENT =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "component name must be a DNS label: '$COMPONENT'"
  local r
  for r in "${RESERVED_NAMES[@]}"; do
    [ "$COMPONENT" != "$r" ] || die "'$COMPONENT' is not a component env.sh can start (knot or a cluster name)"
  done
  mkdir -p "$STATE"
  printf '%s/%s\n' "$(cd "$STATE" && pwd)" "$COMPONENT"
}

component_start() {
  local dir
  dir=$(component_dir)
  if pid_alive "$dir/pid" && [ -s "$dir/env" ]; then
    log "$COMPONENT already running in $dir"
  elif [ "$COMPONENT" = knot ]; then
    start_knot "$dir" keep
  else
    local before
    before=$(ready_lines "$dir/harness.log")
    launch_cluster "$dir"
    wait_cluster "$dir" "$before"
  fi
  echo "READY $dir/env"
}

component_stop() {
  local dir
  dir=$(component_dir)
  stop_one "$dir/pid"
  log "$COMPONENT in $dir stopped (data kept)"
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
  start)
    COMPONENT=${3:-}
    component_start
    ;;
  stop)
    COMPONENT=${3:-}
    component_stop
    ;;
  restart)
    COMPONENT=${3:-}
    pause=${4:-0}
    [[ $pause =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart: SECONDS must be a number, not '$pause'"
    component_stop
    sleep "$pause"
    component_start
    ;;
  *)
    # The header comment is the usage.
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
    ;;
esac
