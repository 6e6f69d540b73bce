#!/usr/bin/env bash
# Builds OpenTofu's tofu from tests/tools/tofu (its Go module, at the version pinned there) when
# that module changed, and prints the binary's path. Cached outside the clone, named after a hash
# of go.mod and go.sum: a fresh clone with the same pin rebuilds nothing.
set -euo pipefail
source "$(dirname "$0")/../env/lib.sh"
out=$(tofu_path)
if [ -x "$out" ]; then
  printf '%s\n' "$out"
  exit 0
fi
command -v go >/dev/null || die "go not found: tofu is built from the OpenTofu Go module"
mkdir -p "$(dirname "$out")"
log "building tofu $TOFU_VERSION from its Go module (cold: ~6 min on 2 cores, most of it downloading modules; cached afterwards)"
start=$(date +%s)
(
  cd "$REPO_ROOT/tests/tools/tofu"
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
  go build -p "$(nproc)" -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$out.tmp" github.com/opentofu/opentofu/cmd/tofu
)
"$out.tmp" version | grep -q "^OpenTofu v${TOFU_VERSION#v}$" || die "$out.tmp does not report OpenTofu $TOFU_VERSION"
mv "$out.tmp" "$out"
ls -t "$GI_CACHE"/tools/bin/tofu-* 2>/dev/null | tail -n +3 | xargs -r rm -f
log "built $(basename "$out") in $(( $(date +%s) - start ))s"
printf '%s\n' "$out"
