#!/usr/bin/env bash
# make demo: a hub on embedded defaults, three enrolled stores, their agents fed by the simulator,
# and a live line of captured / forwarded / applied counts. Ctrl-C stops everything cleanly:
# the hub runs in its own session so it stops last, after the agents have drained.
#
# Within two minutes the demo shows (printed as they happen; charts on the store pages):
#   S001  terminal T2 goes silent: its simulator stops after ~60 s;
#   S002  terminal T1 skips receipt 20; at ~75 s the demo closes S002's day and the close
#         finds the gap (missing_receipts, after a replay the agent cannot answer);
#   S003  goes offline: its agent is stopped at ~30 s and started again at ~90 s.
# An agent that stops (try: kill one) is reported on the console and the demo carries on;
# `touch .demo/S001.restart` starts it again. Set-up errors stop the demo; once running, nothing
# but Ctrl-C does.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
DEMO=${DEMO_DIR:-.demo}
case $DEMO in /*) ;; *) DEMO=$PWD/$DEMO ;; esac   # agents read their terminals' files by absolute path
MQTT=${DEMO_MQTT:-127.0.0.1:18830}   # not 1883: a broker (Mosquitto) may already listen there
HTTP=${DEMO_HTTP:-127.0.0.1:8080}
RATE=${DEMO_RATE:-5}                  # records per second per terminal
if [ "${DEMO_ERP:-}" = tryton ] && [ -z "${DEMO_RATE:-}" ]; then
  RATE=0.2                            # Tryton confirms about one sale a second on this kind of machine
fi
STORES=(S001 S002 S003)
TODAY=$(date +%F)
SILENT_AFTER=${DEMO_SILENT_AFTER:-60}  # S001/T2's simulator stops after this many seconds
GAP_RECEIPT=20                        # S002/T1 never writes this receipt
CLOSE_AT=${DEMO_CLOSE_AT:-75}         # S002's day is closed then
OFFLINE_AT=${DEMO_OFFLINE_AT:-30}     # S003's agent is stopped then …
ONLINE_AT=${DEMO_ONLINE_AT:-90}       # … and started again

for b in lanebridge-hub lanebridge-agent lanebridge-sim; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run make build" >&2; exit 1; }
done
port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for a in "$MQTT" "$HTTP"; do
  if port_busy "$a"; then echo "address $a is in use; set DEMO_MQTT / DEMO_HTTP to free addresses" >&2; exit 1; fi
done

rm -rf "$DEMO"; mkdir -p "$DEMO"
# Short intervals so that the charts and the close show something within two minutes.
cat >"$DEMO/hub.yaml" <<YAML
series:
  flush: 5s
close:
  replay_wait: 5s
alerts:
  store_offline_after: 20s
  terminal_silent_after: 30s
  trading_hours: "Mon-Sun 00:00-24:00"
  evaluate_every: 5s
YAML
hubargs=(--config "$DEMO/hub.yaml")
if [ "${DEMO_ERP:-}" = tryton ]; then
  # make demo-erp: a real Tryton (Debian's packages) seeded with one warehouse per store.
  demo_tryton="$DEMO/tryton"        # only a Tryton the demo started is stopped at the end
  export TRYTON_DIR="$demo_tryton" TRYTON_PORT="${DEMO_TRYTON_PORT:-18100}" TRYTON_SEED_STORES="$(IFS=,; echo "${STORES[*]}")"
  echo "starting Tryton on 127.0.0.1:$TRYTON_PORT (first run installs packages and builds the database: about a minute)…"
  TRYTON_FRESH=1 testharness/tryton/setup.sh "$TRYTON_DIR" "$TRYTON_PORT" >"$DEMO/tryton-setup.log" 2>&1 \
    || { echo "Tryton did not start; see $DEMO/tryton-setup.log" >&2; tail -5 "$DEMO/tryton-setup.log" >&2; exit 1; }
  set -a; . "$TRYTON_DIR/env"; set +a
  printf '%s\n' "$LANEBRIDGE_TRYTON_PASSWORD" >"$DEMO/tryton.password"
  cat >>"$DEMO/hub.yaml" <<YAML
erp:
  kind: tryton
  tryton:
    url: $LANEBRIDGE_TRYTON_URL
    db: $LANEBRIDGE_TRYTON_DB
    user: $LANEBRIDGE_TRYTON_USER
    password_file: $DEMO/tryton.password
inventory:
  interval: 30s
YAML
fi
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping…"
  for p in "${sims[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${agent[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${agent[@]:-}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${hub:-}" ] && kill -TERM "$hub" 2>/dev/null && wait "$hub" 2>/dev/null || true
  [ -n "${demo_tryton:-}" ] && testharness/tryton/stop.sh "$demo_tryton" >/dev/null 2>&1 || true
  echo "stopped; logs and data are in $DEMO/"
}
trap cleanup EXIT                   # a set-up error: stop what started, keep its exit status
trap 'cleanup; exit 0' INT TERM     # Ctrl-C: the loop below must not go on after the clean-up

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
optoken=$("$BIN/lanebridge-hub" tokens add --name demo-close --role operator --stores S002 --data "$DEMO/hub" "${hubargs[@]}" 2>>"$DEMO/access.log" | sed -n 1p)
[ -n "$optoken" ] || { echo "tokens add (operator) failed; see $DEMO/access.log" >&2; tail -3 "$DEMO/access.log" >&2; exit 1; }
api() { curl -fsS -H "Authorization: Bearer $token" "http://$HTTP$1"; }

declare -A agent=() listen=() silent=()
sims=()
port=${DEMO_AGENT_PORT:-17790}      # agents' local endpoints: this port and the next two
start_agent() { "$BIN/lanebridge-agent" run --config "$DEMO/$1.yaml" >>"$DEMO/agent-$1.log" 2>&1 & agent[$1]=$!; }
for s in "${STORES[@]}"; do
  "$BIN/lanebridge-hub" stores add "$s" --create --data "$DEMO/hub" --broker-url "tcp://$MQTT" "${hubargs[@]}" 2>>"$DEMO/access.log" >"$DEMO/$s.enrolled.yaml" \
    || { echo "stores add $s failed; see $DEMO/access.log" >&2; tail -3 "$DEMO/access.log" >&2; exit 1; }
  pw=$(awk '/^  password:/{print $2}' "$DEMO/$s.enrolled.yaml")
  listen[$s]="127.0.0.1:$port"; port=$((port+1))
  cat >"$DEMO/$s.yaml" <<YAML
store: $s
data_dir: $DEMO/$s
listen: ${listen[$s]}
hub:
  broker: tcp://$MQTT
  username: $s
  password: $pw
terminals:
  - {id: T1, source: "file://$DEMO/$s-T1.jsonl", profile: canonical-jsonl}
  - {id: T2, source: "file://$DEMO/$s-T2.jsonl", profile: canonical-jsonl}
YAML
  for t in T1 T2; do
    extra=()
    case $s/$t in
      S001/T2) extra=(--count "$(awk "BEGIN{print int($RATE*$SILENT_AFTER)}")") ;;
      S002/T1) extra=(--skip-receipt "$GAP_RECEIPT") ;;
    esac
    "$BIN/lanebridge-sim" jsonl --out "$DEMO/$s-$t.jsonl" --terminal "$t" --date "$TODAY" --count 0 --rate "$RATE" "${extra[@]}" >"$DEMO/sim-$s-$t.log" 2>&1 &
    sims+=($!)
    [ "$s/$t" = S001/T2 ] && silent[S001/T2]=$!
  done
  start_agent "$s"
done
started=$SECONDS

echo "Lanebridge demo running."
echo "  dashboard:  http://$HTTP/   user $user, password $pass"
echo "  API:        curl -H 'Authorization: Bearer $token' http://$HTTP/api/v1/stores"
echo "  MQTT:       tcp://$MQTT (embedded broker)"
[ -n "${LANEBRIDGE_TRYTON_URL:-}" ] && echo "  ERP:        Tryton at $LANEBRIDGE_TRYTON_URL (db $LANEBRIDGE_TRYTON_DB); postings: http://$HTTP/api/v1/postings"
[ -n "${LANEBRIDGE_TRYTON_URL:-}" ] && echo "  stock:      curl http://${listen[S001]}/inventory/100001   (store S001's agent)"
echo "  charts:     http://$HTTP/stores/S001/charts/throughput.svg   (also latency.svg, backlog.svg; ?range=6h|24h|7d)"
echo "  logs:       $DEMO/*.log      — Ctrl-C stops everything"
echo "  scenarios:  S001/T2 goes silent at ${SILENT_AFTER}s, S002 is closed at ${CLOSE_AT}s (receipt $GAP_RECEIPT missing),"
echo "              S003 is offline from ${OFFLINE_AT}s to ${ONLINE_AT}s. Try: kill ${agent[S001]} (S001's agent) — nothing is lost."
json_sum() { { grep -o "\"$1\": *[0-9]*" || true; } | awk -F: '{s+=$2} END{print s+0}'; }   # absent (omitted zero) is 0
# From here on the demo supervises: nothing but Ctrl-C ends it.
set +e
event() { printf '\r\033[K[+%3ds] %s\n' "$((SECONDS - started))" "$*"; }
declare -A down=() done_=()
once() { [ -n "${done_[$1]:-}" ] && return 1; done_[$1]=1; }
while sleep 1; do
  t=$((SECONDS - started))
  if [ "$t" -ge "$OFFLINE_AT" ] && once offline; then
    kill -TERM "${agent[S003]}" 2>/dev/null; wait "${agent[S003]}" 2>/dev/null; down[S003]=planned
    event "S003 goes offline: its agent is stopped (its terminals keep writing; it catches up when back at ${ONLINE_AT}s)"
  fi
  if [ "$t" -ge "$ONLINE_AT" ] && once online; then
    start_agent S003; unset 'down[S003]'
    event "S003 comes back: agent started again (pid ${agent[S003]}); watch its backlog drain"
  fi
  if [ -n "${silent[S001/T2]:-}" ] && ! kill -0 "${silent[S001/T2]}" 2>/dev/null && once silent; then
    event "S001 terminal T2 has gone silent (its simulator stopped; T1 still sells)"
  fi
  if [ "$t" -ge "$CLOSE_AT" ] && once close; then
    event "closing S002's day $TODAY (receipt $GAP_RECEIPT of T1 was never written)…"
    (curl -sS -X POST -H "Authorization: Bearer $optoken" -H 'Content-Type: application/json' \
      -d '{"reason":"demo: close the trading day early to show the three-way check"}' "http://$HTTP/api/v1/stores/S002/days/$TODAY/close" >"$DEMO/close-S002.json" 2>&1; echo $? >"$DEMO/close-S002.rc") &
  fi
  if [ -f "$DEMO/close-S002.rc" ] && once closed; then
    st=$(grep -o '"state": *"[a-z_]*"' "$DEMO/close-S002.json" | head -1)
    gaps=$(grep -c missing_receipts "$DEMO/close-S002.json")
    event "S002 closed: $st; missing_receipts found: $([ "$gaps" -gt 0 ] && echo yes || echo no) (details: $DEMO/close-S002.json, exceptions on the dashboard)"
  fi
  for s in "${STORES[@]}"; do
    if [ -f "$DEMO/$s.restart" ]; then
      rm -f "$DEMO/$s.restart"
      if kill -0 "${agent[$s]}" 2>/dev/null; then event "$s's agent is running already"
      else start_agent "$s"; unset 'down[$s]'; event "$s's agent started again (pid ${agent[$s]})"; fi
    fi
    if [ -z "${down[$s]:-}" ] && ! kill -0 "${agent[$s]}" 2>/dev/null; then
      wait "${agent[$s]}" 2>/dev/null; rc=$?
      down[$s]=died
      event "$s's agent stopped (exit $rc; log $DEMO/agent-$s.log). Its terminals keep writing and nothing is lost; start it again: touch $DEMO/$s.restart"
    fi
  done
  cap=0; fwd=0
  for s in "${STORES[@]}"; do
    st=$(curl -fsS "http://${listen[$s]}/status" 2>/dev/null)
    cap=$((cap + $(echo "$st" | json_sum last_seq)))
    fwd=$((fwd + $(echo "$st" | json_sum last_ack)))
  done
  app=$(api /api/v1/stores 2>/dev/null | json_sum records)
  exc=$(api "/api/v1/exceptions?state=open&limit=1" 2>/dev/null | json_sum exceptions)
  off=""; for s in "${!down[@]}"; do off+=" $s"; done
  printf '\r\033[Kcaptured %7d   forwarded+acked %7d   applied at hub %7d   open exceptions %3d%s ' "$cap" "$fwd" "$app" "$exc" "${off:+   agents down:$off}"
done
