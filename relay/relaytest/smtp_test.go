package relaytest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func send(t *testing.T, c *smtp.Client, body string) error {
	t.Helper()
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	io.WriteString(w, body)
	return w.Close()
}

func TestSMTPServerRecords(t *testing.T) {
	s := NewSMTPServer(t, SMTPOptions{
		RcptError: func(m *SMTPMessage, i int) *smtp.SMTPError {
			if m.Rcpts[i].To == "bad@example.org" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
	})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"DSN", "SMTPUTF8", "PIPELINING"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not offered", ext)
		}
	}
	if err := c.Mail("me@example.com", &smtp.MailOptions{Return: smtp.DSNReturnHeaders, EnvelopeID: "env-1", Body: smtp.Body8BitMIME}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("you@example.org", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed}}); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("bad@example.org", nil); !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("RCPT bad = %v, want 550", err)
	}
	body := "Subject: hi\r\n\r\n.leading dot\r\nend\r\n"
	if err := send(t, c, body); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.Conn != 1 || m.Helo != "client.example" || m.TLS || m.From != "me@example.com" {
		t.Errorf("message %+v", m)
	}
	if m.MailOpts.Return != smtp.DSNReturnHeaders || m.MailOpts.EnvelopeID != "env-1" || m.MailOpts.Body != smtp.Body8BitMIME {
		t.Errorf("MAIL options %+v", m.MailOpts)
	}
	if len(m.Rcpts) != 2 || m.Rcpts[0].Err != nil || m.Rcpts[1].Err == nil || m.Rcpts[1].Err.Code != 550 {
		t.Fatalf("recipients %+v", m.Rcpts)
	}
	if n := m.Rcpts[0].Opts.Notify; len(n) != 2 || n[0] != smtp.DSNNotifyFailure || n[1] != smtp.DSNNotifyDelayed {
		t.Errorf("NOTIFY %v", n)
	}
	if got := m.Accepted(); len(got) != 1 || got[0] != "you@example.org" {
		t.Errorf("Accepted() = %v", got)
	}
	// Dot-unstuffed, CRLF kept.
	if string(m.Data) != body {
		t.Errorf("data %q, want %q", m.Data, body)
	}
}

func TestSMTPServerMailAndDataErrors(t *testing.T) {
	s := NewSMTPServer(t, SMTPOptions{
		MailError: func(from string, _ *smtp.MailOptions) *smtp.SMTPError {
			if from == "spammer@x" {
				return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "go away"}
			}
			return nil
		},
		DataError: func(m *SMTPMessage) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "disk full"}
		},
	})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var se *smtp.SMTPError
	if err := c.Mail("spammer@x", nil); !errors.As(err, &se) || se.Code != 553 {
		t.Fatalf("MAIL = %v, want 553", err)
	}
	if err := c.Mail("ok@x", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("a@x", nil); err != nil {
		t.Fatal(err)
	}
	if err := send(t, c, "x\r\n"); !errors.As(err, &se) || se.Code != 452 {
		t.Fatalf("DATA = %v, want 452", err)
	}
	if m := s.Messages(); len(m) != 1 || m[0].DataErr == nil || m[0].From != "ok@x" {
		t.Errorf("recorded %+v", m)
	}
}

// LMTP over a unix socket: one reply per accepted recipient after DATA.
func TestLMTPServerPerRecipient(t *testing.T) {
	s := NewSMTPServer(t, SMTPOptions{
		LMTP: true,
		Unix: true,
		LMTPError: func(m *SMTPMessage, i int) *smtp.SMTPError {
			if m.Rcpts[i].To == "full@x" {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
			}
			return nil
		},
	})
	if s.Network() != "unix" {
		t.Fatalf("network %q", s.Network())
	}
	conn, err := net.Dial("unix", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("client"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("s@x", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"ok@x", "full@x"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	err = send(t, c, "Subject: l\r\n\r\nbody\r\n")
	var le smtp.LMTPDataError
	if !errors.As(err, &le) || len(le) != 1 || le["full@x"] == nil || le["full@x"].Code != 452 {
		t.Fatalf("LMTP DATA = %v, want 452 for full@x only", err)
	}
	m := s.Messages()
	if len(m) != 1 || m[0].Rcpts[0].DataErr != nil || m[0].Rcpts[1].DataErr == nil {
		t.Errorf("recorded %+v", m)
	}
}

// A duplicated recipient gets its own LMTP reply, in RCPT order; go-smtp's
// client reports replies by address, so this talks LMTP by hand.
func TestLMTPServerDuplicateRecipients(t *testing.T) {
	s := NewSMTPServer(t, SMTPOptions{
		LMTP: true,
		LMTPError: func(m *SMTPMessage, i int) *smtp.SMTPError {
			if i == 0 {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "first copy refused"}
			}
			return nil
		},
	})
	tc, err := textproto.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	expect := func(code int) string {
		t.Helper()
		_, msg, err := tc.ReadResponse(code)
		if err != nil {
			t.Fatalf("want %d: %v", code, err)
		}
		return msg
	}
	expect(220)
	for _, step := range []struct {
		cmd  string
		code int
	}{{"LHLO client", 250}, {"MAIL FROM:<s@x>", 250}, {"RCPT TO:<d@x>", 250}, {"RCPT TO:<d@x>", 250}, {"DATA", 354}} {
		tc.PrintfLine("%s", step.cmd)
		expect(step.code)
	}
	tc.PrintfLine("Subject: d\r\n\r\nbody\r\n.")
	if _, msg, err := tc.ReadResponse(550); err != nil || !strings.Contains(msg, "first copy refused") {
		t.Errorf("first reply: %v %q", err, msg)
	}
	expect(250)
}

func TestSMTPServerStartTLSAndAuth(t *testing.T) {
	serverTLS, roots := NewTLSConfig(t)
	s := NewSMTPServer(t, SMTPOptions{TLSConfig: serverTLS, AuthUser: "user", AuthPassword: "secret"})
	c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var se *smtp.SMTPError
	if err := c.Mail("s@x", nil); !errors.As(err, &se) || se.Code != 530 {
		t.Fatalf("MAIL before AUTH = %v, want 530", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "user", "wrong")); err == nil {
		t.Fatal("AUTH with a wrong password succeeded")
	}
	if err := c.Auth(sasl.NewPlainClient("", "user", "secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("s@x", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("r@x", nil); err != nil {
		t.Fatal(err)
	}
	if err := send(t, c, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages(); len(m) != 1 || !m[0].TLS || m[0].Auth != "user" {
		t.Errorf("recorded %+v", m)
	}
}

func TestSMTPServerImplicitTLS(t *testing.T) {
	serverTLS, roots := NewTLSConfig(t)
	s := NewSMTPServer(t, SMTPOptions{TLSConfig: serverTLS, ImplicitTLS: true})
	c, err := smtp.DialTLS(s.Addr(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("s@x", []string{"r@x"}, strings.NewReader("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.WaitMessages(1, wait); err != nil || !m[0].TLS {
		t.Errorf("recorded %+v, %v", m, err)
	}
}

func TestSMTPServerAuthMechanisms(t *testing.T) {
	serverTLS, roots := NewTLSConfig(t)
	s := NewSMTPServer(t, SMTPOptions{TLSConfig: serverTLS, AuthUser: "user", AuthPassword: "secret",
		AuthMechanisms: []string{"LOGIN", "CRAM-MD5", "XOAUTH2"}})
	dial := func() *smtp.Client {
		t.Helper()
		c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	if ok, params := dial().Extension("AUTH"); !ok || params != "LOGIN CRAM-MD5 XOAUTH2" {
		t.Errorf("AUTH %q", params)
	}
	if err := dial().Auth(sasl.NewPlainClient("", "user", "secret")); err == nil {
		t.Error("PLAIN accepted although not offered")
	}
	if err := dial().Auth(sasl.NewLoginClient("user", "wrong")); err == nil {
		t.Error("LOGIN with a wrong password accepted")
	}
	if err := dial().Auth(sasl.NewLoginClient("user", "secret")); err != nil {
		t.Errorf("LOGIN: %v", err)
	}
	if err := dial().Auth(&cramClient{user: "user", pass: "secret"}); err != nil {
		t.Errorf("CRAM-MD5: %v", err)
	}
	if err := dial().Auth(&cramClient{user: "user", pass: "wrong"}); err == nil {
		t.Error("CRAM-MD5 with a wrong password accepted")
	}
	if err := dial().Auth(&xoauth2Client{user: "user", token: "secret"}); err != nil {
		t.Errorf("XOAUTH2: %v", err)
	}
	var se *smtp.SMTPError
	if err := dial().Auth(&xoauth2Client{user: "user", token: "bad"}); !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("XOAUTH2 with a bad token: %v", err)
	}
}

type cramClient struct{ user, pass string }

func (c *cramClient) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }
func (c *cramClient) Next(ch []byte) ([]byte, error) {
	m := hmac.New(md5.New, []byte(c.pass))
	m.Write(ch)
	return []byte(c.user + " " + hex.EncodeToString(m.Sum(nil))), nil
}

type xoauth2Client struct{ user, token string }

func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}
func (x *xoauth2Client) Next(ch []byte) ([]byte, error) {
	if !strings.Contains(string(ch), `"status":"401"`) {
		return nil, fmt.Errorf("challenge %q", ch)
	}
	return []byte{}, nil
}

func TestSMTPServerHideExtensionsAndLimits(t *testing.T) {
	s := NewSMTPServer(t, SMTPOptions{HideExtensions: []string{"chunking", "PIPELINING"}, MaxRecipients: 1})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client"); err != nil {
		t.Fatal(err)
	}
	for ext, want := range map[string]bool{"CHUNKING": false, "PIPELINING": false, "8BITMIME": true, "SIZE": true} {
		if ok, _ := c.Extension(ext); ok != want {
			t.Errorf("%s offered: %v", ext, ok)
		}
	}
	if err := c.Mail("s@x", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("a@x", nil); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("b@x", nil); !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 5, 3}) {
		t.Errorf("second RCPT = %v, want 452 4.5.3", err)
	}
}

func TestSMTPServerDrop(t *testing.T) {
	s := NewSMTPServer(t, SMTPOptions{Drop: func(m *SMTPMessage) bool { return string(m.Data) == "drop\r\n" }})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, body := range []string{"keep\r\n", "drop\r\n"} {
		if err := c.Mail("s@x", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("a@x", nil); err != nil {
			t.Fatal(err)
		}
		err := send(t, c, body)
		if (body == "drop\r\n") != (err != nil) {
			t.Errorf("%q: %v", body, err)
		}
	}
	if m := s.Messages(); len(m) != 1 || string(m[0].Data) != "keep\r\n" {
		t.Errorf("recorded %+v", m)
	}
}

func TestTestCA(t *testing.T) {
	ca := NewTestCA(t, "Test CA")
	now := time.Now()
	cfg := ca.ServerConfig(t, CertOptions{DNSNames: []string{"mail.example.test"}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	leaf := cfg.Certificates[0].Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "mail.example.test"}); err != nil {
		t.Error(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: NewTestCA(t, "Other").Pool, DNSName: "mail.example.test"}); err == nil {
		t.Error("verified against another CA")
	}
	expired := ca.ServerConfig(t, CertOptions{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}).Certificates[0].Leaf
	if _, err := expired.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "localhost"}); err == nil {
		t.Error("expired certificate verified")
	}
	if leaf.SerialNumber.Cmp(expired.SerialNumber) == 0 {
		t.Error("serial numbers repeat")
	}
}
