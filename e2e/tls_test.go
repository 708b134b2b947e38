package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/relaytest"
)

// TLS fails closed at the binary too: an expired certificate, one from an
// authority tls_ca_file does not name, and a pinned fingerprint that does
// not match all defer the message (exit 75 with the queue off) with the
// reason, and nothing reaches the server; a matching pin delivers.
func TestTLSCertificateFailures(t *testing.T) {
	const secret = "pinned-secret-pw"
	issue := func(cert relaytest.CertOptions) (*relaytest.SMTPServer, *relaytest.TestCA, string) {
		ca := relaytest.NewTestCA(t, "relaymail e2e CA")
		cfg := ca.ServerConfig(t, cert)
		srv := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{TLSConfig: cfg, AuthUser: "alice", AuthPassword: secret})
		sum := sha256.Sum256(cfg.Certificates[0].Leaf.Raw)
		return srv, ca, hex.EncodeToString(sum[:])
	}
	caFile := func(ca *relaytest.TestCA) string {
		p := filepath.Join(t.TempDir(), "ca.pem")
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644)
		return p
	}
	now := time.Now()
	expired, expiredCA, _ := issue(relaytest.CertOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	good, _, pin := issue(relaytest.CertOptions{})
	otherCA := relaytest.NewTestCA(t, "another CA")

	for _, tc := range []struct {
		name  string
		srv   *relaytest.SMTPServer
		extra []string
		exit  int
		want  string
	}{
		{"expired", expired, []string{"RELAYMAIL_TLS_CA_FILE=" + caFile(expiredCA)}, 75, "expired"},
		{"unknown CA", good, []string{"RELAYMAIL_TLS_CA_FILE=" + caFile(otherCA)}, 75, "unknown authority"},
		{"pin mismatch", good, []string{"RELAYMAIL_TLS_FINGERPRINT=" + strings.Repeat("ab", 32)}, 75, "fingerprint"},
		{"pin match", good, []string{"RELAYMAIL_TLS_FINGERPRINT=" + pin}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.srv.Messages())
			env := mergeEnv(smtpEnv(t, "smtp://alice@localhost:"+port(tc.srv.Addr()), "", secret),
				append([]string{"RELAYMAIL_QUEUE=off", "RELAYMAIL_TLS_CA_FILE"}, tc.extra...))
			o := runSendmail(t, env, []string{"-v", "bob@example.org"}, []byte(simple))
			if o.exit != tc.exit || !strings.Contains(o.stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", o.exit, tc.exit, tc.want, o.stderr)
			}
			after := len(tc.srv.Messages())
			if tc.exit != 0 && after != before {
				t.Errorf("the server got %d messages", after-before)
			}
			if tc.exit == 0 && after != before+1 {
				t.Errorf("the server got %d messages, want 1", after-before)
			}
			if tc.exit != 0 && strings.Contains(o.stderr, "AUTH PLAIN") {
				t.Errorf("AUTH was attempted over a connection that failed verification:\n%s", o.stderr)
			}
			if strings.Contains(o.stderr, secret) {
				t.Errorf("the password is in the output")
			}
		})
	}
}
