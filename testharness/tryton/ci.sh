#!/usr/bin/env bash
# ci.sh — start a fresh, seeded Tryton, run the Tryton integration tests
# against it, and stop it again. For CI and for a developer's one-shot check.
#
# Usage: ci.sh [go test flags...]   e.g. ci.sh -run TestTrytonIntegration -v
# Environment: TRYTON_DIR (default: a new temporary directory), TRYTON_PORT
# (default 18000), TRYTON_SEED_STORES (default S001,S002).
# Fails when a package is missing and cannot be installed, when Tryton does not
# start, or when a test fails; the tests cannot skip (LANEBRIDGE_TRYTON_REQUIRED=1).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export TRYTON_DIR="${TRYTON_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/lanebridge-tryton.XXXXXX")}"
export TRYTON_SEED_STORES="${TRYTON_SEED_STORES:-S001,S002}"
export TRYTON_FRESH=1

trap '"$here/stop.sh" "$TRYTON_DIR" || true' EXIT
"$here/setup.sh" "$TRYTON_DIR" >/dev/null

set -a
# shellcheck source=/dev/null
. "$TRYTON_DIR/env"
set +a
export LANEBRIDGE_TRYTON_REQUIRED=1
cd "$repo"
go test -count=1 "$@" ./hub/internal/erp/tryton/
