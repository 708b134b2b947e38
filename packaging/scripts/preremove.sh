#!/bin/sh
# relaymail prerm (deb prerm, rpm %preun, apk pre-deinstall): stop the queue
# runner before the program goes. Queued mail stays in /var/spool/relaymail.
set -e

case "$1" in
upgrade | failed-upgrade | deconfigure | 1 | 2) exit 0 ;; # upgrades (deb, rpm)
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	if command -v deb-systemd-invoke >/dev/null 2>&1; then
		deb-systemd-invoke stop relaymail.service >/dev/null || true
	else
		systemctl disable --now relaymail.service >/dev/null 2>&1 || true
	fi
fi
exit 0
