#!/usr/bin/env bash
# grants.sh STATE: gives the environment's clusters the identities the shipped charts define, for
# real, so the tests run the operator with exactly the rights a Helm install grants:
#   - hub: namespace globalingress-system, and the globalingress chart's ServiceAccount, ClusterRole,
#     Role (Lease) and bindings; a token for that ServiceAccount (TokenRequest) in
#     STATE/hub/kubeconfig-operator
#   - spoke-a, spoke-b: the globalingress-spoke chart (the hub's read-only grant); a token for its
#     ServiceAccount in STATE/<spoke>/kubeconfig-hub-grant
# Applied with server-side apply: running it again changes nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STATE=${1:?usage: grants.sh STATE}
HELM=$(helm_path)
KUBECTL=$(harness_path kubectl)
NAMESPACE=globalingress-system
[ -x "$HELM" ] || die "helm not found at $HELM: run tests/env/install.sh"
[ -x "$KUBECTL" ] || die "kubectl not found at $KUBECTL: run tests/env/install.sh"

# token_kubeconfig ADMIN_KUBECONFIG NAMESPACE SA OUT: a kubeconfig like ADMIN's with a fresh token
# of SA (48 h: longer than any test run).
token_kubeconfig() {
  local admin=$1 ns=$2 sa=$3 out=$4 token
  token=$("$KUBECTL" --kubeconfig "$admin" -n "$ns" create token "$sa" --duration 48h)
  [ -n "$token" ] || die "no token for $ns/$sa"
  sed "s|^\(    token: \).*|\1$token|" "$admin" >"$out.tmp"
  grep -q "token: $token" "$out.tmp" || die "could not write the token into $out"
  chmod 600 "$out.tmp"
  mv "$out.tmp" "$out"
}

apply() {
  "$KUBECTL" --kubeconfig "$1" apply --server-side --field-manager=globalingress-tests -f - >/dev/null
}

hub=$STATE/hub/kubeconfig
"$KUBECTL" --kubeconfig "$hub" create namespace "$NAMESPACE" --dry-run=client -o yaml | apply "$hub"
"$HELM" template globalingress "$REPO_ROOT/deploy/globalingress" --namespace "$NAMESPACE" \
  --kube-version "$KUBE_VERSION" --set aws.identity=none --set 'networkPolicy.apiServer.cidrs={127.0.0.1/32}' \
  --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml \
  --show-only templates/leader-election.yaml | apply "$hub"
token_kubeconfig "$hub" "$NAMESPACE" globalingress "$STATE/hub/kubeconfig-operator"

for spoke in spoke-a spoke-b; do
  kc=$STATE/$spoke/kubeconfig
  "$KUBECTL" --kubeconfig "$kc" create namespace "$NAMESPACE" --dry-run=client -o yaml | apply "$kc"
  # No token controller runs here: the token comes from TokenRequest instead of the chart's Secret.
  "$HELM" template globalingress-spoke "$REPO_ROOT/deploy/globalingress-spoke" --namespace "$NAMESPACE" \
    --kube-version "$KUBE_VERSION" --set tokenSecret.create=false --set networkPolicies.enabled=true | apply "$kc"
  token_kubeconfig "$kc" "$NAMESPACE" globalingress-hub "$STATE/$spoke/kubeconfig-hub-grant"
done
