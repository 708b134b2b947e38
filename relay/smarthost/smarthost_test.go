package smarthost

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/qmtp"
	"github.com/relaymail/relaymail/relay/smtp"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want URL // Raw is not compared
		name string
	}{
		{in: "qmtp://mx.example.com", want: URL{Scheme: QMTP, Network: "tcp", Host: "mx.example.com", Port: 209, TLS: TLSNone, Verify: true}, name: "qmtp://mx.example.com:209"},
		{in: "QMTP://MX.example.com:2209/", want: URL{Scheme: QMTP, Network: "tcp", Host: "MX.example.com", Port: 2209, TLS: TLSNone, Verify: true}, name: "qmtp://MX.example.com:2209"},
		{in: "qmtp://[::1]:2209", want: URL{Scheme: QMTP, Network: "tcp", Host: "::1", Port: 2209, TLS: TLSNone, Verify: true}, name: "qmtp://[::1]:2209"},
		{in: "qmtp:/run/qmtp.sock", want: URL{Scheme: QMTP, Network: "unix", Path: "/run/qmtp.sock", TLS: TLSNone, Verify: true}, name: "qmtp:/run/qmtp.sock"},
		{in: "lmtp:/run/dovecot/lmtp", want: URL{Scheme: LMTP, Network: "unix", Path: "/run/dovecot/lmtp", TLS: TLSNone, Verify: true}, name: "lmtp:/run/dovecot/lmtp"},
		{in: "lmtp://127.0.0.1", want: URL{Scheme: LMTP, Network: "tcp", Host: "127.0.0.1", Port: 24, TLS: TLSNone, Verify: true}, name: "lmtp://127.0.0.1:24"},
		{in: "smtp://user@mail.example.com", want: URL{Scheme: SMTP, Network: "tcp", Host: "mail.example.com", Port: 587, User: "user", TLS: TLSStartTLS, Verify: true}, name: "smtp://user@mail.example.com:587"},
		{in: "smtp://relay.lan:25?tls=none", want: URL{Scheme: SMTP, Network: "tcp", Host: "relay.lan", Port: 25, TLS: TLSNone, Verify: true}, name: "smtp://relay.lan:25"},
		{in: "smtps://u@mail.example.com?auth=plain&verify=no", want: URL{Scheme: SMTPS, Network: "tcp", Host: "mail.example.com", Port: 465, User: "u", TLS: TLSImplicit, Auth: "plain"}, name: "smtps://u@mail.example.com:465"},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		got.Raw = ""
		if *got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.in, *got, c.want)
		}
		if got.String() != c.name {
			t.Errorf("%q: String() = %q, want %q", c.in, got.String(), c.name)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "empty smarthost URL",
		"mail.example.com":                  "has no scheme",
		"ftp://x":                           `unknown scheme "ftp"`,
		"smtp://u:hunter2@mail.example.com": "password",
		"smtp:/run/sock":                    "only qmtp and lmtp smarthosts can be unix sockets",
		"qmtp:relative/path":                "must be absolute",
		"qmtp://x:99999":                    "port",
		"qmtp://x/path":                     "unexpected path",
		"smtp://x?tls=maybe":                `tls="maybe" is not valid`,
		"smtp://x?color=blue":               `unknown option "color"`,
		"smtp://x?tls=implicit":             "write smtps://",
		"smtps://x?tls=none":                "smtps always uses implicit TLS",
		"qmtp://u@x":                        "QMTP has no TLS and no authentication",
		"qmtp://x#frag":                     "fragment",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) leaks the password: %v", in, err)
		}
	}
}

func TestRelayer(t *testing.T) {
	u, _ := Parse("qmtp://127.0.0.1:2209")
	r, err := u.Relayer(Options{Timeout: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q, ok := r.(*qmtp.Relayer)
	if !ok || q.Options.Address != "127.0.0.1:2209" || q.Options.IOTimeout != 7*time.Second || r.String() != "qmtp://127.0.0.1:2209" {
		t.Errorf("relayer %#v", r)
	}
	u, _ = Parse("smtps://alice@mail.example.com:2465?auth=plain")
	r, err = u.Relayer(Options{Hostname: "me.example.com", Timeout: 7 * time.Second, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := r.(*smtp.Relayer)
	if !ok {
		t.Fatalf("relayer %#v", r)
	}
	o := s.Options
	if o.Address != "mail.example.com:2465" || o.ServerName != "mail.example.com" || o.TLS != smtp.TLSMode(TLSImplicit) || o.LMTP ||
		o.Hostname != "me.example.com" || o.Timeouts.Command != 7*time.Second || o.Timeouts.DataEnd != 10*time.Minute ||
		o.Auth == nil || o.Auth.User != "alice" || o.Auth.Mechanism != "plain" || o.TLSConfig == nil || o.TLSConfig.InsecureSkipVerify {
		t.Errorf("options %+v", o)
	}
	if pw, _ := o.Auth.Password(); pw != "pw" {
		t.Errorf("password %q", pw)
	}
	u, _ = Parse("lmtp:/run/dovecot/lmtp")
	r, err = u.Relayer(Options{})
	if err != nil || !r.(*smtp.Relayer).Options.LMTP || r.(*smtp.Relayer).Options.TLSConfig != nil {
		t.Errorf("lmtp relayer %#v, %v", r, err)
	}
	u, _ = Parse("smtp://bob@mail.example.com")
	if _, err := u.Relayer(Options{}); err == nil || !strings.Contains(err.Error(), "no password is configured") {
		t.Errorf("user without password: %v", err)
	}
	u, _ = Parse("smtp://mail.example.com?auth=login")
	if _, err := u.Relayer(Options{}); err == nil || !strings.Contains(err.Error(), "names no user") {
		t.Errorf("auth without user: %v", err)
	}
}

func TestTLSConfig(t *testing.T) {
	u, _ := Parse("smtp://mail.example.com?verify=no")
	c, err := u.TLSConfig(Options{})
	if err != nil || !c.InsecureSkipVerify || c.ServerName != "mail.example.com" || c.MinVersion != tls.VersionTLS12 {
		t.Errorf("verify=no: %+v %v", c, err)
	}
	u, _ = Parse("smtp://mail.example.com")
	c, err = u.TLSConfig(Options{TLSFingerprint: strings.Repeat("ab", 32)})
	if err != nil || !c.InsecureSkipVerify || c.VerifyConnection == nil {
		t.Errorf("pin: %+v %v", c, err)
	}
	if _, err := u.TLSConfig(Options{TLSCAFile: "/nonexistent/ca.pem"}); err == nil || !strings.Contains(err.Error(), "tls_ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o644)
	if _, err := u.TLSConfig(Options{TLSCAFile: empty}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
	if _, err := u.TLSConfig(Options{TLSCertFile: "/x.pem"}); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("cert without key: %v", err)
	}
	// Fail closed when the system has no CA roots (a minimal container
	// without ca-certificates). The e2e suite checks the same with a real
	// process whose SSL_CERT_FILE and SSL_CERT_DIR point at nothing.
	old := systemRoots
	defer func() { systemRoots = old }()
	systemRoots = func() (*x509.CertPool, error) { return x509.NewCertPool(), nil }
	if _, err := u.TLSConfig(Options{}); err == nil || !strings.Contains(err.Error(), "install ca-certificates") {
		t.Errorf("no roots: %v", err)
	}
}
