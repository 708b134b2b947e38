#!/usr/bin/env bash
# Installs what `make bench` needs besides the e2e servers (which
# scripts/e2e-deps.sh installs), on Debian 12, as root (or through sudo).
# Idempotent, and quick when all is there.
#
#   - The peers: msmtp, nullmailer and dma (when Debian has it), never
#     installed: `apt-get download` + `dpkg -x` into
#     $RELAYMAIL_BENCH_CACHE/<package>/root (default
#     /var/cache/relaymail-bench), so /usr/sbin/sendmail, /etc and the
#     package database are never touched. The shared libraries they link
#     against are installed when missing, as for the extracted Postfix.
#   - GNU time (/usr/bin/time, the peak RSS), hyperfine (a cross-check of
#     the headline figures) and strace (the syscall profile), installed from
#     Debian.
set -euo pipefail

CACHE=${RELAYMAIL_BENCH_CACHE:-/var/cache/relaymail-bench}
PEERS="msmtp nullmailer dma"
# Debian package:program, for the tools installed from Debian.
TOOLS="time:/usr/bin/time hyperfine:/usr/bin/hyperfine strace:/usr/bin/strace"
export DEBIAN_FRONTEND=noninteractive

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
	echo "bench-deps: not a Debian system; the peers will be skipped" >&2
	exit 0
fi

TAG=bench-deps
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# The binaries of each peer whose libraries must resolve.
bins() {
	case $1 in
	msmtp) echo usr/bin/msmtp ;;
	nullmailer) echo usr/lib/nullmailer/smtp usr/lib/nullmailer/qmqp ;;
	dma) echo usr/sbin/dma ;;
	esac
}

libs_ok() {
	local p=$1 b
	for b in $(bins "$p"); do
		[ -x "$CACHE/$p/root/$b" ] || return 1
		if ldd "$CACHE/$p/root/$b" 2>&1 | grep -q 'not found'; then
			return 1
		fi
	done
}

all_present() {
	local p t
	for t in $TOOLS; do [ -x "${t#*:}" ] || return 1; done
	for p in $PEERS; do
		[ -f "$CACHE/$p/version" ] || [ -f "$CACHE/$p/unavailable" ] || return 1
		[ -f "$CACHE/$p/unavailable" ] || libs_ok "$p" || return 1
	done
}
if all_present; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		exec sudo -n env RELAYMAIL_BENCH_CACHE="$CACHE" DEBIAN_FRONTEND=noninteractive "$0" "$@"
	fi
	echo "bench-deps: not root and no password-less sudo; run $0 as root (until then the peers are skipped)" >&2
	exit 0
fi

missing=""
for t in $TOOLS; do [ -x "${t#*:}" ] || missing="$missing ${t%%:*}"; done
# shellcheck disable=SC2086 # one word per package
install_missing $missing

for p in $PEERS; do
	if [ ! -f "$CACHE/$p/version" ]; then
		rm -f "$CACHE/$p/unavailable"
		if ! extract_deb "$p" "$CACHE/$p"; then
			echo "$TAG: $p is not available from apt; it will be skipped" >&2
			echo "not in the apt sources" >"$CACHE/$p/unavailable"
			continue
		fi
	fi
	[ -f "$CACHE/$p/unavailable" ] && continue
	libs_ok "$p" || install_libs_of "$CACHE/$p"
done
