#!/usr/bin/env bash
# make demo: a hub on embedded defaults, three enrolled stores, their agents fed by the simulator,
# and a live line of captured / forwarded / applied counts. Ctrl-C stops everything cleanly:
# the hub runs in its own session so it stops last, after the agents have drained.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
DEMO=${DEMO_DIR:-.demo}
MQTT=${DEMO_MQTT:-127.0.0.1:18830}   # not 1883: a broker (Mosquitto) may already listen there
HTTP=${DEMO_HTTP:-127.0.0.1:8080}
RATE=${DEMO_RATE:-5}                  # records per second per terminal
if [ "${DEMO_ERP:-}" = tryton ] && [ -z "${DEMO_RATE:-}" ]; then
  RATE=0.2                            # Tryton confirms about one sale a second on this kind of machine
fi
STORES=(S001 S002 S003)

for b in lanebridge-hub lanebridge-agent lanebridge-sim; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run make build" >&2; exit 1; }
done
port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for a in "$MQTT" "$HTTP"; do
  if port_busy "$a"; then echo "address $a is in use; set DEMO_MQTT / DEMO_HTTP to free addresses" >&2; exit 1; fi
done

rm -rf "$DEMO"; mkdir -p "$DEMO"
hubargs=()
if [ "${DEMO_ERP:-}" = tryton ]; then
  # make demo-erp: a real Tryton (Debian's packages) seeded with one warehouse per store.
  export TRYTON_DIR="$PWD/$DEMO/tryton" TRYTON_PORT="${DEMO_TRYTON_PORT:-18100}" TRYTON_SEED_STORES="$(IFS=,; echo "${STORES[*]}")"
  echo "starting Tryton on 127.0.0.1:$TRYTON_PORT (first run installs packages and builds the database: about a minute)…"
  TRYTON_FRESH=1 testharness/tryton/setup.sh "$TRYTON_DIR" "$TRYTON_PORT" >"$DEMO/tryton-setup.log" 2>&1 \
    || { echo "Tryton did not start; see $DEMO/tryton-setup.log" >&2; tail -5 "$DEMO/tryton-setup.log" >&2; exit 1; }
  set -a; . "$TRYTON_DIR/env"; set +a
  printf '%s\n' "$LANEBRIDGE_TRYTON_PASSWORD" >"$DEMO/tryton.password"
  cat >"$DEMO/hub.yaml" <<YAML
erp:
  kind: tryton
  tryton:
    url: $LANEBRIDGE_TRYTON_URL
    db: $LANEBRIDGE_TRYTON_DB
    user: $LANEBRIDGE_TRYTON_USER
    password_file: $PWD/$DEMO/tryton.password
inventory:
  interval: 30s
YAML
  hubargs=(--config "$DEMO/hub.yaml")
fi
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping…"
  for p in "${sims[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${agents[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${agents[@]:-}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${hub:-}" ] && kill -TERM "$hub" 2>/dev/null && wait "$hub" 2>/dev/null || true
  [ -n "${TRYTON_DIR:-}" ] && testharness/tryton/stop.sh "$TRYTON_DIR" >/dev/null 2>&1 || true
  echo "stopped; logs and data are in $DEMO/"
}
trap cleanup INT TERM EXIT

setsid "$BIN/lanebridge-hub" serve --data "$DEMO/hub" --mqtt "$MQTT" --http "$HTTP" "${hubargs[@]}" >"$DEMO/hub.log" 2>&1 &
hub=$!
for _ in $(seq 100); do curl -fsS "http://$HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$HTTP/healthz" >/dev/null || { echo "hub did not start; see $DEMO/hub.log" >&2; tail -5 "$DEMO/hub.log" >&2; exit 1; }

# An operator to sign in with (password generated, shown once below) and a read-only API token
# for this script's own status line.
user=admin
pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$pass" | "$BIN/lanebridge-hub" users add "$user" --role admin --password-file - --data "$DEMO/hub" "${hubargs[@]}" 2>>"$DEMO/access.log" \
  || { echo "users add failed; see $DEMO/access.log" >&2; tail -3 "$DEMO/access.log" >&2; exit 1; }
token=$("$BIN/lanebridge-hub" tokens add --name demo --role viewer --data "$DEMO/hub" "${hubargs[@]}" 2>>"$DEMO/access.log" | sed -n 1p)
[ -n "$token" ] || { echo "tokens add failed; see $DEMO/access.log" >&2; tail -3 "$DEMO/access.log" >&2; exit 1; }
api() { curl -fsS -H "Authorization: Bearer $token" "http://$HTTP$1"; }

agents=(); sims=(); listens=()
port=17790
for s in "${STORES[@]}"; do
  "$BIN/lanebridge-hub" stores add "$s" --create --data "$DEMO/hub" --broker-url "tcp://$MQTT" "${hubargs[@]}" 2>/dev/null >"$DEMO/$s.enrolled.yaml"
  pw=$(awk '/^  password:/{print $2}' "$DEMO/$s.enrolled.yaml")
  listen="127.0.0.1:$port"; port=$((port+1)); listens+=("$listen")
  cat >"$DEMO/$s.yaml" <<YAML
store: $s
data_dir: $DEMO/$s
listen: $listen
hub:
  broker: tcp://$MQTT
  username: $s
  password: $pw
terminals:
  - {id: T1, source: "file://$PWD/$DEMO/$s-T1.jsonl", profile: canonical-jsonl}
  - {id: T2, source: "file://$PWD/$DEMO/$s-T2.jsonl", profile: canonical-jsonl}
YAML
  for t in T1 T2; do
    "$BIN/lanebridge-sim" jsonl --out "$DEMO/$s-$t.jsonl" --terminal "$t" --count 0 --rate "$RATE" >"$DEMO/sim-$s-$t.log" 2>&1 &
    sims+=($!)
  done
  "$BIN/lanebridge-agent" run --config "$DEMO/$s.yaml" >"$DEMO/agent-$s.log" 2>&1 &
  agents+=($!)
done

echo "Lanebridge demo running."
echo "  dashboard:  http://$HTTP/   user $user, password $pass"
echo "  API:        curl -H 'Authorization: Bearer $token' http://$HTTP/api/v1/stores"
echo "  MQTT:       tcp://$MQTT (embedded broker)"
[ -n "${LANEBRIDGE_TRYTON_URL:-}" ] && echo "  ERP:        Tryton at $LANEBRIDGE_TRYTON_URL (db $LANEBRIDGE_TRYTON_DB); postings: http://$HTTP/api/v1/postings"
[ -n "${LANEBRIDGE_TRYTON_URL:-}" ] && echo "  stock:      curl http://${listens[0]}/inventory/100001   (store S001's agent)"
echo "  logs:       $DEMO/*.log      — Ctrl-C stops everything"
json_sum() { { grep -o "\"$1\": *[0-9]*" || true; } | awk -F: '{s+=$2} END{print s+0}'; }   # absent (omitted zero) is 0
while sleep 1; do
  cap=0; fwd=0
  for l in "${listens[@]}"; do
    st=$(curl -fsS "http://$l/status" 2>/dev/null || true)
    cap=$((cap + $(echo "$st" | json_sum last_seq)))
    fwd=$((fwd + $(echo "$st" | json_sum last_ack)))
  done
  app=$(api /api/v1/stores 2>/dev/null | json_sum records)
  exc=$(api "/api/v1/exceptions?state=open&limit=1" 2>/dev/null | json_sum exceptions)
  printf '\rcaptured %7d   forwarded+acked %7d   applied at hub %7d   open exceptions %3d ' "$cap" "$fwd" "$app" "$exc"
done
