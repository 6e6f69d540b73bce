#!/usr/bin/env bash
# make test: every check CI runs, in order, each phase timed:
#   deps (install what is missing) -> fmt -> clippy -> deny -> build -> unit tests
#   -> alerts (promtool) -> terraform (tofu fmt, checkov, policy checks)
#   -> env up (.run/test, the charts' RBAC installed for real, moto enforcing IAM) -> charts (lint,
#   schema, dry run on the hub) -> integration tests against it -> iam report (the operator's AWS
#   calls of the whole suite against the shipped policies) -> env down
# The environment is stopped on every exit path, so nothing it started is left running.
set -euo pipefail
source "$(dirname "$0")/env/lib.sh"
cd "$REPO_ROOT"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GI_CACHE/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
TEST_ENV_DIR=$REPO_ROOT/.run/test
timings=()

phase() {
  local name=$1; shift
  local t=$SECONDS
  log "== $name"
  "$@"
  timings+=("$(printf '%-22s %5ss' "$name" $((SECONDS - t)))")
}

summary() {
  local rc=$?
  bash tests/env/env.sh down "$TEST_ENV_DIR" 2>/dev/null || true
  printf '\nphase timings:\n' >&2
  printf '  %s\n' "${timings[@]}" >&2
  [ $rc -eq 0 ] && log "make test: all phases passed" || log "make test: FAILED (exit $rc)"
  exit $rc
}
trap summary EXIT

phase deps bash tests/env/install.sh
phase fmt cargo fmt --all --check
phase clippy cargo clippy --locked --all-targets -- -D warnings
phase deny bash tests/deny.sh
phase build cargo test --locked --no-run
phase unit-tests cargo test --locked --lib --bins
phase alerts bash -c 'promtool check rules deploy/globalingress/files/alerts.yaml && promtool test rules tests/alerts/alerts_test.yaml'
phase terraform bash tests/terraform.sh
phase env-up bash tests/env/env.sh up "$TEST_ENV_DIR"
phase charts bash tests/chart.sh "$TEST_ENV_DIR/env"
# The restart tests bound how soon the operator recovers (a change published within 3 s of the
# hub coming back: 0.1-0.6 s alone). They run on their own after the rest so the whole suite's
# load on two cores does not stand in for the operator's own delay.
# The record of every AWS call starts here (a reused environment has older ones).
: >"$TEST_ENV_DIR/aws-proxy/operations.jsonl"
phase integration-tests env GLOBALINGRESS_TEST_ENV="$TEST_ENV_DIR/env" cargo test --locked --test integration -- --skip restarts::
phase integration-restarts env GLOBALINGRESS_TEST_ENV="$TEST_ENV_DIR/env" cargo test --locked --test integration -- restarts:: --test-threads=1
phase iam-report "$MOTO_VENV/bin/python" tests/iam_report.py "$TEST_ENV_DIR/env"
phase env-down bash tests/env/env.sh down "$TEST_ENV_DIR"
