#!/usr/bin/env bash
# make bench: the benchmarks (bench/) against a fresh local environment in .run/bench.
#   SCENARIOS=publish,failover,provision,paced,admission,peers   which to run (default the first
#                                  five; peers builds external-dns first, ~7 min the first time)
#   PROVISION_SIZES=100            provision: GlobalIngresses x 2 Provision targets per run
#   SIZES=100,1000,10000           publish: GlobalIngresses per run (default 100,1000)
#   FAILOVER_SIZES=1,100,1000      failover: GlobalIngresses sharing the failing region
#   FAILOVER_REPEATS=20            failover: region down and back this often per size and provider
#   FAILOVER_PROVIDERS=knot,route53
#   PACED_SIZE=100                 paced: GlobalIngresses in each of its two groups
#   PACED_PENDING=30               paced: seconds a Route 53 change stays PENDING
#   ADMISSION_SIZE=1000            admission: creates per copy of the GlobalIngress CRD
#   ADMISSION_REPEATS=3            admission: runs per copy (the median is printed)
#   PEERS_SIZE=1000                peers: hostnames x 3 weighted records, globalingress beside
#                                  external-dns (as shipped and tuned)
#   PEERS_IDLE=120                 peers: seconds of its idle phase
# Prints tables; asserts nothing. The environment is stopped on every exit path; the failover
# runs' operator logs are in .run/bench/ until then.
set -euo pipefail
source "$(dirname "$0")/env/lib.sh"
cd "$REPO_ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GI_CACHE/target}
STATE=$REPO_ROOT/.run/bench
trap 'bash tests/env/env.sh down "$STATE" >/dev/null 2>&1 || true' EXIT
bash tests/env/install.sh
scenarios=${SCENARIOS:-publish,failover,provision,paced,admission}
external_dns=()
if [[ ,$scenarios, == *,peers,* ]]; then
  external_dns=(--external-dns "$(bash tests/env/external-dns.sh)")
fi
log "building (release)"
cargo build --locked --release --bin globalingress --bin globalingress-bench
bash tests/env/env.sh up "$STATE"
# shellcheck disable=SC1091
source "$STATE/env"
"$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" apply -f crds/ >/dev/null
"$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" wait --for condition=established --timeout 60s \
  crd/globalingresses.globalingress.io crd/dnszones.globalingress.io crd/spokeclusters.globalingress.io >/dev/null
if [ ${#external_dns[@]} -gt 0 ]; then
  # external-dns's DNSEndpoint CRD, as its module ships it.
  "$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" apply -f "$(bash tests/env/external-dns.sh crd)" >/dev/null
  "$GI_KUBECTL" --kubeconfig "$GI_HUB_KUBECONFIG" wait --for condition=established --timeout 60s \
    crd/dnsendpoints.externaldns.k8s.io >/dev/null
fi
"$CARGO_TARGET_DIR/release/globalingress-bench" \
  --env "$STATE/env" \
  --operator "$CARGO_TARGET_DIR/release/globalingress" \
  --scenarios "$scenarios" \
  "${external_dns[@]}" \
  --peers-size "${PEERS_SIZE:-1000}" \
  --peers-idle "${PEERS_IDLE:-120}" \
  --paced-size "${PACED_SIZE:-100}" \
  --paced-pending "${PACED_PENDING:-30}" \
  --admission-size "${ADMISSION_SIZE:-1000}" \
  --admission-repeats "${ADMISSION_REPEATS:-3}" \
  --sizes "${SIZES:-100,1000}" \
  --provision-sizes "${PROVISION_SIZES:-100}" \
  --failover-sizes "${FAILOVER_SIZES:-1,100,1000}" \
  --failover-repeats "${FAILOVER_REPEATS:-20}" \
  --failover-providers "${FAILOVER_PROVIDERS:-knot,route53}"
