#!/usr/bin/env bash
# govulncheck for `make check` (make vulncheck). It needs two things this
# script cannot always have: the govulncheck binary (the Makefile builds it
# from the module proxy, at the newest version whose dependencies the proxy
# serves) and the vulnerability database, fetched from https://vuln.go.dev
# unless GOVULNDB names another, e.g. file:///srv/govulndb (a mirror of
# vuln.go.dev: index/db.json, index/modules.json, ID/GO-*.json). When either
# is missing the check is SKIPPED with the reason, never passed in silence;
# known vulnerabilities in reachable code fail it.
set -uo pipefail
bin=${1:?usage: vulncheck.sh /path/to/govulncheck}
db=${GOVULNDB:-https://vuln.go.dev}
cd "$(dirname "$0")/.."
if [ ! -x "$bin" ]; then
	echo "vulncheck: SKIPPED: govulncheck could not be built from the module proxy (go install golang.org/x/vuln/cmd/govulncheck failed)"
	exit 0
fi
out=$("$bin" -db "$db" ./... 2>&1)
rc=$?
case $rc in
0)
	echo "vulncheck: $(printf '%s\n' "$out" | tail -n 1) (database $db)"
	exit 0
	;;
3)
	printf '%s\n' "$out"
	echo "vulncheck: FAILED: known vulnerabilities are reachable from relaymail's code"
	exit 1
	;;
esac
if printf '%s\n' "$out" | grep -qE 'fetching vulnerabilities|dial tcp|no such host|connection refused|i/o timeout|TLS handshake|no such file or directory'; then
	echo "vulncheck: SKIPPED: the vulnerability database $db cannot be read from this machine:"
	printf '%s\n' "$out" | grep -m1 -E 'fetching|dial|host|refused|timeout|TLS|no such file' | sed 's/^/  /'
	echo "  (set GOVULNDB=file:///path/to/a/mirror/of/vuln.go.dev to check offline)"
	exit 0
fi
printf '%s\n' "$out"
exit "$rc"
