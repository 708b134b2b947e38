package smtp_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/relaytest"
	"github.com/relaymail/relaymail/relay/smtp"
)

// These tests run the client against relaytest's in-process go-smtp
// server: a real, independent implementation of the server side.

const wait = 10 * time.Second

func message(s string) *relay.Message {
	return &relay.Message{Data: strings.NewReader(s), Size: int64(len(s)), EightBit: !relay.IsASCII(s)}
}

// options points the client at s.
func options(s *relaytest.SMTPServer) smtp.Options {
	return smtp.Options{
		Network:  s.Network(),
		Address:  s.Addr(),
		TLS:      smtp.TLSNone,
		Hostname: "client.example",
	}
}

func relayOne(t *testing.T, opts smtp.Options, env *relay.Envelope, msg *relay.Message) []relay.Result {
	t.Helper()
	r := &smtp.Relayer{Options: opts}
	res, err := r.Relay(context.Background(), env, msg)
	if err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if len(res) != len(env.Recipients) {
		t.Fatalf("%d results for %d recipients", len(res), len(env.Recipients))
	}
	return res
}

func classes(res []relay.Result) []relay.Class {
	var out []relay.Class
	for _, r := range res {
		out = append(out, r.Class)
	}
	return out
}

const (
	// A message with everything that needs care on the wire.
	trickyStored = "Subject: dots\n\n.leading dot\n..two\n.\nplain\n"
	trickyWire   = "Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nplain\r\n"
)

func longLineMessage() (stored, wire string) {
	long := strings.Repeat("L", 1500)
	stored = "Subject: long\n\n" + long + "\n.x\n"
	wire = "Subject: long\r\n\r\n" + long[:998] + "\r\n " + long[998:] + "\r\n.x\r\n"
	return
}

// The server receives exactly the CRLF text, with DATA (dot-stuffed on the
// wire, unstuffed by go-smtp) and with BDAT.
func TestServerMessageIntegrity(t *testing.T) {
	longStored, longWire := longLineMessage()
	for _, hide := range [][]string{nil, {"CHUNKING"}, {"CHUNKING", "PIPELINING"}} {
		t.Run(fmt.Sprint(hide), func(t *testing.T) {
			s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{HideExtensions: hide})
			c, err := smtp.Dial(context.Background(), options(s))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, h := range hide {
				if _, ok := c.Info().Extensions[h]; ok {
					t.Fatalf("%s still offered", h)
				}
			}
			for _, m := range []string{trickyStored, longStored} {
				res, err := c.Send(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"a@x"}}, message(m))
				if err != nil || res[0].Class != relay.Delivered {
					t.Fatalf("%+v, %v", res, err)
				}
			}
			c.Quit()
			msgs, err := s.WaitMessages(2, wait)
			if err != nil {
				t.Fatal(err)
			}
			if string(msgs[0].Data) != trickyWire || string(msgs[1].Data) != longWire {
				t.Errorf("server got %q and %q", msgs[0].Data, msgs[1].Data)
			}
			if msgs[0].Conn != 1 || msgs[1].Conn != 1 || msgs[0].Helo != "client.example" {
				t.Errorf("messages %+v", msgs)
			}
		})
	}
}

func TestServerSTARTTLSAuthPlain(t *testing.T) {
	serverTLS, roots := relaytest.NewTLSConfig(t)
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{TLSConfig: serverTLS, AuthUser: "user", AuthPassword: "secret"})
	opts := options(s)
	opts.TLS = smtp.TLSStartTLS
	opts.ServerName = "localhost"
	opts.TLSConfig = &tls.Config{RootCAs: roots}
	calls := 0
	opts.Auth = &smtp.Auth{User: "user", Password: func() (string, error) { calls++; return "secret", nil }}
	var tr strings.Builder
	opts.Transcript = &tr

	c, err := smtp.Dial(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	info := c.Info()
	if info.TLS == nil || info.TLS.Version < tls.VersionTLS12 || !info.AuthOK || info.AuthMechanism != "PLAIN" || calls != 1 {
		t.Errorf("info %+v, password read %d times", info, calls)
	}
	if _, ok := info.Extensions["STARTTLS"]; ok {
		t.Error("extensions from before TLS kept")
	}
	res, err := c.Send(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"r@x"}}, message(trickyStored))
	if err != nil || res[0].Class != relay.Delivered {
		t.Fatalf("%+v, %v", res, err)
	}
	c.Quit()
	m, err := s.WaitMessages(1, wait)
	if err != nil {
		t.Fatal(err)
	}
	if !m[0].TLS || m[0].Auth != "user" || m[0].Helo != "client.example" || string(m[0].Data) != trickyWire {
		t.Errorf("recorded %+v", m[0])
	}
	if strings.Contains(tr.String(), "secret") || !strings.Contains(tr.String(), "> AUTH PLAIN [redacted]") ||
		!strings.Contains(tr.String(), "* TLS 1.3, ") {
		t.Errorf("transcript:\n%s", tr.String())
	}
}

func TestServerImplicitTLS(t *testing.T) {
	serverTLS, roots := relaytest.NewTLSConfig(t)
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{TLSConfig: serverTLS, ImplicitTLS: true, Unix: true})
	opts := options(s)
	opts.TLS = smtp.TLSImplicit
	opts.ServerName = "localhost" // a unix socket has no host name
	opts.TLSConfig = &tls.Config{RootCAs: roots}
	res := relayOne(t, opts, &relay.Envelope{Sender: "s@x", Recipients: []string{"r@x"}}, message(trickyStored))
	if res[0].Class != relay.Delivered || res[0].Host != "smtps:"+s.Addr() {
		t.Errorf("result %+v", res[0])
	}
	if m, err := s.WaitMessages(1, wait); err != nil || !m[0].TLS {
		t.Errorf("recorded %+v, %v", m, err)
	}
}

func TestServerAuthMechanisms(t *testing.T) {
	serverTLS, roots := relaytest.NewTLSConfig(t)
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
		TLSConfig: serverTLS, AuthUser: "user", AuthPassword: "s3cret",
		AuthMechanisms: []string{"LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2"},
	})
	for _, mech := range []string{"", "plain", "login", "cram-md5", "xoauth2"} {
		t.Run(mech, func(t *testing.T) {
			opts := options(s)
			opts.TLS = smtp.TLSStartTLS
			opts.ServerName = "localhost"
			opts.TLSConfig = &tls.Config{RootCAs: roots}
			opts.Auth = &smtp.Auth{User: "user", Password: func() (string, error) { return "s3cret", nil }, Mechanism: mech}
			c, err := smtp.Dial(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ToUpper(mech)
			if mech == "" {
				want = "CRAM-MD5"
			}
			if info := c.Info(); !info.AuthOK || info.AuthMechanism != want {
				t.Errorf("info %+v", info)
			}
			res, err := c.Send(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"r@x"}}, message("x\n"))
			if err != nil || res[0].Class != relay.Delivered {
				t.Errorf("%+v, %v", res, err)
			}
			c.Quit()

			// The wrong secret: 535, permanent, and the Relayer fails
			// every recipient with the explanation.
			opts.Auth.Password = func() (string, error) { return "wrong", nil }
			r := &smtp.Relayer{Options: opts}
			res, err = r.Relay(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"r@x", "q@x"}}, message("x\n"))
			var re *smtp.ReplyError
			if err == nil || !relay.IsPermanent(err) || !errors.As(err, &re) || re.Code != 535 {
				t.Fatalf("err = %v", err)
			}
			for _, r := range res {
				if r.Class != relay.Failed || r.Scope != relay.MessageScope || r.Code != 535 || !strings.Contains(r.Text, `rejected user "user"'s`) {
					t.Errorf("result %+v", r)
				}
			}
		})
	}
}

func TestServerDSNAndSMTPUTF8(t *testing.T) {
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{})
	env := &relay.Envelope{
		Sender:     "sender@example.com",
		Recipients: []string{"r+tag@example.org", "jøran@example.org"},
		DSN:        relay.DSN{Notify: []string{"FAILURE", "DELAY"}, Ret: "HDRS", EnvID: "env+1 id=2"},
	}
	msg := message("Subject: caf\xc3\xa9\n\nna\xc3\xafve\n")
	res := relayOne(t, options(s), env, msg)
	if res[0].Class != relay.Delivered || res[1].Class != relay.Delivered {
		t.Fatalf("results %+v", res)
	}
	m, err := s.WaitMessages(1, wait)
	if err != nil {
		t.Fatal(err)
	}
	mo := m[0].MailOpts
	if mo.Return != gosmtp.DSNReturnHeaders || mo.EnvelopeID != "env+1 id=2" || !mo.UTF8 || mo.Body != gosmtp.Body8BitMIME ||
		mo.Size != int64(len("Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n")) {
		t.Errorf("MAIL options %+v", mo)
	}
	r0 := m[0].Rcpts[0].Opts
	if !reflect.DeepEqual(r0.Notify, []gosmtp.DSNNotify{gosmtp.DSNNotifyFailure, gosmtp.DSNNotifyDelayed}) ||
		r0.OriginalRecipientType != gosmtp.DSNAddressTypeRFC822 || r0.OriginalRecipient != "r+tag@example.org" {
		t.Errorf("RCPT options %+v", r0)
	}
	if m[0].Rcpts[1].To != "jøran@example.org" || m[0].Rcpts[1].Opts.OriginalRecipient != "" {
		t.Errorf("RCPT %+v", m[0].Rcpts[1])
	}
}

func TestServerPartialRcptFailures(t *testing.T) {
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
		RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
			switch m.Rcpts[i].To {
			case "bad@x":
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			case "later@x":
				return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
			}
			return nil
		},
	})
	env := &relay.Envelope{Sender: "s@x", Recipients: []string{"a@x", "bad@x", "later@x", "a@x"}}
	res := relayOne(t, options(s), env, message("x\n"))
	want := []relay.Class{relay.Delivered, relay.Failed, relay.Deferred, relay.Delivered}
	if !reflect.DeepEqual(classes(res), want) {
		t.Fatalf("results %+v", res)
	}
	if res[1].Code != 550 || res[1].Enhanced != "5.1.1" || res[1].Text != "no such user" || res[1].Scope != relay.RecipientScope {
		t.Errorf("result %+v", res[1])
	}
	if m, err := s.WaitMessages(1, wait); err != nil || !reflect.DeepEqual(m[0].Accepted(), []string{"a@x", "a@x"}) {
		t.Errorf("recorded %+v, %v", m, err)
	}
}

// LMTP over a unix socket: per-recipient replies after the message, in
// order, duplicates included, with and without BDAT.
func TestServerLMTPPartialFailures(t *testing.T) {
	for _, hide := range [][]string{nil, {"CHUNKING"}} {
		t.Run(fmt.Sprint(hide), func(t *testing.T) {
			s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
				LMTP: true, Unix: true, HideExtensions: hide,
				RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
					if m.Rcpts[i].To == "nobody@x" {
						return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
					}
					return nil
				},
				LMTPError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
					switch {
					case m.Rcpts[i].To == "full@x":
						return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
					case m.Rcpts[i].To == "dup@x" && i == 1:
						return &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 2, 2}, Message: "over quota"}
					}
					return nil
				},
			})
			opts := options(s)
			opts.LMTP = true
			env := &relay.Envelope{Sender: "s@x", Recipients: []string{"dup@x", "dup@x", "nobody@x", "full@x", "ok@x"}}
			res := relayOne(t, opts, env, message(trickyStored))
			want := []relay.Class{relay.Delivered, relay.Failed, relay.Failed, relay.Deferred, relay.Delivered}
			if !reflect.DeepEqual(classes(res), want) {
				t.Fatalf("results %+v", res)
			}
			if res[1].Code != 552 || res[1].Scope != relay.RecipientScope || res[3].Code != 452 || res[2].Code != 550 {
				t.Errorf("results %+v", res)
			}
			if m, err := s.WaitMessages(1, wait); err != nil || string(m[0].Data) != trickyWire {
				t.Errorf("recorded %+v, %v", m, err)
			}
		})
	}
}

func TestServerConnectionDropped(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		t.Run(fmt.Sprint("lmtp=", lmtp), func(t *testing.T) {
			s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
				LMTP: lmtp,
				Drop: func(*relaytest.SMTPMessage) bool { return true },
				RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
					if m.Rcpts[i].To == "bad@x" {
						return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
					}
					return nil
				},
			})
			opts := options(s)
			opts.LMTP = lmtp
			r := &smtp.Relayer{Options: opts}
			res, err := r.Relay(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"a@x", "bad@x", "b@x"}}, message("x\n"))
			if err == nil || relay.IsPermanent(err) || !strings.Contains(err.Error(), "closed the connection") {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(classes(res), []relay.Class{relay.Deferred, relay.Failed, relay.Deferred}) {
				t.Errorf("results %+v", res)
			}
		})
	}
}

// The server's recipient limit (452 4.5.3) splits the message into several
// transactions on one connection.
func TestServerRecipientLimit(t *testing.T) {
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{MaxRecipients: 2})
	var rcpts []string
	for i := range 5 {
		rcpts = append(rcpts, fmt.Sprintf("r%d@x", i))
	}
	res := relayOne(t, options(s), &relay.Envelope{Sender: "s@x", Recipients: rcpts}, message("x\n"))
	for _, r := range res {
		if r.Class != relay.Delivered {
			t.Errorf("result %+v", r)
		}
	}
	m, err := s.WaitMessages(3, wait)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mm := range m {
		got = append(got, mm.Accepted()...)
		if mm.Conn != 1 {
			t.Errorf("message on connection %d", mm.Conn)
		}
	}
	if !reflect.DeepEqual(got, rcpts) || len(m) != 3 {
		t.Errorf("recorded %d messages for %v", len(m), got)
	}
}

func TestServerSizeLimit(t *testing.T) {
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{MaxMessageBytes: 10})
	res := relayOne(t, options(s), &relay.Envelope{Sender: "s@x", Recipients: []string{"a@x"}}, message("0123456789\n"))
	if res[0].Class != relay.Failed || res[0].Enhanced != "5.3.4" || res[0].Scope != relay.MessageScope {
		t.Errorf("result %+v", res[0])
	}
	if len(s.Messages()) != 0 {
		t.Error("message sent")
	}
}

func TestServerVerify(t *testing.T) {
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
		RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
			if m.Rcpts[i].To == "bad@x" {
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
			}
			return nil
		},
	})
	c, err := smtp.Dial(context.Background(), options(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Verify(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"ok@x", "bad@x"}})
	if err != nil || !reflect.DeepEqual(classes(res), []relay.Class{relay.Delivered, relay.Failed}) {
		t.Fatalf("%+v, %v", res, err)
	}
	if len(s.Messages()) != 0 {
		t.Error("Verify sent a message")
	}
}

func TestRelayerConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &smtp.Relayer{Options: smtp.Options{Address: addr, TLS: smtp.TLSNone, Hostname: "c.example"}}
	if r.String() != "smtp://"+addr {
		t.Errorf("String() = %q", r.String())
	}
	res, err := r.Relay(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"a@x", "b@x"}}, message("x\n"))
	if err == nil || relay.IsPermanent(err) || !strings.Contains(err.Error(), "smtp: cannot connect to "+addr) {
		t.Fatalf("err = %v", err)
	}
	for _, r := range res {
		if r.Class != relay.Deferred || !strings.Contains(r.Text, "cannot connect") || r.Host != "smtp://"+addr {
			t.Errorf("result %+v", r)
		}
	}
}

// tlsCase dials a STARTTLS server presenting serverTLS with the client
// configuration client, and returns the error of Dial.
func tlsDial(t *testing.T, serverTLS *tls.Config, client *tls.Config, serverName string) error {
	t.Helper()
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{TLSConfig: serverTLS})
	opts := options(s)
	opts.TLS = smtp.TLSStartTLS
	opts.ServerName = serverName
	opts.TLSConfig = client
	c, err := smtp.Dial(context.Background(), opts)
	if err == nil {
		c.Quit()
	}
	return err
}

func fingerprint(cfg *tls.Config) string {
	sum := sha256.Sum256(cfg.Certificates[0].Leaf.Raw)
	return fmt.Sprintf("%x", sum[:])
}

func TestServerCertificates(t *testing.T) {
	ca := relaytest.NewTestCA(t, "Relaytest CA")
	other := relaytest.NewTestCA(t, "Other CA")
	now := time.Now()
	good := ca.ServerConfig(t, relaytest.CertOptions{DNSNames: []string{"mail.example.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	selfSigned, _ := relaytest.NewTLSConfig(t)

	for _, tc := range []struct {
		name       string
		server     *tls.Config
		client     *tls.Config
		serverName string
		want       []string // in the error; nil: success
	}{
		{"valid", good, &tls.Config{RootCAs: ca.Pool}, "mail.example.test", nil},
		{"expired", ca.ServerConfig(t, relaytest.CertOptions{NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}),
			&tls.Config{RootCAs: ca.Pool}, "localhost",
			[]string{`the TLS certificate "localhost" of localhost expired on ` + now.Add(-24*time.Hour).UTC().Format("2006-01-02"), "renew", "verify=no"}},
		{"not yet valid", ca.ServerConfig(t, relaytest.CertOptions{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(72 * time.Hour)}),
			&tls.Config{RootCAs: ca.Pool}, "localhost", []string{"is not valid yet", "clock"}},
		{"wrong host", good, &tls.Config{RootCAs: ca.Pool}, "smtp.example.test",
			[]string{`is for mail.example.test, 127.0.0.1, not for "smtp.example.test"`, "check the host name"}},
		{"unknown CA", good, &tls.Config{RootCAs: other.Pool}, "mail.example.test",
			[]string{`signed by an unknown authority (issuer "CN=Relaytest CA,O=relaytest")`, "tls_ca_file", "verify=no"}},
		{"self-signed", selfSigned, &tls.Config{RootCAs: other.Pool}, "localhost",
			[]string{`is self-signed ("CN=relaytest")`, "tls_ca_file", "tls_fingerprint"}},
		{"pin matches", selfSigned, &tls.Config{InsecureSkipVerify: true, VerifyConnection: smtp.PinVerifier(fingerprint(selfSigned))}, "localhost", nil},
		{"pin on top of verification", good, &tls.Config{RootCAs: ca.Pool, VerifyConnection: smtp.PinVerifier(fingerprint(good))}, "mail.example.test", nil},
		{"pin mismatch", selfSigned, &tls.Config{InsecureSkipVerify: true, VerifyConnection: smtp.PinVerifier(fingerprint(good))}, "localhost",
			[]string{"has SHA-256 fingerprint", "but tls_fingerprint is", "update tls_fingerprint"}},
		{"invalid pin", selfSigned, &tls.Config{InsecureSkipVerify: true, VerifyConnection: smtp.PinVerifier("abc")}, "localhost",
			[]string{`tls_fingerprint "abc" is not a SHA-256 fingerprint`}},
		{"old TLS only", func() *tls.Config {
			c := good.Clone()
			c.MinVersion = tls.VersionTLS10
			c.MaxVersion = tls.VersionTLS11
			return c
		}(),
			&tls.Config{RootCAs: ca.Pool}, "mail.example.test", []string{"aborted the TLS handshake", "older than 1.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tlsDial(t, tc.server, tc.client, tc.serverName)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			if relay.IsPermanent(err) {
				t.Errorf("TLS failure is permanent: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "smtp: ") {
				t.Errorf("error %q", err)
			}
			t.Log(err)
		})
	}
}

// smtps:// to a server that speaks plain text.
func TestServerNotTLS(t *testing.T) {
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{})
	opts := options(s)
	opts.TLS = smtp.TLSImplicit
	opts.ServerName = "localhost"
	opts.Timeouts.Connect = 5 * time.Second
	_, err := smtp.Dial(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "did not answer with TLS") {
		t.Fatalf("err = %v", err)
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	want := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	for _, in := range []string{hex, strings.ToUpper(hex), want, "sha256:" + hex, "SHA256 Fingerprint=" + want, " " + hex + " "} {
		if got, err := smtp.NormalizeFingerprint(in); err != nil || got != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "ab", hex + "ab", strings.Repeat("zz", 32)} {
		var pe *smtp.PinError
		if _, err := smtp.NormalizeFingerprint(in); !errors.As(err, &pe) || !pe.Invalid {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// A session carries several messages over one connection, for queue runs.
func TestRelayerSession(t *testing.T) {
	srv := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{})
	r := &smtp.Relayer{Options: smtp.Options{Address: srv.Addr(), TLS: smtp.TLSNone, Hostname: "client.example"}}
	sess, err := r.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msg := &relay.Message{Data: strings.NewReader("Subject: x\n\nbody\n"), Size: 17}
	for i := 0; i < 3; i++ {
		res, err := sess.Send(context.Background(), &relay.Envelope{Sender: "a@x", Recipients: []string{"b@x"}}, msg)
		if err != nil || res[0].Class != relay.Delivered {
			t.Fatalf("message %d: %+v %v", i, res, err)
		}
	}
	sess.Close()
	if n := len(srv.Messages()); n != 3 || srv.Conns() != 1 {
		t.Errorf("%d messages over %d connections, want 3 over 1", n, srv.Conns())
	}
}
