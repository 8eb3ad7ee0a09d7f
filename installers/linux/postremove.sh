#!/bin/sh
# Lanebridge @NAME@ post-remove (deb: remove|purge|upgrade…; rpm: 0 remove, 1 upgrade).
# Removal keeps /var/lib/@NAME@ (the spool or store: unsent sales must never be lost) and the
# lanebridge user; purge (deb) also drops /etc/lanebridge/@CONF@ (dpkg does), still not the data.
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
case "$1" in
purge) echo "@NAME@: kept /var/lib/@NAME@; delete it by hand once nothing in it is needed" ;;
esac
exit 0
