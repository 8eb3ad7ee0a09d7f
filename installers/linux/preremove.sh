#!/bin/sh
# Lanebridge @NAME@ pre-remove (deb: remove|upgrade|deconfigure|failed-upgrade; rpm: 0 remove, 1 upgrade).
set -e
NAME=@NAME@
BINDIR=@BINDIR@
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then systemctl stop "$NAME.service" || true; fi
	if command -v systemctl >/dev/null 2>&1; then systemctl disable "$NAME.service" >/dev/null 2>&1 || true; fi
	# Self-update's leftovers (the previous binary, an interrupted swap's temporary file) are
	# not the package's: drop them so the package manager can remove the folder.
	if [ -n "$BINDIR" ]; then rm -f "$BINDIR/$NAME.old" "$BINDIR/.$NAME.new" "$BINDIR/.$NAME.old"; fi
	;;
esac
exit 0
