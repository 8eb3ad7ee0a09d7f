#!/usr/bin/env bash
# setup.sh — install Tryton from Debian's packages, initialise a SQLite
# database and start trytond on 127.0.0.1 for tests and demos.
#
# Usage: setup.sh [DIR] [PORT]
#
# Environment (arguments win over the environment):
#   TRYTON_DIR             state directory (database, config, pid, log)
#                          default: ${TMPDIR:-/tmp}/lanebridge-tryton
#   TRYTON_PORT            JSON-RPC port on 127.0.0.1, default 18000
#   TRYTON_DB              database name, default lanebridge
#   TRYTON_ADMIN_PASSWORD  admin password, default lanebridge
#                          (trytond wants >= 8 characters, entropy >= 0.75)
#   TRYTON_FRESH=1         stop the server and recreate the database
#   TRYTON_SEED_STORES     e.g. "S001,S002": afterwards run the Go seed
#                          (testharness/tryton/cmd/tryton-seed) for those stores
#
# Idempotent: packages are installed only when missing, the database is
# initialised only once per DIR (unless TRYTON_FRESH=1), and a server that is
# already running from DIR and answering is left alone. On success it writes
# DIR/env (LANEBRIDGE_TRYTON_* variables, for `source`) and prints it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

dir="${1:-${TRYTON_DIR:-${TMPDIR:-/tmp}/lanebridge-tryton}}"
port="${2:-${TRYTON_PORT:-18000}}"
db="${TRYTON_DB:-lanebridge}"
password="${TRYTON_ADMIN_PASSWORD:-lanebridge}"

# The modules a retail sale needs; with --activate-dependencies trytond-admin
# also activates company, party, currency, country, account_invoice,
# account_product and account_invoice_stock.
modules=(sale stock account product)
packages=(
	tryton-server
	tryton-modules-sale
	tryton-modules-stock
	tryton-modules-account
	tryton-modules-product
	tryton-modules-account-invoice
	tryton-modules-account-invoice-stock
	tryton-modules-account-product
	tryton-modules-company
	tryton-modules-party
	tryton-modules-currency
	tryton-modules-country
)

log() { printf '%s tryton-setup: %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. Packages.
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	t0=$(now)
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	log "installed packages in $(since "$t0") s"
fi
command -v trytond >/dev/null || { log "trytond not found after install"; exit 1; }

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
conf="$dir/trytond.conf"
pidfile="$dir/trytond.pid"
logfile="$dir/trytond.log"
url="http://127.0.0.1:$port"

# probe exits 0 when JSON-RPC answers on $url.
probe() {
	curl -fsS -m 2 -H 'Content-Type: application/json' \
		-d '{"id":0,"method":"common.server.version","params":[]}' \
		"$url/" 2>/dev/null | grep -q '"result"'
}

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if [[ ${TRYTON_FRESH:-} == 1 ]]; then
	"$here/stop.sh" "$dir" || true
	rm -f "$dir/$db.sqlite" "$dir/.initialised"
fi

# 2. Configuration.
cat >"$conf" <<EOF
[database]
uri = sqlite://
path = $dir
[web]
listen = 127.0.0.1:$port
[session]
timeout = 3600
[password]
length = 8
EOF

# 3. Database.
if [[ ! -f $dir/.initialised ]]; then
	if running; then
		log "a server runs from $dir without an initialised database; stopping it"
		"$here/stop.sh" "$dir"
	fi
	rm -f "$dir/$db.sqlite"
	: >"$dir/$db.sqlite"
	passfile="$(mktemp)"
	trap 'rm -f "$passfile"' EXIT
	printf '%s\n' "$password" >"$passfile"
	t0=$(now)
	log "initialising database $db in $dir (modules: ${modules[*]})"
	TRYTONPASSFILE="$passfile" trytond-admin -c "$conf" -d "$db" --all \
		-u "${modules[@]}" --activate-dependencies --email admin@example.com \
		>>"$dir/trytond-admin.log" 2>&1 || {
		log "trytond-admin failed; last lines of $dir/trytond-admin.log:"
		tail -n 20 "$dir/trytond-admin.log" >&2
		exit 1
	}
	rm -f "$passfile"
	touch "$dir/.initialised"
	log "initialised database in $(since "$t0") s"
fi

# 4. Server.
if running && probe; then
	log "trytond already running (pid $(cat "$pidfile")) on $url"
else
	if running; then
		"$here/stop.sh" "$dir"
	fi
	if probe; then
		log "port $port already answers JSON-RPC but not from $dir; refusing"
		exit 1
	fi
	t0=$(now)
	setsid trytond -c "$conf" -d "$db" --pidfile "$pidfile" \
		>>"$logfile" 2>&1 </dev/null &
	echo $! >"$pidfile"
	for _ in $(seq 1 150); do
		if probe; then
			break
		fi
		if ! running; then
			log "trytond exited; last lines of $logfile:"
			tail -n 20 "$logfile" >&2
			exit 1
		fi
		sleep 0.2
	done
	probe || { log "trytond did not answer on $url within 30 s"; exit 1; }
	log "trytond (pid $(cat "$pidfile")) answers on $url after $(since "$t0") s"
fi

cat >"$dir/env" <<EOF
LANEBRIDGE_TRYTON_URL=$url
LANEBRIDGE_TRYTON_DB=$db
LANEBRIDGE_TRYTON_USER=admin
LANEBRIDGE_TRYTON_PASSWORD=$password
EOF

# 5. Seed.
if [[ -n ${TRYTON_SEED_STORES:-} ]]; then
	t0=$(now)
	(cd "$repo" && go run ./testharness/tryton/cmd/tryton-seed \
		-url "$url" -db "$db" -user admin -password "$password" \
		-stores "$TRYTON_SEED_STORES")
	log "seeded in $(since "$t0") s (including go build)"
fi

cat "$dir/env"
