package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay"
)

func TestResultsExit(t *testing.T) {
	d := relay.Result{Class: relay.Delivered}
	z := relay.Result{Class: relay.Deferred}
	rcpt := relay.Result{Class: relay.Failed, Scope: relay.RecipientScope}
	msg := relay.Result{Class: relay.Failed, Scope: relay.MessageScope}
	cases := []struct {
		name    string
		results []relay.Result
		kept    bool
		want    int
	}{
		{"all delivered", []relay.Result{d, d}, false, exOK},
		{"deferred, not kept", []relay.Result{d, z}, false, exTempFail},
		{"deferred and queued", []relay.Result{d, z}, true, exOK},
		{"recipient rejected", []relay.Result{d, rcpt}, false, exNoUser},
		{"rejected and queued", []relay.Result{z, rcpt}, true, exNoUser},
		{"message rejected", []relay.Result{msg, msg}, false, exUnavailable},
		{"permanent outranks temporary", []relay.Result{z, msg}, false, exUnavailable},
		{"recipient outranks message", []relay.Result{msg, rcpt, z}, false, exNoUser},
	}
	for _, c := range cases {
		if got := resultsExit(c.results, c.kept); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}

// A privileged sendmail refuses -C and ignores RELAYMAIL_*.
func TestPrivilegedRun(t *testing.T) {
	old := privileged
	privileged = func() bool { return true }
	defer func() { privileged = old }()

	conf := filepath.Join(t.TempDir(), "evil.conf")
	os.WriteFile(conf, []byte("smarthost qmtp://127.0.0.1:1\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run([]string{"sendmail", "-C", conf, "a@example.org"}, strings.NewReader("x\n"), &stdout, &stderr)
	if code != exNoPerm || !strings.Contains(stderr.String(), "-C is not permitted") {
		t.Errorf("-C while privileged: exit %d, stderr %q", code, stderr.String())
	}

	// RELAYMAIL_CONFIG and RELAYMAIL_SMARTHOST would point at an attacker's
	// smarthost; privileged, they must be ignored, so with no
	// /etc/relaymail.conf smarthost there is none at all. -bv shows it
	// without reading a message or touching the real spool.
	if _, err := os.Stat("/etc/relaymail.conf"); err == nil {
		t.Skip("/etc/relaymail.conf exists on this machine")
	}
	t.Setenv("RELAYMAIL_CONFIG", conf)
	t.Setenv("RELAYMAIL_SMARTHOST", "qmtp://127.0.0.1:1")
	stderr.Reset()
	code = run([]string{"sendmail", "-bv"}, strings.NewReader(""), &stdout, &stderr)
	if code != exConfig || !strings.Contains(stderr.String(), "no smarthost is configured") {
		t.Errorf("RELAYMAIL_* while privileged: exit %d, stderr %q", code, stderr.String())
	}
}
