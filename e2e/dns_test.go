package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A smarthost whose name does not resolve is a deferral, never a bounce:
// the message is queued (exit 0), a queue run defers it again, and nothing
// goes to failed/ or back to the sender. The name is under .invalid, which
// never resolves (RFC 6761), and relaymail fails it itself without asking
// a DNS server, so the test sends no DNS traffic.
func TestUnresolvableSmarthostDefers(t *testing.T) {
	for _, url := range []string{"smtp://relay.invalid", "qmtp://relay.invalid", "lmtp://relay.invalid", "smtps://relay.invalid"} {
		t.Run(url, func(t *testing.T) {
			env := baseEnv(t, url)
			spool := ""
			for _, e := range env {
				if v, ok := strings.CutPrefix(e, "RELAYMAIL_QUEUE_DIR="); ok {
					spool = v
				}
			}
			o := runSendmail(t, env, []string{"bob@example.org"}, []byte(simple))
			if o.exit != 0 || !strings.Contains(o.stderr, "deferred") || !strings.Contains(o.stderr, "RFC 6761") {
				t.Fatalf("exit %d:\n%s", o.exit, o.stderr)
			}
			o = runSendmail(t, env, []string{"-q"}, nil)
			if o.exit != 0 {
				t.Fatalf("-q: exit %d:\n%s", o.exit, o.stderr)
			}
			queued, _ := os.ReadDir(filepath.Join(spool, "env"))
			failed, _ := os.ReadDir(filepath.Join(spool, "failed"))
			if len(queued) != 1 || len(failed) != 0 {
				t.Fatalf("%d queued, %d failed; want 1 and 0", len(queued), len(failed))
			}
			data, err := os.ReadFile(filepath.Join(spool, "env", queued[0].Name()))
			if err != nil {
				t.Fatal(err)
			}
			// Two attempts, the recipient still pending, and no notification
			// (a bounce would be a second queued message).
			if !strings.Contains(string(data), "\nattempts 2\n") || !strings.Contains(string(data), "\nrcpt pending bob@example.org\n") {
				t.Errorf("envelope:\n%s", data)
			}
		})
	}
}
