#!/usr/bin/env bash
# Builds the real kube-apiserver harness (and kubectl of the same Kubernetes version, from the same
# module) when their sources changed, and prints the harness binary's path.
# The binary is named after a hash of go.mod, go.sum and the Go sources, in the cache outside the
# clone, so a fresh clone with unchanged sources rebuilds nothing.
set -euo pipefail
source "$(dirname "$0")/../env/lib.sh"
out=$(harness_path)
kubectl=$(harness_path kubectl)
if [ -x "$out" ] && [ -x "$kubectl" ]; then
  printf '%s\n' "$out"
  exit 0
fi
command -v go >/dev/null || die "go not found: the kube-apiserver harness is built from k8s.io/kubernetes Go modules"
mkdir -p "$(dirname "$out")"
log "building kube-apiserver $KUBE_VERSION from Go modules (cold: 10-15 min on 2 cores; cached afterwards)"
start=$(date +%s)
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
(
  cd "$REPO_ROOT/tests/kube-harness"
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
  go build -p "$(nproc)" -trimpath -ldflags "$ldflags" -o "$out.tmp" .
  go build -p "$(nproc)" -trimpath -ldflags "$ldflags" -o "$kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
)
mv "$out.tmp" "$out"
mv "$kubectl.tmp" "$kubectl"
# Keep only the newest few builds.
for name in kube-harness kubectl; do
  ls -t "$GI_CACHE/bin/$name"-* 2>/dev/null | tail -n +4 | xargs -r rm -f
done
log "built $(basename "$out") in $(( $(date +%s) - start ))s"
printf '%s\n' "$out"
