// Package realserver starts real mail servers on loopback for the end-to-end
// tests, the way net/http/httptest starts an HTTP server: Dovecot's LMTP
// server, a private Postfix instance with STARTTLS (and, if asked, SASL
// through Dovecot), and Postfix's smtp-sink for error injection.
//
// Every server runs as a child process of the test with its own
// configuration in its own directory under /tmp, listens only on 127.0.0.1
// high ports and unix sockets in that directory, and is stopped by process
// group at the test's cleanup, failed or not. No system service is used or
// touched: Dovecot comes from Debian's packages but runs with its own
// configuration; Postfix is never installed, only extracted from its Debian
// package into a cache directory (so /usr/sbin/sendmail stays whatever it
// is).
//
// The software is installed by scripts/e2e-deps.sh (`make deps`, part of
// `make check`). When something is missing, the harness runs that script
// once (as root, unless RELAYMAIL_E2E_INSTALL=no); when it still is missing,
// the test is skipped with the reason, or fails when CI=true or
// RELAYMAIL_E2E_REQUIRE=1, so that CI never passes by skipping.
//
// The servers need root: Dovecot switches to an unprivileged mail user, and
// Postfix's master and smtp-sink drop privileges themselves.
//
// Environment:
//
//	RELAYMAIL_E2E_CACHE    where the extracted Postfix lives (/var/cache/relaymail-e2e)
//	RELAYMAIL_E2E_INSTALL  "no": never run scripts/e2e-deps.sh from a test
//	RELAYMAIL_E2E_REQUIRE  "1": fail instead of skipping (implied by CI=true)
package realserver
