#!/bin/sh
# relaymail postrm (deb postrm, rpm %postun, apk post-deinstall). Removing
# the package never deletes mail: what waits in /var/spool/relaymail stays
# there for a reinstall to deliver. A purge removes the spool directories
# only when they are empty, and keeps the relaymail user and group (files may
# still belong to them).
set -e

spool=/var/spool/relaymail

case "$1" in
upgrade | failed-upgrade | abort-install | abort-upgrade | disappear | 1) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if command -v deb-systemd-helper >/dev/null 2>&1; then
	case "$1" in
	remove) deb-systemd-helper mask relaymail.service >/dev/null || true ;;
	purge)
		deb-systemd-helper purge relaymail.service >/dev/null || true
		deb-systemd-helper unmask relaymail.service >/dev/null || true
		;;
	esac
fi

if [ "$1" = purge ]; then
	for d in tmp msg env failed; do
		rmdir "$spool/$d" 2>/dev/null || true
	done
	rmdir "$spool" 2>/dev/null || true
fi

if [ -d "$spool/env" ] && [ -n "$(ls -A "$spool/env" 2>/dev/null)" ]; then
	echo "relaymail: the queued mail in $spool was kept; reinstall relaymail to deliver it"
fi
exit 0
