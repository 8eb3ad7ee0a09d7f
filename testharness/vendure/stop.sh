#!/usr/bin/env bash
# stop.sh — stop the Vendure that setup.sh started from DIR (only the pid in DIR/vendure.pid).
set -euo pipefail
dir="${1:-${VENDURE_DIR:-${TMPDIR:-/tmp}/lanebridge-vendure}}"
pidfile="$dir/vendure.pid"
[[ -f $pidfile ]] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
	kill -TERM "$pid"
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
