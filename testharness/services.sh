#!/usr/bin/env bash
# services.sh — make sure every real service the tests talk to is up, starting what is not:
# PostgreSQL (127.0.0.1:5432), Mosquitto (127.0.0.1:1883) and a fresh seeded Tryton ERP
# (127.0.0.1:${TRYTON_PORT:-18000}, Debian's packages) and a fresh seeded Vendure
# (127.0.0.1:${VENDURE_PORT:-18100}, from npm: testharness/vendure). It prints the environment the tests need
# (source it: `eval "$(testharness/services.sh)"`). A service that cannot be started fails loudly:
# tests never skip in CI for lack of a service. It also installs the packaging tools (below).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "services: $*" >&2; }
die() { echo "services: FAILED: $*" >&2; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not available to install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; } \
    || die "cannot install $*"
}

# Packaging tools: `make dist` needs wixl and msibuild (MSI); the installers' tests also dpkg-deb,
# rpm, msiinfo/msiextract, systemd-analyze, osslsigncode, openssl, minisign, make, and unshare,
# setpriv for the dpkg lifecycle test. Missing ones are installed; one still missing is fatal
# (under CI those tests fail rather than skip). `services.sh --tools` does only this (.ci/run,
# before make dist).
packaging_tools() {
  local tools="wixl:wixl msibuild:msitools msiinfo:msitools msiextract:msitools dpkg-deb:dpkg rpm:rpm
    systemd-analyze:systemd osslsigncode:osslsigncode openssl:openssl minisign:minisign make:make
    unshare:util-linux setpriv:util-linux" t missing=""
  for t in $tools; do command -v "${t%%:*}" >/dev/null || missing="$missing ${t#*:}"; done
  if [ -n "$missing" ]; then
    log "installing packaging tools:$missing"
    # shellcheck disable=SC2046 # one word per package
    apt_install $(printf '%s\n' $missing | sort -u)
  fi
  for t in $tools; do command -v "${t%%:*}" >/dev/null || die "${t%%:*} missing after apt-get install ${t#*:}"; done
}
packaging_tools
if [ "${1:-}" = --tools ]; then log "packaging tools present"; exit 0; fi

# PostgreSQL
if ! listening 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || die "PostgreSQL did not start"
  for _ in $(seq 50); do listening 5432 && break; sleep 0.2; done
fi
listening 5432 || die "PostgreSQL is not listening on 127.0.0.1:5432"
command -v psql >/dev/null || apt_install postgresql-client
psql "postgres://postgres@127.0.0.1:5432/test?sslmode=disable" -qc 'select 1' >/dev/null 2>&1 \
  || psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" -qc 'create database test' >/dev/null \
  || die "PostgreSQL database 'test' is not usable by user postgres"

# Mosquitto
if ! listening 1883; then
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
  log "starting Mosquitto"
  /usr/sbin/mosquitto -d -c /etc/mosquitto/mosquitto.conf || die "Mosquitto did not start"
  for _ in $(seq 50); do listening 1883 && break; sleep 0.2; done
fi
listening 1883 || die "Mosquitto is not listening on 127.0.0.1:1883"

# Chromium, for the dashboard test in a real browser
if ! command -v chromium >/dev/null; then
  log "installing Chromium"
  apt_install chromium
fi

# Tryton (fresh database each run; setup.sh installs Debian's packages when missing)
export TRYTON_DIR="${TRYTON_DIR:-/tmp/lanebridge-tryton-test}"
export TRYTON_PORT="${TRYTON_PORT:-18000}"
export TRYTON_SEED_STORES="${TRYTON_SEED_STORES:-S001,S002}"
if [ "${LANEBRIDGE_SKIP_TRYTON:-}" != 1 ]; then
  "$here/tryton/stop.sh" "$TRYTON_DIR" >/dev/null 2>&1 || true
  TRYTON_FRESH=1 "$here/tryton/setup.sh" "$TRYTON_DIR" "$TRYTON_PORT" >&2 || die "Tryton did not start (see $TRYTON_DIR)"
  sed 's/^/export /' "$TRYTON_DIR/env"
  echo "export LANEBRIDGE_TRYTON_REQUIRED=1"
  echo "export TRYTON_DIR=$TRYTON_DIR"
fi
# Vendure (real, from npm; fresh database each run), for the channel connector tests
export VENDURE_DIR="${VENDURE_DIR:-/tmp/lanebridge-vendure-test}"
export VENDURE_PORT="${VENDURE_PORT:-18100}"
if [ "${LANEBRIDGE_SKIP_VENDURE:-}" != 1 ]; then
  "$here/vendure/setup.sh" "$VENDURE_DIR" "$VENDURE_PORT" >/dev/null || die "Vendure did not start (see $VENDURE_DIR/vendure.log)"
  sed 's/^/export /' "$VENDURE_DIR/env"
  echo "export LANEBRIDGE_VENDURE_REQUIRED=1"
  echo "export VENDURE_DIR=$VENDURE_DIR"
fi
echo "export LANEBRIDGE_TEST_PG_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'"
echo "export LANEBRIDGE_TEST_MQTT_URL=tcp://127.0.0.1:1883"
log "all services up"
