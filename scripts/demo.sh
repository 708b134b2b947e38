#!/usr/bin/env bash
# The README's quick start: send a sample message through bin/sendmail to a
# QMTP sink that this script starts on loopback and stops again by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
sink_pid=""
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/store"
bin/qmtp-sink -listen 127.0.0.1:0 -dir "$work/store" >"$work/addr" &
sink_pid=$!
for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
addr=$(head -n1 "$work/addr")
echo "QMTP sink listening on $addr (pid $sink_pid)"

# An empty config file keeps /etc/relaymail.conf out of the demo.
: >"$work/relaymail.conf"
export RELAYMAIL_CONFIG="$work/relaymail.conf"
export RELAYMAIL_SMARTHOST="qmtp://$addr"
export RELAYMAIL_DOMAIN=example.com
export RELAYMAIL_LOG=stderr

echo "+ printf 'Subject: hello from relaymail\\nTo: root, you@example.org\\n\\nIt works.\\n' | bin/sendmail -t -i"
set +e
printf 'Subject: hello from relaymail\nTo: root, you@example.org\nBcc: hidden@example.net\n\nIt works.\n' | bin/sendmail -t -i
status=$?
set -e
echo "sendmail exit status: $status"
for env in "$work"/store/*.env; do
	[ -e "$env" ] || { echo "the sink stored nothing"; exit 1; }
	echo "--- envelope ($env)"
	cat "$env"
	echo "--- message"
	cat "${env%.env}.msg"
done
exit "$status"
