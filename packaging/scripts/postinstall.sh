#!/bin/sh
# relaymail postinst (deb postinst, rpm %post, apk post-install and
# post-upgrade): make sure of the account, give the files the modes and
# owners of the security model (packaging/README.md) that a package manager
# may not have applied (the group did not exist yet when an older version
# was unpacked; an administrator's dpkg-statoverride wins), create the spool,
# and start the queue runner where systemd runs.
set -e

case "$1" in
abort-upgrade | abort-remove | abort-deconfigure) exit 0 ;;
esac

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
if ! getent group relaymail >/dev/null 2>&1; then
	if command -v groupadd >/dev/null 2>&1; then
		groupadd --system relaymail
	else
		addgroup -S relaymail
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

# set_mode MODE OWNER PATH: unless the administrator overrides it with
# dpkg-statoverride. chown clears the set-group-ID bit, so chmod comes last.
set_mode() {
	if command -v dpkg-statoverride >/dev/null 2>&1 &&
		dpkg-statoverride --list "$3" >/dev/null 2>&1; then
		return 0
	fi
	chown "$2" "$3"
	chmod "$1" "$3"
}

for d in /var/spool/relaymail /var/spool/relaymail/tmp /var/spool/relaymail/msg \
	/var/spool/relaymail/env /var/spool/relaymail/failed; do
	[ -d "$d" ] || mkdir -p "$d"
	set_mode 2770 root:relaymail "$d"
done
set_mode 0640 root:relaymail /etc/relaymail.conf
set_mode 2755 root:relaymail /usr/sbin/sendmail
set_mode 2755 root:relaymail /usr/bin/qmail-inject

# The queue runner: relaymail.service where systemd runs (the cron job in
# /etc/cron.d/relaymail then stays idle), cron alone elsewhere.
upgrade=""
case "$1" in
configure) [ -n "$2" ] && upgrade=1 ;; # deb: configure <old version>
2) upgrade=1 ;;                        # rpm: two versions installed
esac
if command -v deb-systemd-helper >/dev/null 2>&1; then
	# Debian, as debhelper does it: enabled on the first install, and an
	# administrator's "disable" sticks across upgrades.
	deb-systemd-helper unmask relaymail.service >/dev/null || true
	if deb-systemd-helper --quiet was-enabled relaymail.service; then
		deb-systemd-helper enable relaymail.service >/dev/null || true
	else
		deb-systemd-helper update-state relaymail.service >/dev/null || true
	fi
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if command -v deb-systemd-invoke >/dev/null 2>&1; then
		# Through invoke-rc.d's policy (policy-rc.d may forbid starting).
		if [ -n "$upgrade" ]; then
			deb-systemd-invoke restart relaymail.service >/dev/null || true
		else
			deb-systemd-invoke start relaymail.service >/dev/null || true
		fi
	elif [ -n "$upgrade" ]; then
		systemctl try-restart relaymail.service >/dev/null 2>&1 || true
	else
		systemctl enable --now relaymail.service >/dev/null 2>&1 || true
	fi
fi

if ! grep -q '^[[:space:]]*smarthost[[:space:]]' /etc/relaymail.conf 2>/dev/null; then
	echo "relaymail: no smarthost in /etc/relaymail.conf yet: mail is queued in /var/spool/relaymail until you set one (see relaymail.conf(5))"
fi
exit 0
