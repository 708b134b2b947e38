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

TAG=e2e-deps
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

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
install_missing php-cli php-symfony-mailer

# --- The real callers of the installed package (e2e/callers) ------------------
# cron's package would start a system cron; the suite runs its own, so the
# install runs under a policy-rc.d that forbids starting services.
if any_missing cron mailutils sudo; then
	without_service_starts install_missing cron mailutils sudo
fi
if ! bsd_mailx_ok; then
	extract_deb bsd-mailx "$CACHE/bsd-mailx" || {
		echo "$TAG: bsd-mailx is not available from apt" >&2
		exit 1
	}
	install_libs_of "$CACHE/bsd-mailx"
fi

# A clean Debian of this machine's release, for the install test.
if [ ! -f "$CLEANROOT.done" ]; then
	install_missing debootstrap
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	echo "e2e-deps: debootstrap --variant=minbase $codename into $CLEANROOT"
	rm -rf "$CLEANROOT" "$CLEANROOT.tmp"
	mkdir -p "$CACHE"
	debootstrap --variant=minbase "$codename" "$CLEANROOT.tmp" http://deb.debian.org/debian >/dev/null
	mv "$CLEANROOT.tmp" "$CLEANROOT"
	touch "$CLEANROOT.done"
fi

# --- Dovecot ----------------------------------------------------------------
if any_missing dovecot-core dovecot-lmtpd; then
	# Whether a system dovecot runs now, so that we stop only one we started.
	was_running=""
	if [ -r /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
		was_running=1
	fi
	without_service_starts install_missing dovecot-core dovecot-lmtpd
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
	extract_deb postfix "$CACHE/postfix" || {
		echo "$TAG: postfix is not available from apt" >&2
		exit 1
	}
fi

# The extracted binaries link against libraries that `apt-get install
# postfix` would have pulled in; install those that are missing.
postfix_libs_ok || install_libs_of "$CACHE/postfix"
