#!/usr/bin/env bash
# The checks of terraform/ that run here (the AWS provider cannot be built on this machine, so
# no plan or apply): tofu fmt -check, checkov on every module and example (every skip explained),
# and tests/terraform_check.py (inputs documented, referenced files present, the policies granting
# exactly what the code calls).
set -euo pipefail
source "$(dirname "$0")/env/lib.sh"
cd "$REPO_ROOT"
TOFU=$(tofu_path)
VENV=$(checkov_venv)
[ -x "$TOFU" ] || die "tofu not found at $TOFU: run tests/env/install.sh"
[ -x "$VENV/bin/checkov" ] || die "checkov not found in $VENV: run tests/env/install.sh"
rc=$(mktemp)
trap 'rm -f "$rc"' EXIT
log "tofu fmt -check"
TF_CLI_CONFIG_FILE=$rc "$TOFU" fmt -check -recursive -diff terraform || die "terraform/ is not formatted: run $TOFU fmt -recursive terraform"
log "checkov $CHECKOV_VERSION"
# No network here: no mapping download, no guidelines from the platform.
BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" -d terraform --framework terraform --compact --quiet --skip-download 2>/dev/null \
  || die "checkov found problems in terraform/ (run the command above without --quiet to see them all)"
log "modules, inputs, policies"
"$VENV/bin/python" tests/terraform_check.py
