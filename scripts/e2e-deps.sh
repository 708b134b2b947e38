#!/usr/bin/env bash
# Installs what the real-server e2e harness (e2e/realserver) needs, on Debian
# 12, as root (or through sudo). Idempotent, and quick when all is there.
#
#   - Dovecot (dovecot-core, dovecot-lmtpd) from Debian. The package must not
#     leave a system dovecot running: the install runs under a policy-rc.d
#     that forbids starting services, and a system instance this install
#     started anyway is stopped again. The harness runs its own instances.
#   - Postfix, never installed: `apt-get download` + `dpkg -x` into
#     $RELAYMAIL_E2E_CACHE/postfix/root (default /var/cache/relaymail-e2e),
#     so /usr/sbin/sendmail and /etc/postfix are never touched. The shared
#     libraries it links against are installed when missing.
#   - The users and groups: relaymail-test (the unprivileged mail user of the
#     test instances), postfix and postdrop (Postfix's mail_owner and
#     setgid_group).
#   - The real callers of the installed package (e2e/callers): php-cli, cron,
#     mailutils and sudo from Debian, installed without starting a system
#     cron; bsd-mailx extracted like Postfix, because its package depends on
#     an MTA: installed before relaymail, apt would bring exim4 along, and
#     installed after it, it would keep `dpkg -r relaymail` (which the suite
#     tests) from removing it.
#   - A minimal Debian root (debootstrap --variant=minbase) in
#     $RELAYMAIL_E2E_CACHE/debian-minbase, where e2e/callers installs the .deb
#     as on a clean system (through an overlay, so the root stays clean).
set -euo pipefail

CACHE=${RELAYMAIL_E2E_CACHE:-/var/cache/relaymail-e2e}
PFROOT=$CACHE/postfix/root
export DEBIAN_FRONTEND=noninteractive

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
	echo "e2e-deps: not a Debian system; skipping (the real-server e2e tests will be skipped)" >&2
	exit 0
fi

installed() {
	local st
	st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
	[ "$st" = "install ok installed" ]
}

postfix_libs_ok() {
	local out
	out=$(LD_LIBRARY_PATH="$PFROOT/usr/lib/postfix" ldd "$PFROOT/usr/lib/postfix/sbin/smtpd" \
		"$PFROOT/usr/lib/postfix/sbin/master" "$PFROOT/usr/sbin/smtp-sink" 2>&1 || true)
	! grep -q 'not found' <<<"$out"
}

MAILXROOT=$CACHE/bsd-mailx/root
CLEANROOT=$CACHE/debian-minbase
bsd_mailx_ok() {
	[ -x "$MAILXROOT/usr/bin/bsd-mailx" ] && ! ldd "$MAILXROOT/usr/bin/bsd-mailx" 2>&1 | grep -q 'not found'
}

# The quick path, which needs no privileges: everything is there.
all_present() {
	installed dovecot-core && installed dovecot-lmtpd && installed php-cli && installed php-symfony-mailer &&
		installed cron && installed mailutils && installed sudo && bsd_mailx_ok &&
		[ -f "$CLEANROOT.done" ] &&
		[ -x "$PFROOT/usr/lib/postfix/sbin/master" ] && [ -f "$CACHE/postfix/version" ] && postfix_libs_ok &&
		getent passwd relaymail-test >/dev/null && getent passwd postfix >/dev/null &&
		getent group postdrop >/dev/null
}
if all_present; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		exec sudo -n env RELAYMAIL_E2E_CACHE="$CACHE" DEBIAN_FRONTEND=noninteractive "$0" "$@"
	fi
	echo "e2e-deps: not root and no password-less sudo; run $0 as root to install what the real-server e2e tests need (until then they are skipped)" >&2
	exit 0
fi

updated=""
apt_update() {
	[ -n "$updated" ] && return 0
	apt-get update -qq
	updated=1
}

# --- users and groups -------------------------------------------------------
getent group relaymail-test >/dev/null || groupadd --system relaymail-test
getent passwd relaymail-test >/dev/null ||
	useradd --system --gid relaymail-test --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin relaymail-test
getent group postfix >/dev/null || groupadd --system postfix
getent group postdrop >/dev/null || groupadd --system postdrop
getent passwd postfix >/dev/null ||
	useradd --system --gid postfix --no-create-home --home-dir /var/spool/postfix \
		--shell /usr/sbin/nologin postfix

# --- PHP and Symfony Mailer (the -bs real-caller test) -----------------------
php_pkgs="php-cli php-symfony-mailer"
missing=""
for p in $php_pkgs; do installed "$p" || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "e2e-deps: installing$missing"
	apt_update
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- The real callers of the installed package (e2e/callers) ------------------
# cron's package would start a system cron; the suite runs its own, so the
# install runs under a policy-rc.d that forbids starting services.
callers_pkgs="cron mailutils sudo"
missing=""
for p in $callers_pkgs; do installed "$p" || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "e2e-deps: installing$missing"
	prc=/usr/sbin/policy-rc.d
	prc_backup=""
	if [ -e "$prc" ] || [ -L "$prc" ]; then
		prc_backup=$(mktemp /usr/sbin/.policy-rc.d.relaymail.XXXXXX)
		cp -a "$prc" "$prc_backup"
	fi
	restore_callers_prc() {
		if [ -n "$prc_backup" ]; then mv -f "$prc_backup" "$prc"; else rm -f "$prc"; fi
	}
	trap restore_callers_prc EXIT
	printf '#!/bin/sh\n# written by relaymail scripts/e2e-deps.sh for the duration of an install\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	apt_update
	# Without recommends: cron and mailutils recommend an MTA.
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	restore_callers_prc
	trap - EXIT
fi
if ! bsd_mailx_ok; then
	echo "e2e-deps: extracting bsd-mailx into $MAILXROOT"
	mkdir -p "$CACHE/bsd-mailx"
	tmp=$(mktemp -d "$CACHE/bsd-mailx/.dl.XXXXXX")
	chmod 755 "$tmp"
	chown _apt "$tmp" 2>/dev/null || true
	if ! (cd "$tmp" && apt-get download -qq bsd-mailx 2>/dev/null); then
		apt_update
		(cd "$tmp" && apt-get download -qq bsd-mailx)
	fi
	deb=$(ls "$tmp"/bsd-mailx_*.deb)
	libs=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/[(|].*//; s/^ *//; s/ *$//' | grep '^lib' || true)
	dpkg -x "$deb" "$tmp/root"
	rm -rf "$MAILXROOT"
	mv "$tmp/root" "$MAILXROOT"
	rm -rf "$tmp"
	need=""
	for p in $libs; do installed "$p" || need="$need $p"; done
	if [ -n "$need" ]; then
		echo "e2e-deps: installing bsd-mailx's libraries:$need"
		apt_update
		apt-get install -y -qq --no-install-recommends $need >/dev/null
	fi
fi

# A clean Debian of this machine's release, for the install test.
if [ ! -f "$CLEANROOT.done" ]; then
	installed debootstrap || { apt_update; apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	echo "e2e-deps: debootstrap --variant=minbase $codename into $CLEANROOT"
	rm -rf "$CLEANROOT" "$CLEANROOT.tmp"
	mkdir -p "$CACHE"
	debootstrap --variant=minbase "$codename" "$CLEANROOT.tmp" http://deb.debian.org/debian >/dev/null
	mv "$CLEANROOT.tmp" "$CLEANROOT"
	touch "$CLEANROOT.done"
fi

# --- Dovecot ----------------------------------------------------------------
dovecot_pkgs="dovecot-core dovecot-lmtpd"
missing=""
for p in $dovecot_pkgs; do installed "$p" || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "e2e-deps: installing$missing"
	# Whether a system dovecot runs now, so that we stop only one we started.
	was_running=""
	if [ -r /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
		was_running=1
	fi
	prc=/usr/sbin/policy-rc.d
	backup=""
	if [ -e "$prc" ] || [ -L "$prc" ]; then
		backup=$(mktemp /usr/sbin/.policy-rc.d.relaymail.XXXXXX)
		cp -a "$prc" "$backup"
	fi
	restore_prc() {
		if [ -n "$backup" ]; then
			mv -f "$backup" "$prc"
		else
			rm -f "$prc"
		fi
	}
	trap restore_prc EXIT
	printf '#!/bin/sh\n# written by relaymail scripts/e2e-deps.sh for the duration of an install\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	apt_update
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	restore_prc
	trap - EXIT
	if [ -z "$was_running" ]; then
		if [ -d /run/systemd/system ]; then
			systemctl stop dovecot.service dovecot.socket >/dev/null 2>&1 || true
			systemctl disable dovecot.service dovecot.socket >/dev/null 2>&1 || true
		fi
		if [ -r /run/dovecot/master.pid ]; then
			pid=$(cat /run/dovecot/master.pid)
			if kill -0 "$pid" 2>/dev/null; then
				echo "e2e-deps: stopping the system dovecot (pid $pid) that the install started"
				kill "$pid" || true
			fi
		fi
	fi
fi

# --- Postfix, extracted, never installed -------------------------------------
if [ ! -x "$PFROOT/usr/lib/postfix/sbin/master" ] || [ ! -f "$CACHE/postfix/version" ]; then
	echo "e2e-deps: extracting postfix into $PFROOT"
	mkdir -p "$CACHE/postfix"
	tmp=$(mktemp -d "$CACHE/postfix/.dl.XXXXXX")
	# apt-get download runs as _apt when it can write the directory.
	chmod 755 "$tmp"
	chown _apt "$tmp" 2>/dev/null || true
	if ! (cd "$tmp" && apt-get download -qq postfix 2>/dev/null); then
		apt_update
		(cd "$tmp" && apt-get download -qq postfix)
	fi
	deb=$(ls "$tmp"/postfix_*.deb)
	dpkg-deb -f "$deb" Depends >"$tmp/depends"
	dpkg -x "$deb" "$tmp/root"
	dpkg-deb -f "$deb" Version >"$tmp/version"
	rm -rf "$PFROOT" "$CACHE/postfix/depends"
	mv "$tmp/root" "$PFROOT"
	mv "$tmp/depends" "$CACHE/postfix/depends"
	mv "$tmp/version" "$CACHE/postfix/version"
	rm -rf "$tmp"
fi

# The extracted binaries link against libraries that `apt-get install
# postfix` would have pulled in; install those that are missing.
if ! postfix_libs_ok; then
	libs=$(tr ',' '\n' <"$CACHE/postfix/depends" | sed 's/[(|].*//; s/^ *//; s/ *$//' | grep '^lib' || true)
	need=""
	for p in $libs; do installed "$p" || need="$need $p"; done
	if [ -n "$need" ]; then
		echo "e2e-deps: installing postfix's libraries:$need"
		apt_update
		apt-get install -y -qq --no-install-recommends $need >/dev/null
	fi
fi
