#!/usr/bin/env bash
# chart.sh ENV_FILE: checks the Helm charts against the running environment's real API servers.
#   - helm lint --strict of both charts
#   - values.schema.json and the templates refuse bad values with a message naming the value
#   - several value sets rendered and applied with `kubectl apply --dry-run=server` to the hub
#     (the Prometheus Operator's CRDs installed first, so ServiceMonitor and PrometheusRule are
#     validated against their real schemas), the spoke chart to spoke-a
#   - the rendered PrometheusRule and dashboard carry files/alerts.yaml and files/dashboard.json
# The RBAC the charts grant is installed for real by tests/env/grants.sh and exercised by every
# integration test; this script checks the rest of what `helm install` would send.
set -euo pipefail
source "$(dirname "$0")/env/lib.sh"
ENV_FILE=${1:?usage: chart.sh ENV_FILE}
# shellcheck disable=SC1090
source "$ENV_FILE"
HELM=$GI_HELM
KUBECTL=$GI_KUBECTL
HUB=$GI_HUB_KUBECONFIG
CHART=$REPO_ROOT/deploy/globalingress
SPOKE_CHART=$REPO_ROOT/deploy/globalingress-spoke
NS=globalingress-system
ROLE=arn:aws:iam::123456789012:role/globalingress-hub
BASE=(--namespace "$NS" --kube-version "$KUBE_VERSION" --set "aws.roleArn=$ROLE" --set "networkPolicy.apiServer.cidrs={10.0.0.1/32}")
failures=0
fail() { printf 'chart: FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }
ok() { printf 'chart: ok   %s\n' "$*" >&2; }

log "helm lint"
"$HELM" lint --strict "$CHART" --set "aws.roleArn=$ROLE" --set "networkPolicy.apiServer.cidrs={10.0.0.1/32}" >/dev/null || fail "helm lint $CHART"
"$HELM" lint --strict "$SPOKE_CHART" >/dev/null || fail "helm lint $SPOKE_CHART"

# refused WHAT EXPECTED ARGS...: rendering with ARGS must fail with EXPECTED in the message.
refused() {
  local what=$1 expected=$2 out; shift 2
  if out=$("$HELM" template gi "$CHART" "$@" 2>&1 >/dev/null); then
    fail "$what: rendered, should be refused"
  elif [[ $out != *"$expected"* ]]; then
    fail "$what: refused without naming $expected: $out"
  else
    ok "$what refused ($expected)"
  fi
}
refused "an unknown aws.identity" "identity" "${BASE[@]}" --set aws.identity=kiam
refused "a misspelt value" "replicas" "${BASE[@]}" --set replicas=3
refused "a non-ARN role" "roleArn" --namespace "$NS" --kube-version "$KUBE_VERSION" --set aws.roleArn=hub --set "networkPolicy.apiServer.cidrs={10.0.0.1/32}"
refused "irsa without a role" "set aws.roleArn" --namespace "$NS" --kube-version "$KUBE_VERSION" --set "networkPolicy.apiServer.cidrs={10.0.0.1/32}"
refused "a policy that cuts the hub off" "networkPolicy.apiServer.cidrs" --namespace "$NS" --kube-version "$KUBE_VERSION" --set "aws.roleArn=$ROLE"
refused "a bad CIDR" "cidrs" "${BASE[@]}" --set "networkPolicy.aws.cidrs={10.0.0.0}"

log "installing the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs ($PROMETHEUS_OPERATOR_VERSION) into the hub"
crds=$(prometheus_operator_crds_dir) || die "the Prometheus Operator CRDs are missing: run tests/env/install.sh"
for kind in servicemonitors prometheusrules; do
  "$KUBECTL" --kubeconfig "$HUB" apply --server-side -f "$crds/monitoring.coreos.com_$kind.yaml" >/dev/null
done
"$KUBECTL" --kubeconfig "$HUB" wait --for=condition=Established --timeout=60s \
  crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null

# dry_run NAME ARGS...: render the hub chart with ARGS and have the hub validate every object.
dry_run() {
  local name=$1 rendered; shift
  rendered=$(mktemp)
  if ! "$HELM" template gi "$CHART" "${BASE[@]}" "$@" >"$rendered"; then
    fail "$name: does not render"; rm -f "$rendered"; return
  fi
  if out=$("$KUBECTL" --kubeconfig "$HUB" apply --dry-run=server -f "$rendered" 2>&1); then
    ok "$name: $(grep -c '^kind:' "$rendered") objects accepted by the hub (dry run)"
  else
    fail "$name: the hub refused: $out"
  fi
  printf '%s\n' "$rendered"
}
defaults=$(dry_run "defaults")
everything=$(dry_run "everything on" --set serviceMonitor.enabled=true --set prometheusRule.enabled=true \
  --set aws.identity=podIdentity --set podAntiAffinity=hard --set watchNamespace=apps \
  --set selector=globalingress.io/shard=eu --set "networkPolicy.aws.cidrs={52.94.0.0/16}" \
  --set "networkPolicy.spokes.cidrs={10.1.0.0/16,10.2.0.0/16}" --set "networkPolicy.rfc2136.cidrs={192.0.2.53/32}" \
  --set leaderElection.namespace=default)
minimal=$(dry_run "no network policy, no RBAC, no extras" --set networkPolicy.enabled=false --set rbac.create=false \
  --set serviceAccount.create=false --set serviceAccount.name=default --set dashboard.enabled=false \
  --set podDisruptionBudget.enabled=false --set metrics.service.enabled=false --set aws.identity=none)

# What each value set must (not) hold.
has() { grep -q -- "$2" "$1" && ok "$3" || fail "$3"; }
lacks() { grep -q -- "$2" "$1" && fail "$3" || ok "$3"; }
has "$defaults" "eks.amazonaws.com/role-arn: $ROLE" "irsa annotates the ServiceAccount"
has "$defaults" "readOnlyRootFilesystem: true" "read-only root filesystem"
has "$defaults" "runAsNonRoot: true" "non-root"
has "$defaults" "allowPrivilegeEscalation: false" "no privilege escalation"
has "$defaults" "kind: PodDisruptionBudget" "a PodDisruptionBudget"
has "$defaults" "policyTypes: \[Ingress, Egress\]" "the NetworkPolicy denies both ways by default"
lacks "$defaults" "kind: ServiceMonitor" "no ServiceMonitor unless asked"
has "$everything" "kind: PrometheusRule" "a PrometheusRule when asked"
has "$everything" "alert: GlobalIngressFailoverSlow" "the PrometheusRule carries files/alerts.yaml"
has "$everything" "cidr: 169.254.170.23/32" "Pod Identity's agent is allowed with podIdentity"
lacks "$everything" "eks.amazonaws.com/role-arn" "no IRSA annotation with podIdentity"
has "$everything" "requiredDuringSchedulingIgnoredDuringExecution" "hard anti-affinity"
has "$everything" "namespace: default" "the Lease Role in leaderElection.namespace"
lacks "$minimal" "kind: NetworkPolicy" "networkPolicy.enabled=false drops it"
lacks "$minimal" "kind: ClusterRole" "rbac.create=false drops RBAC"
rm -f "$defaults" "$everything" "$minimal"
# The dashboard ConfigMap holds the dashboard file byte for byte (as JSON).
python3 - "$CHART" "$HELM" "${BASE[@]}" <<'PY' && ok "the dashboard ConfigMap holds files/dashboard.json" || fail "dashboard ConfigMap"
import json, subprocess, sys
chart, helm, args = sys.argv[1], sys.argv[2], sys.argv[3:]
out = subprocess.run([helm, "template", "gi", chart, *args, "--show-only", "templates/dashboard.yaml"],
                     check=True, capture_output=True, text=True).stdout
body = out.split("globalingress.json: |-\n", 1)[1]
text = "\n".join(l[4:] for l in body.splitlines())
assert json.loads(text) == json.load(open(f"{chart}/files/dashboard.json")), "dashboard differs"
PY

log "helm install --dry-run=server against the hub (what an install sends, and its notes)"
# (install takes the version from the server: no --kube-version)
if out=$(KUBECONFIG=$HUB "$HELM" install gi-install "$CHART" --dry-run=server --namespace "$NS" \
  --set "aws.roleArn=$ROLE" --set "networkPolicy.apiServer.cidrs={10.0.0.1/32}" 2>&1); then
  if [[ $out == *"NOTES:"* && $out == *"WARNING: networkPolicy.aws.cidrs is empty"* ]]; then
    ok "helm install (dry run, server) renders, and its notes warn of the empty AWS egress"
  else
    fail "helm install notes lack the empty-egress warning: $(printf '%s' "$out" | sed -n '/^NOTES:/,$p')"
  fi
else
  fail "helm install --dry-run=server: $out"
fi

log "spoke chart against spoke-a (dry run)"
"$KUBECTL" --kubeconfig "$GI_SPOKE_A_KUBECONFIG" create namespace "$NS" --dry-run=client -o yaml \
  | "$KUBECTL" --kubeconfig "$GI_SPOKE_A_KUBECONFIG" apply --server-side -f - >/dev/null
if out=$("$HELM" template globalingress-spoke "$SPOKE_CHART" --namespace "$NS" --kube-version "$KUBE_VERSION" \
  | "$KUBECTL" --kubeconfig "$GI_SPOKE_A_KUBECONFIG" apply --dry-run=server -f - 2>&1); then
  ok "spoke chart accepted by spoke-a (dry run)"
else
  fail "spoke chart: spoke-a refused: $out"
fi

[ "$failures" -eq 0 ] || die "$failures chart check(s) failed"
log "charts: every check passed"
