#!/bin/sh
# Lanebridge @NAME@ post-install (deb: configure [old-version]; rpm: 1 install, 2 upgrade).
set -e
NAME=@NAME@
CONF=/etc/lanebridge/@CONF@
DATA=/var/lib/$NAME
if ! getent passwd lanebridge >/dev/null; then
	useradd --system --user-group --no-create-home --home-dir / --shell /usr/sbin/nologin lanebridge
fi
# The data directory is the service's only writable path; it survives upgrade and removal.
install -d -m 0750 -o lanebridge -g lanebridge "$DATA"
# The configuration holds secrets: root writes it, the service user reads it.
chgrp lanebridge "$CONF" && chmod 0640 "$CONF"
# The agent's own binary folder (the unit's other writable path): self-update swaps the binary
# there (minisign-verified against the keys built into it). Set again on every upgrade.
BINDIR=@BINDIR@
if [ -n "$BINDIR" ]; then
	chown root:lanebridge "$BINDIR" && chmod 0775 "$BINDIR"
fi
if command -v systemctl >/dev/null 2>&1; then
	# enable only creates the [Install] links, so it works without a running systemd too.
	systemctl enable "$NAME.service" >/dev/null 2>&1 || echo "$NAME: could not enable $NAME.service" >&2
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	if systemctl is-active --quiet "$NAME.service"; then
		systemctl restart "$NAME.service"   # upgrade: run the new binary
	elif @CHECK@ >/dev/null 2>&1; then
		systemctl start "$NAME.service"
	else
		echo "$NAME: enabled, not started: edit $CONF, then: systemctl start $NAME"
	fi
fi
exit 0
