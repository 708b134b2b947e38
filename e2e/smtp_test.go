package e2e

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/relay/relaytest"
)

// tlsServer starts an in-process SMTP server with STARTTLS and AUTH PLAIN,
// its certificate issued by a throw-away CA whose PEM file is returned.
func tlsServer(t *testing.T, opts relaytest.SMTPOptions, cert relaytest.CertOptions) (*relaytest.SMTPServer, string) {
	ca := relaytest.NewTestCA(t, "relaymail e2e CA")
	opts.TLSConfig = ca.ServerConfig(t, cert)
	srv := relaytest.NewSMTPServer(t, opts)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

func smtpEnv(t *testing.T, url, caFile, password string) []string {
	env := mergeEnv(baseEnv(t, url), []string{"RELAYMAIL_TLS_CA_FILE=" + caFile})
	if password == "" {
		return env
	}
	pw := filepath.Join(t.TempDir(), "password")
	os.WriteFile(pw, []byte(password+"\n"), 0o600)
	return mergeEnv(env, []string{"RELAYMAIL_PASSWORD_FILE=" + pw})
}

// STARTTLS verified against tls_ca_file, AUTH PLAIN with a password from
// RELAYMAIL_PASSWORD_FILE, and a -v transcript that never shows it.
func TestSMTPStartTLSAuthVerbose(t *testing.T) {
	const secret = "correct horse battery staple"
	srv, caFile := tlsServer(t, relaytest.SMTPOptions{AuthUser: "alice", AuthPassword: secret}, relaytest.CertOptions{})
	env := smtpEnv(t, "smtp://alice@localhost:"+port(srv.Addr()), caFile, secret)
	o := runSendmail(t, env, []string{"-v", "-i", "bob@example.org"}, []byte("Subject: tls\n\nhello\n"))
	if o.exit != 0 {
		t.Fatalf("exit %d: %s", o.exit, o.stderr)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].Auth != "alice" || msgs[0].From != "alice@example.com" {
		t.Fatalf("server got %+v", msgs)
	}
	if !strings.HasSuffix(string(msgs[0].Data), "\r\n\r\nhello\r\n") {
		t.Errorf("data %q", msgs[0].Data)
	}
	for _, want := range []string{"> STARTTLS", "> AUTH PLAIN [redacted]", "sendmail: bob@example.org: delivered via smtp://alice@localhost:"} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stderr, secret) || strings.Contains(o.stderr, "Y29ycmVjdCBob3JzZ") {
		t.Errorf("the password leaked into the transcript:\n%s", o.stderr)
	}
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// -bv without recipients describes the smarthost; with recipients it asks
// RCPT about each and sends nothing.
func TestVerifyMode(t *testing.T) {
	srv, caFile := tlsServer(t, relaytest.SMTPOptions{
		AuthUser: "alice", AuthPassword: "pw",
		RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
			if strings.HasPrefix(m.Rcpts[i].To, "nobody@") {
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
	}, relaytest.CertOptions{})
	env := smtpEnv(t, "smtp://alice@localhost:"+port(srv.Addr()), caFile, "pw")

	o := runSendmail(t, env, []string{"-bv"}, nil)
	if o.exit != 0 {
		t.Fatalf("-bv: exit %d: %s%s", o.exit, o.stdout, o.stderr)
	}
	for _, want := range []string{"smarthost smtp://alice@localhost:", "  greeting: ", "  extensions: ", "PIPELINING", "  tls: TLS 1.3, ",
		"certificate CN=localhost", "verified against tls_ca_file " + caFile, "  auth: PLAIN as alice succeeded"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("-bv output lacks %q:\n%s", want, o.stdout)
		}
	}

	o = runSendmail(t, env, []string{"-bv", "root", "nobody@example.org"}, nil)
	if o.exit != 67 {
		t.Errorf("-bv addresses: exit %d, want 67: %s%s", o.exit, o.stdout, o.stderr)
	}
	for _, want := range []string{"sender <alice@example.com>", "recipient <root@example.com>", "recipient <nobody@example.org>",
		"<root@example.com>: accepted by smtp://", "<nobody@example.org>: rejected by smtp://alice@localhost:" + port(srv.Addr()) + ": 550 5.1.1 no such user"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("-bv output lacks %q:\n%s", want, o.stdout)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("-bv delivered %d messages", n)
	}
}

// TLS fails closed: a wrong host name defers with an explanation, and a
// system without CA certificates refuses to send at all.
func TestTLSFailsClosed(t *testing.T) {
	srv, caFile := tlsServer(t, relaytest.SMTPOptions{}, relaytest.CertOptions{DNSNames: []string{"other.example.net"}})
	env := mergeEnv(smtpEnv(t, "smtp://localhost:"+port(srv.Addr()), caFile, ""), []string{"RELAYMAIL_QUEUE=off"})
	o := runSendmail(t, env, []string{"a@example.org"}, []byte(simple))
	if o.exit != 75 || !strings.Contains(o.stderr, "other.example.net") || len(srv.Messages()) != 0 {
		t.Errorf("wrong name: exit %d, stderr:\n%s", o.exit, o.stderr)
	}

	empty := filepath.Join(t.TempDir(), "none.pem")
	os.WriteFile(empty, nil, 0o644)
	env = mergeEnv(baseEnv(t, "smtp://localhost:"+port(srv.Addr())), []string{"SSL_CERT_FILE=" + empty, "SSL_CERT_DIR=" + t.TempDir()})
	o = runSendmail(t, env, []string{"a@example.org"}, []byte(simple))
	if o.exit != 78 || !strings.Contains(o.stderr, "install ca-certificates, or set tls_ca_file") {
		t.Errorf("no roots: exit %d, stderr:\n%s", o.exit, o.stderr)
	}
}
