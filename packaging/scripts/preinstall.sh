#!/bin/sh
# relaymail preinst (deb preinst, rpm %pre, apk pre-install): create the
# relaymail group and user before the files are unpacked, so that the
# package manager gives /usr/sbin/sendmail, /etc/relaymail.conf and the spool
# their group by name. See packaging/README.md for every mode and owner.
set -e

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin

if ! getent group relaymail >/dev/null 2>&1; then
	if command -v groupadd >/dev/null 2>&1; then
		groupadd --system relaymail
	else
		addgroup -S relaymail # Alpine (busybox)
	fi
fi
if ! getent passwd relaymail >/dev/null 2>&1; then
	if command -v useradd >/dev/null 2>&1; then
		useradd --system --gid relaymail --no-create-home \
			--home-dir /var/spool/relaymail --shell "$nologin" \
			--comment "relaymail queue runner" relaymail
	else
		adduser -S -D -H -h /var/spool/relaymail -s "$nologin" \
			-G relaymail -g "relaymail queue runner" relaymail
	fi
fi
exit 0
