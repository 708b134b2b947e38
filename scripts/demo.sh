#!/usr/bin/env bash
# The README's quick start: queue a sample message while no smarthost is
# configured, list it with mailq, then start a QMTP sink on loopback, flush
# the queue into it with sendmail -q, show what arrived, and stop the sink by
# its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
sink_pid=""
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# An empty config file keeps /etc/relaymail.conf out of the demo.
: >"$work/relaymail.conf"
export RELAYMAIL_CONFIG="$work/relaymail.conf"
export RELAYMAIL_QUEUE_DIR="$work/queue"
export RELAYMAIL_DOMAIN=example.com
export RELAYMAIL_LOG=none
export RELAYMAIL_FLUSH_AFTER_SEND=no

echo "== 1. no smarthost yet: the message goes into the queue"
echo "+ printf 'Subject: hello from relaymail\\nTo: root, you@example.org\\n\\nIt works.\\n' | bin/sendmail -t -i"
printf 'Subject: hello from relaymail\nTo: root, you@example.org\nBcc: hidden@example.net\n\nIt works.\n' | bin/sendmail -t -i
echo "sendmail exit status: $?"
echo "+ bin/sendmail -bp    (mailq)"
bin/sendmail -bp

echo
echo "== 2. a smarthost appears: a QMTP sink on 127.0.0.1"
mkdir "$work/store"
bin/qmtp-sink -listen 127.0.0.1:0 -dir "$work/store" >"$work/addr" &
sink_pid=$!
for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
addr=$(head -n1 "$work/addr")
echo "QMTP sink listening on $addr (pid $sink_pid)"
export RELAYMAIL_SMARTHOST="qmtp://$addr"
echo "+ bin/sendmail -q -v"
bin/sendmail -q -v
echo "+ bin/sendmail -bp"
bin/sendmail -bp

for env in "$work"/store/*.env; do
	[ -e "$env" ] || { echo "the sink stored nothing"; exit 1; }
	echo "--- envelope the sink received ($env)"
	cat "$env"
	echo "--- message"
	cat "${env%.env}.msg"
done
