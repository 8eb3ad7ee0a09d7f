#!/usr/bin/env bash
# stop.sh — stop the trytond that setup.sh started from DIR.
#
# Usage: stop.sh [DIR]   (default: $TRYTON_DIR or ${TMPDIR:-/tmp}/lanebridge-tryton)
# Only the process whose id is in DIR/trytond.pid is signalled. The database
# stays; `TRYTON_FRESH=1 setup.sh` recreates it.
set -euo pipefail

dir="${1:-${TRYTON_DIR:-${TMPDIR:-/tmp}/lanebridge-tryton}}"
pidfile="$dir/trytond.pid"

if [[ ! -f $pidfile ]]; then
	echo "tryton-stop: no $pidfile; nothing to stop" >&2
	exit 0
fi
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
	kill -TERM "$pid"
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "tryton-stop: pid $pid ignored SIGTERM for 5 s; sending SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
fi
rm -f "$pidfile"
echo "tryton-stop: stopped pid $pid" >&2
