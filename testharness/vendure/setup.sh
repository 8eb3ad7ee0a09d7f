#!/usr/bin/env bash
# setup.sh — install a real Vendure (@vendure/core on SQLite through better-sqlite3, pinned in
# package-lock.json) from npm, start it on 127.0.0.1 and seed it through its Admin API with a
# tax zone, a second stock location ("Web warehouse") and one product variant per SKU.
#
# Usage: setup.sh [DIR] [PORT]
# Environment: VENDURE_DIR (default ${TMPDIR:-/tmp}/lanebridge-vendure), VENDURE_PORT (18100),
#   VENDURE_SEED_SKUS (default SKU-A,SKU-B,SKU-C and the simulator's 100001..100010). Every run
#   starts a fresh database.
# On success it writes DIR/env (LANEBRIDGE_VENDURE_* variables) and prints it. Any failure
# exits non-zero with the log's tail: callers under CI fail loudly.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-${VENDURE_DIR:-${TMPDIR:-/tmp}/lanebridge-vendure}}"
port="${2:-${VENDURE_PORT:-18100}}"
# The defaults include the POS simulator's SKUs (testharness/sim), for the end-to-end tests.
skus="${VENDURE_SEED_SKUS:-SKU-A,SKU-B,SKU-C,100001,100002,100003,100004,100005,100006,100007,100008,100009,100010}"
log() { printf '%s vendure-setup: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; [[ -f $dir/vendure.log ]] && tail -20 "$dir/vendure.log" >&2; exit 1; }

command -v node >/dev/null || die "node not found (Vendure needs node >= 20 and npm)"
# node_modules: a developer's own install in this folder is used as it is; otherwise one install
# per package-lock.json is kept in the cache (better-sqlite3 compiles from source here, minutes)
# and linked, so fresh clones (CI) on the same machine do not reinstall.
if [[ ! -d $here/node_modules || -L $here/node_modules ]]; then
	lock="$(sha256sum "$here/package-lock.json" | cut -c1-16)"
	cache="${LANEBRIDGE_VENDURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lanebridge-vendure}/$lock"
	if [[ ! -f $cache/node_modules/.package-lock.json ]]; then
		log "installing Vendure from npm (package-lock.json) into $cache"
		rm -rf "$cache.tmp" && mkdir -p "$cache.tmp" && cp "$here/package.json" "$here/package-lock.json" "$cache.tmp/" || die "cannot prepare $cache.tmp"
		(cd "$cache.tmp" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
		rm -rf "$cache" && mv "$cache.tmp" "$cache" || die "cannot move the install to $cache"
	fi
	ln -sfn "$cache/node_modules" "$here/node_modules"
fi
[[ -f $here/node_modules/@vendure/core/package.json ]] || die "Vendure is not installed in $here/node_modules"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
"$here/stop.sh" "$dir" >/dev/null 2>&1 || true
rm -f "$dir/vendure.sqlite" "$dir/env"
[[ -f $dir/superadmin.password ]] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/superadmin.password"; chmod 600 "$dir/superadmin.password"; }
url="http://127.0.0.1:$port"
probe() { curl -fsS -m 2 -H 'Content-Type: application/json' -d '{"query":"{__typename}"}' "$url/admin-api" 2>/dev/null | grep -q Query; }
probe && die "something already answers on $url; pick another VENDURE_PORT"
VENDURE_DISABLE_TELEMETRY=true setsid node "$here/server.js" "$dir" "$port" >"$dir/vendure.log" 2>&1 </dev/null &
echo $! >"$dir/vendure.pid"
for _ in $(seq 1 240); do
	probe && break
	kill -0 "$(cat "$dir/vendure.pid")" 2>/dev/null || die "vendure exited during start"
	sleep 0.5
done
probe || die "vendure did not answer on $url within 120 s"
seed="$(node "$here/seed.js" "$url" "$dir/superadmin.password" "$skus")" || die "seeding failed"
{
	echo "LANEBRIDGE_VENDURE_URL=$url"
	echo "LANEBRIDGE_VENDURE_USER=superadmin"
	echo "LANEBRIDGE_VENDURE_PASSWORD_FILE=$dir/superadmin.password"
	echo "$seed"
} >"$dir/env"
log "vendure up on $url (pid $(cat "$dir/vendure.pid")), seeded $skus"
cat "$dir/env"
