package e2e

// Real-server end-to-end tests: what real Dovecot LMTP, a real Postfix and
// Postfix's smtp-sink receive. The servers come from e2e/realserver
// (installed by scripts/e2e-deps.sh, part of `make deps`).
//
// TestReal*Harness* check the harness itself with independent clients (a
// hand-written LMTP exchange, and go-smtp's client), so that a failure of
// the sendmail-driven TestRealSendmail* tests points at relaymail, not at
// the test setup. The sendmail-driven tests skip while bin/sendmail refuses
// smtp/lmtp smarthosts ("not available in this release").

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/e2e/realserver"
)

// realMessage is a complete message (so intake adds no field) with the
// things a relay can get wrong: CRLF input, a lone dot and dot-led lines
// (SMTP dot-stuffing, kept with -i), 8-bit UTF-8 text, a folded field.
const realMessage = "From: Alice <alice@example.com>\r\n" +
	"To: user1@example.com\r\n" +
	"Subject: real server test,\r\n" +
	"  folded\r\n" +
	"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
	"Message-ID: <real-1@example.com>\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Grüße aus Köln, café\r\n" +
	".\r\n" +
	"..two dots\r\n" +
	".one dot\r\n" +
	"last line\r\n"

func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// --- an independent, hand-written LMTP/SMTP exchange -------------------------

type reply struct {
	code int
	text string // all lines, joined with "\n"
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, r.text) }

type dialog struct {
	t *testing.T
	c *textproto.Conn
}

func dial(t *testing.T, network, addr string) *dialog {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &dialog{t: t, c: textproto.NewConn(nc)}
	t.Cleanup(func() { d.c.Close() })
	if r := d.read(); r.code != 220 {
		t.Fatalf("greeting %v", r)
	}
	return d
}

func (d *dialog) read() reply {
	d.t.Helper()
	code, text, err := d.c.ReadResponse(0) // 0: any code is an answer
	if err != nil {
		d.t.Fatalf("reading a reply: %v", err)
	}
	return reply{code, text}
}

func (d *dialog) cmd(format string, args ...any) reply {
	d.t.Helper()
	if err := d.c.PrintfLine(format, args...); err != nil {
		d.t.Fatal(err)
	}
	return d.read()
}

// data sends msg (CRLF lines) with dot-stuffing, and returns the n replies
// that follow the final dot: one for SMTP, one per accepted recipient for
// LMTP (RFC 2033 §4.2).
func (d *dialog) data(msg string, n int) []reply {
	d.t.Helper()
	if r := d.cmd("DATA"); r.code != 354 {
		d.t.Fatalf("DATA: %v", r)
	}
	w := d.c.DotWriter()
	if _, err := w.Write([]byte(lf(msg))); err != nil { // DotWriter turns \n into \r\n
		d.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		d.t.Fatal(err)
	}
	var rs []reply
	for range n {
		rs = append(rs, d.read())
	}
	return rs
}

// --- harness self-tests --------------------------------------------------------

func TestRealHarnessDovecotLMTP(t *testing.T) {
	dc := realserver.StartDovecot(t)
	for _, c := range []struct{ network, addr string }{{"tcp", dc.LMTPAddr}, {"unix", dc.LMTPSocket}} {
		t.Run(c.network, func(t *testing.T) {
			before := len(dc.Maildir(realserver.User1))
			d := dial(t, c.network, c.addr)
			if r := d.cmd("LHLO host.example.com"); r.code != 250 {
				t.Fatalf("LHLO: %v", r)
			}
			if r := d.cmd("MAIL FROM:<sender@example.org>"); r.code != 250 {
				t.Fatalf("MAIL: %v", r)
			}
			for _, u := range []string{realserver.User1, realserver.QuotaUser, realserver.TempfailUser} {
				if r := d.cmd("RCPT TO:<%s>", realserver.Address(u)); r.code != 250 {
					t.Fatalf("RCPT %s: %v", u, r)
				}
			}
			if r := d.cmd("RCPT TO:<nobody@example.com>"); r.code != 550 || !strings.HasPrefix(r.text, "5.1.1") {
				t.Errorf("RCPT of an unknown user: %v, want 550 5.1.1", r)
			}
			rs := d.data(realMessage, 3)
			want := []struct {
				code int
				enh  string
			}{{250, "2.0.0"}, {552, "5.2.2"}, {452, "4.2.2"}}
			for i, w := range want {
				if rs[i].code != w.code || !strings.HasPrefix(rs[i].text, w.enh) {
					t.Errorf("reply %d after DATA: %v, want %d %s", i+1, rs[i], w.code, w.enh)
				}
			}
			d.cmd("QUIT")
			checkOneCopy(t, dc, before, "sender@example.org")
		})
	}
}

func send(c *smtp.Client, from string, to []string, msg string, opts *smtp.MailOptions) error {
	if err := c.Mail(from, opts); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return fmt.Errorf("RCPT %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	return nil
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestRealHarnessPostfixSTARTTLS(t *testing.T) {
	pf := realserver.StartPostfix(t, realserver.PostfixOptions{})
	c, err := smtp.DialStartTLS(pf.SMTPAddr, &tls.Config{RootCAs: pf.Roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("STARTTLS verified against the harness CA: %v", err)
	}
	defer c.Close()
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "SIZE"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("postfix does not announce %s", ext)
		}
	}
	// After the EHLO above: the handshake is done on the first use.
	if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete || len(st.VerifiedChains) == 0 {
		t.Fatalf("no verified TLS: %+v", st)
	}
	to := []string{"a@example.org", "b@example.net"}
	if err := send(c, "alice@example.com", to, realMessage, &smtp.MailOptions{Body: smtp.Body8BitMIME}); err != nil {
		t.Fatal(err)
	}
	if err := send(c, "", []string{"bounce@example.org"}, "Subject: null sender\r\n\r\nx\r\n", nil); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	ds := pf.Delivered()
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3: %+v", len(ds), ds)
	}
	got := map[string]realserver.Delivery{}
	for _, d := range ds {
		got[d.Recipient] = d
	}
	for _, r := range to {
		d, ok := got[r]
		if !ok {
			t.Errorf("nothing delivered to %s", r)
			continue
		}
		if d.Sender != "alice@example.com" {
			t.Errorf("%s: sender %q", r, d.Sender)
		}
		if string(d.Content()) != lf(realMessage) {
			t.Errorf("%s: recorded message differs:\n%q\nwant:\n%q", r, d.Content(), lf(realMessage))
		}
		if !strings.Contains(d.Received(), "with ESMTPS") || !strings.Contains(d.Received(), "by "+realserver.ServerName) {
			t.Errorf("%s: Received: %s", r, d.Received())
		}
	}
	if d := got["bounce@example.org"]; d.Sender != "" || string(d.Content()) != "Subject: null sender\n\nx\n" {
		t.Errorf("null sender delivery: %+v", d)
	}
	// A client that trusts another CA must fail the handshake.
	// (The handshake happens on the first command after STARTTLS.)
	untrusted, err := smtp.DialStartTLS(pf.SMTPAddr, &tls.Config{ServerName: "127.0.0.1"})
	if err == nil {
		defer untrusted.Close()
		err = untrusted.Noop()
	}
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Errorf("STARTTLS without the harness CA: %v, want an unknown authority error", err)
	}
}

func TestRealHarnessPostfixSASL(t *testing.T) {
	dc := realserver.StartDovecot(t)
	pf := realserver.StartPostfix(t, realserver.PostfixOptions{SASL: dc, RequireAuth: true})
	dialTLS := func() *smtp.Client {
		c, err := smtp.DialStartTLS(pf.SMTPAddr, &tls.Config{RootCAs: pf.Roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := dialTLS()
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") {
		t.Fatalf("AUTH not offered after STARTTLS: %q", mechs)
	}
	err := send(c, "alice@example.com", []string{"a@example.org"}, "Subject: x\r\n\r\nx\r\n", nil)
	if code := smtpCode(err); code/100 != 5 {
		t.Errorf("relaying without AUTH: %v, want a 5xx", err)
	}
	c = dialTLS()
	if err := c.Auth(sasl.NewPlainClient("", realserver.User1, realserver.Password)); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	if err := send(c, "alice@example.com", []string{"a@example.org"}, "Subject: authenticated\r\n\r\nx\r\n", nil); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if ds := pf.Delivered(); len(ds) != 1 || ds[0].Recipient != "a@example.org" {
		t.Errorf("deliveries: %+v", ds)
	}
	if !strings.Contains(pf.Log(), "sasl_username="+realserver.User1) {
		t.Errorf("maillog lacks sasl_username:\n%s", pf.Log())
	}
	// Last: after a failure, Dovecot delays this client's next attempts.
	c = dialTLS()
	if err := c.Auth(sasl.NewPlainClient("", realserver.User1, "wrong")); smtpCode(err) != 535 {
		t.Errorf("AUTH with a wrong password: %v, want 535", err)
	}
	// Plain text never offers AUTH (smtpd_tls_auth_only).
	plain, err := smtp.Dial(pf.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Hello("host.example.com"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := plain.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
}

func TestRealHarnessSMTPSink(t *testing.T) {
	const rcptReply = "550 5.1.1 <x@example.org>: no such user"
	cases := []struct {
		name      string
		opts      []realserver.SinkOption
		mail      int // code of MAIL (0: 250)
		rcpt      int // code of RCPT
		data      int // code after the final dot
		stored    int // messages the sink kept
		noPipe    bool
		rcptReply string
	}{
		{name: "accept", stored: 1},
		{name: "hard reject RCPT", opts: []realserver.SinkOption{realserver.HardReject("RCPT"), realserver.HardReply(rcptReply)}, rcpt: 550, noPipe: true, rcptReply: "no such user"},
		{name: "soft reject RCPT", opts: []realserver.SinkOption{realserver.SoftReject("RCPT")}, rcpt: 450, noPipe: true},
		{name: "hard reject MAIL", opts: []realserver.SinkOption{realserver.HardReject("MAIL")}, mail: 500, noPipe: true},
		// smtp-sink keeps the data it then rejects.
		{name: "hard reject data", opts: []realserver.SinkOption{realserver.HardReject(".")}, data: 500, noPipe: true, stored: 1},
		{name: "soft reject data", opts: []realserver.SinkOption{realserver.SoftReject("."), realserver.SoftReply("452 4.2.2 mailbox full")}, data: 452, noPipe: true, stored: 1},
		{name: "421 after DATA", opts: []realserver.SinkOption{realserver.Reply421After("DATA")}, data: 421},
		{name: "no pipelining", opts: []realserver.SinkOption{realserver.NoPipelining()}, noPipe: true, stored: 1},
		{name: "unix socket", opts: []realserver.SinkOption{realserver.OnUnixSocket()}, stored: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := realserver.StartSMTPSink(t, c.opts...)
			network, addr := "tcp", s.Addr
			if s.Socket != "" {
				network, addr = "unix", s.Socket
			}
			nc, err := net.Dial(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			cl := smtp.NewClient(nc)
			defer cl.Close()
			if err := cl.Hello("host.example.com"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := cl.Extension("PIPELINING"); ok == c.noPipe {
				t.Errorf("PIPELINING announced: %v", ok)
			}
			err = cl.Mail("alice@example.com", nil)
			if got := smtpCode(err); got != c.mail {
				t.Fatalf("MAIL: %v, want code %d", err, c.mail)
			}
			if c.mail != 0 {
				return
			}
			err = cl.Rcpt("x@example.org", nil)
			if got := smtpCode(err); got != c.rcpt || !strings.Contains(fmt.Sprint(err), c.rcptReply) {
				t.Fatalf("RCPT: %v, want code %d %q", err, c.rcpt, c.rcptReply)
			}
			if c.rcpt != 0 {
				return
			}
			w, err := cl.Data()
			if c.data == 421 {
				if smtpCode(err) != 421 {
					t.Fatalf("DATA: %v, want 421", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(realMessage))
			if got := smtpCode(w.Close()); got != c.data {
				t.Fatalf("end of data: code %d, want %d", got, c.data)
			}
			cl.Quit()
			msgs := s.Messages()
			if len(msgs) != c.stored {
				t.Fatalf("sink kept %d messages, want %d", len(msgs), c.stored)
			}
			if c.stored > 0 {
				m := msgs[0]
				// go-smtp adds BODY=8BITMIME when the server offers it.
				if !strings.HasPrefix(m.MailArgs, "<alice@example.com>") || strings.Join(m.RcptArgs, " ") != "<x@example.org>" || string(m.Data) != lf(realMessage) {
					t.Errorf("sink kept %+v", m)
				}
			}
		})
	}
}

// --- sendmail against the real servers -------------------------------------------

var clientProbe struct {
	sync.Mutex
	done map[string]string // scheme -> reason to skip ("" = available)
}

// needClient skips the test while bin/sendmail refuses smarthosts of this
// scheme with exit 78 "not available in this release" (asked once per
// scheme and test binary).
func needClient(t *testing.T, scheme string) {
	t.Helper()
	clientProbe.Lock()
	defer clientProbe.Unlock()
	if clientProbe.done == nil {
		clientProbe.done = map[string]string{}
	}
	reason, ok := clientProbe.done[scheme]
	if !ok {
		o := runSendmail(t, baseEnv(t, scheme+"://"+closedPort(t)), []string{"a@example.org"}, []byte(simple))
		if o.exit == 78 && strings.Contains(o.stderr, "not available in this release") {
			reason = fmt.Sprintf("bin/sendmail has no %s client yet (exit 78: %s)", scheme, strings.TrimSpace(o.stderr))
		}
		clientProbe.done[scheme] = reason
	}
	if reason != "" {
		t.Skip(reason)
	}
}

func stderrLine(stderr, rcpt string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "sendmail: "+rcpt+": ") {
			return l
		}
	}
	return ""
}

// checkOneCopy checks what Dovecot stored for realMessage sent to user1,
// the over-quota user and the tempfail user: exactly one new copy for
// user1 (it had before), with returnPath and the content byte for byte,
// and nothing for the other two.
func checkOneCopy(t *testing.T, dc *realserver.Dovecot, before int, returnPath string) {
	t.Helper()
	msgs := dc.Maildir(realserver.User1)
	if len(msgs) != before+1 {
		t.Fatalf("user1 has %d new messages, want exactly 1", len(msgs)-before)
	}
	m := msgs[len(msgs)-1]
	if m.ReturnPath != returnPath {
		t.Errorf("Return-Path %q, want %q", m.ReturnPath, returnPath)
	}
	if string(m.Content) != lf(realMessage) {
		t.Errorf("stored message differs:\n%s\nwant:\n%s", m.Content, lf(realMessage))
	}
	for _, u := range []string{realserver.QuotaUser, realserver.TempfailUser} {
		if n := len(dc.Maildir(u)); n != 0 {
			t.Errorf("%s has %d messages", u, n)
		}
	}
}

func TestRealSendmailLMTP(t *testing.T) {
	needClient(t, "lmtp")
	dc := realserver.StartDovecot(t)
	for _, c := range []struct{ name, url string }{
		{"tcp", "lmtp://" + dc.LMTPAddr},
		{"unix", "lmtp:" + dc.LMTPSocket},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(dc.Maildir(realserver.User1))
			user1, quota, tempfail := realserver.Address(realserver.User1), realserver.Address(realserver.QuotaUser), realserver.Address(realserver.TempfailUser)
			o := runSendmail(t, baseEnv(t, c.url), []string{"-i", user1, quota, tempfail}, []byte(realMessage))
			if o.exit != 67 {
				t.Errorf("exit %d, want 67 (EX_NOUSER); stderr:\n%s", o.exit, o.stderr)
			}
			checkOneCopy(t, dc, before, "alice@example.com")
			if l := stderrLine(o.stderr, user1); l != "" {
				t.Errorf("stderr mentions the delivered recipient: %s", l)
			}
			// Dovecot answered 552 5.2.2 and 452 4.2.2, with its own text.
			if l := stderrLine(o.stderr, quota); !strings.Contains(l, ": failed: 552 5.2.2 ") || !strings.Contains(l, "Quota exceeded") {
				t.Errorf("quota line %q, want failed with Dovecot's reply; stderr:\n%s", l, o.stderr)
			}
			if l := stderrLine(o.stderr, tempfail); !strings.Contains(l, ": deferred: 452 4.2.2 ") || !strings.Contains(l, "Quota exceeded") {
				t.Errorf("tempfail line %q, want deferred with Dovecot's reply; stderr:\n%s", l, o.stderr)
			}
		})
	}
}

func TestRealSendmailPostfix(t *testing.T) {
	needClient(t, "smtp")
	t.Run("STARTTLS", func(t *testing.T) {
		pf := realserver.StartPostfix(t, realserver.PostfixOptions{})
		env := mergeEnv(baseEnv(t, "smtp://"+pf.SMTPAddr), []string{"RELAYMAIL_TLS_CA_FILE=" + pf.CACert})
		o := runSendmail(t, env, []string{"-i", "a@example.org", "b@example.net"}, []byte(realMessage))
		if o.exit != 0 {
			t.Fatalf("exit %d; stderr:\n%s", o.exit, o.stderr)
		}
		ds := pf.Delivered()
		if len(ds) != 2 {
			t.Fatalf("%d deliveries, want 2", len(ds))
		}
		for _, d := range ds {
			if d.Sender != "alice@example.com" {
				t.Errorf("%s: sender %q", d.Recipient, d.Sender)
			}
			if !bytes.Equal(d.Content(), []byte(lf(realMessage))) {
				t.Errorf("%s: recorded message differs:\n%q\nwant:\n%q", d.Recipient, d.Content(), lf(realMessage))
			}
			if !strings.Contains(d.Received(), "with ESMTPS") {
				t.Errorf("%s: not over TLS: %s", d.Recipient, d.Received())
			}
		}
	})
	t.Run("certificate not trusted", func(t *testing.T) {
		pf := realserver.StartPostfix(t, realserver.PostfixOptions{})
		// With the queue off the failure shows in the exit status; with it
		// on, the message waits in the queue (tested elsewhere).
		env := mergeEnv(baseEnv(t, "smtp://"+pf.SMTPAddr), []string{"RELAYMAIL_QUEUE=off"})
		o := runSendmail(t, env, []string{"a@example.org"}, []byte(realMessage))
		if o.exit != 75 || !strings.Contains(o.stderr, "unknown authority") && !strings.Contains(o.stderr, "signed by") {
			t.Errorf("exit %d with an unverifiable certificate; stderr:\n%s", o.exit, o.stderr)
		}
		if ds := pf.Delivered(); len(ds) != 0 {
			t.Errorf("delivered %d messages over an unverified connection", len(ds))
		}
	})
	t.Run("AUTH through Dovecot", func(t *testing.T) {
		dc := realserver.StartDovecot(t)
		pf := realserver.StartPostfix(t, realserver.PostfixOptions{SASL: dc, RequireAuth: true})
		env := mergeEnv(baseEnv(t, "smtp://"+realserver.User1+"@"+pf.SMTPAddr),
			[]string{"RELAYMAIL_TLS_CA_FILE=" + pf.CACert, "RELAYMAIL_PASSWORD=" + realserver.Password})
		o := runSendmail(t, env, []string{"-i", "a@example.org"}, []byte(realMessage))
		if o.exit != 0 {
			t.Fatalf("exit %d; stderr:\n%s", o.exit, o.stderr)
		}
		if ds := pf.Delivered(); len(ds) != 1 || !bytes.Equal(ds[0].Content(), []byte(lf(realMessage))) {
			t.Errorf("deliveries: %+v", ds)
		}
		if !strings.Contains(pf.Log(), "sasl_username="+realserver.User1) {
			t.Errorf("postfix did not log the authenticated user:\n%s", pf.Log())
		}
		if strings.Contains(o.stderr, realserver.Password) {
			t.Errorf("the password shows on stderr:\n%s", o.stderr)
		}
	})
}

func TestRealSendmailSMTPSink(t *testing.T) {
	needClient(t, "smtp")
	cases := []struct {
		name  string
		opts  []realserver.SinkOption
		exits []int
	}{
		{"hard reject RCPT", []realserver.SinkOption{realserver.HardReject("RCPT"), realserver.HardReply("550 5.1.1 no such user")}, []int{67, 69}},
		{"hard reject data", []realserver.SinkOption{realserver.HardReject(".")}, []int{67, 69}},
		// With the queue off (these cases) a temporary failure exits 75:
		// nothing is kept for a later retry.
		{"soft reject RCPT", []realserver.SinkOption{realserver.SoftReject("RCPT")}, []int{75}},
		{"soft reject data", []realserver.SinkOption{realserver.SoftReject(".")}, []int{75}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := realserver.StartSMTPSink(t, c.opts...)
			env := mergeEnv(baseEnv(t, "smtp://"+s.Addr+"?tls=none"), []string{"RELAYMAIL_QUEUE=off"})
			o := runSendmail(t, env, []string{"-i", "a@example.org"}, []byte(realMessage))
			ok := false
			for _, e := range c.exits {
				ok = ok || o.exit == e
			}
			if !ok {
				t.Errorf("exit %d, want one of %v; stderr:\n%s", o.exit, c.exits, o.stderr)
			}
			if l := stderrLine(o.stderr, "a@example.org"); l == "" {
				t.Errorf("stderr does not report a@example.org:\n%s", o.stderr)
			}
		})
	}
	t.Run("accepted", func(t *testing.T) {
		s := realserver.StartSMTPSink(t, realserver.NoPipelining())
		o := runSendmail(t, baseEnv(t, "smtp://"+s.Addr+"?tls=none"), []string{"-i", "a@example.org", "b@example.org"}, []byte(realMessage))
		if o.exit != 0 {
			t.Fatalf("exit %d; stderr:\n%s", o.exit, o.stderr)
		}
		msgs := s.Messages()
		if len(msgs) != 1 || len(msgs[0].RcptArgs) != 2 || string(msgs[0].Data) != lf(realMessage) {
			t.Errorf("sink kept %+v", msgs)
		}
	})
}
