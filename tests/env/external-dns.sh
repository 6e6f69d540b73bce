#!/usr/bin/env bash
# external-dns for make bench's peers scenario (not part of make deps: make test never needs it).
#   external-dns.sh        build it when tests/tools/external-dns changed; print the binary's path
#   external-dns.sh crd    print the path of the DNSEndpoint CRD its module ships (downloads the
#                          module when needed)
# Built like kube-apiserver and tofu: from its Go module at the version tests/tools/external-dns
# pins (its go.mod says why it needs replace lines), in the cache outside the clone, named after a
# hash of go.mod and go.sum, so a fresh clone with the same pin rebuilds nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v go >/dev/null || die "go not found: external-dns is built from its Go module"
module=sigs.k8s.io/external-dns

if [ "${1:-}" = crd ]; then
  dir=$(cd "$REPO_ROOT/tests/tools/external-dns" && GOFLAGS=-mod=readonly GOTOOLCHAIN=local go list -m -f '{{.Dir}}' "$module")
  [ -n "$dir" ] || die "$module is not in the module cache (run tests/env/external-dns.sh)"
  crd=$dir/config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml
  [ -s "$crd" ] || die "$module $EXTERNAL_DNS_VERSION has no $crd"
  printf '%s\n' "$crd"
  exit 0
fi

out=$(external_dns_path)
if [ -x "$out" ]; then
  printf '%s\n' "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
log "building external-dns $EXTERNAL_DNS_VERSION from its Go module (cold: ~7 min on 2 cores, most of it compiling; cached afterwards)"
start=$(date +%s)
(
  cd "$REPO_ROOT/tests/tools/external-dns"
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
  go build -p "$(nproc)" -trimpath \
    -ldflags "-s -w -X $module/pkg/apis/externaldns.Version=$EXTERNAL_DNS_VERSION" \
    -o "$out.tmp" "$module"
)
"$out.tmp" --version 2>&1 | grep -qx "$EXTERNAL_DNS_VERSION" || die "$out.tmp does not report $EXTERNAL_DNS_VERSION"
mv "$out.tmp" "$out"
ls -t "$GI_CACHE"/tools/bin/external-dns-* 2>/dev/null | tail -n +3 | xargs -r rm -f
log "built $(basename "$out") in $(( $(date +%s) - start ))s"
printf '%s\n' "$out"
