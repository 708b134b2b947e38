package e2e

import (
	"bytes"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/e2e/realserver"
	"github.com/relaymail/relaymail/relay/relaytest"
)

// bsTranscript runs "sendmail -bs" with the client's side of a session on
// standard input and returns what it answered, line by line.
func bsTranscript(t *testing.T, env, args []string, client string) (outcome, []string) {
	t.Helper()
	o := runSendmail(t, env, append([]string{"-bs"}, args...), []byte(client))
	return o, strings.Split(strings.TrimSuffix(o.stdout, "\r\n"), "\r\n")
}

// codes keeps the reply code of each final reply line ("250", "354"...).
func codes(lines []string) string {
	var c []string
	for _, l := range lines {
		if len(l) >= 4 && l[3] == ' ' {
			c = append(c, l[:3])
		}
	}
	return strings.Join(c, " ")
}

func TestBSTranscripts(t *testing.T) {
	msg := "Subject: hi\r\nTo: b@example.org\r\n\r\nbody\r\n.\r\n"
	cases := []struct {
		name    string
		args    []string
		env     []string
		client  string
		replies string // codes of the final reply lines, in order
		exit    int
		pkgs    int // messages the smarthost received
		script  []relaytest.QMTPAction
	}{
		{name: "Symfony: HELO MAIL RCPT DATA RSET NOOP QUIT",
			client:  "HELO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + msg + "RSET\r\nNOOP\r\nQUIT\r\n",
			replies: "220 250 250 250 354 250 250 250 221", pkgs: 1},
		{name: "Laravel: -bs -i with EHLO", args: []string{"-i"},
			client:  "EHLO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + msg + "QUIT\r\n",
			replies: "220 250 250 250 354 250 221", pkgs: 1},
		{name: "pipelined EHLO session",
			client:  "EHLO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n" + msg + "QUIT\r\n",
			replies: "220 250 250 250 250 354 250 221", pkgs: 1},
		{name: "two messages in one session",
			client: "EHLO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + msg +
				"MAIL FROM:<app@example.com>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n" + msg + "QUIT\r\n",
			replies: "220 250 250 250 354 250 250 250 354 250 221", pkgs: 2},
		{name: "bare LF from the client",
			client:  "HELO app.example\nMAIL FROM:<app@example.com>\nRCPT TO:<b@example.org>\nDATA\nSubject: lf\n\n..dot\nbody\n.\nQUIT\n",
			replies: "220 250 250 250 354 250 221", pkgs: 1},
		{name: "a bad command", client: "HELO app.example\r\nFROB\r\nVRFY someone\r\nHELP\r\nQUIT\r\n",
			replies: "220 250 500 252 214 221"},
		{name: "client vanishes mid-DATA", client: "HELO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess",
			replies: "220 250 250 250 354 451", exit: 74},
		{name: "EOF between messages", client: "HELO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + msg,
			replies: "220 250 250 250 354 250", pkgs: 1},
		{name: "message too large", env: []string{"RELAYMAIL_MAX_MESSAGE_SIZE=2k"},
			client:  "EHLO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: big\r\n\r\n" + strings.Repeat("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 50) + ".\r\nQUIT\r\n",
			replies: "220 250 250 250 354 552 221"},
		{name: "deferral with the queue off is 451", env: []string{"RELAYMAIL_QUEUE=off"},
			script:  []relaytest.QMTPAction{relaytest.Reply("Z", "try later")},
			client:  "HELO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + msg + "QUIT\r\n",
			replies: "220 250 250 250 354 451 221", pkgs: 1},
		{name: "a smarthost that rejects everything is 554",
			script:  []relaytest.QMTPAction{relaytest.Reply("D", "no such user (#5.1.1)")},
			client:  "HELO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + msg + "QUIT\r\n",
			replies: "220 250 250 250 354 554 221", pkgs: 1},
		{name: "bad recipient refused at RCPT",
			client:  "HELO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<" + strings.Repeat("l", 65) + "@example.org>\r\nQUIT\r\n",
			replies: "220 250 250 553 221"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := scripted(t, c.script...)
			env := mergeEnv(baseEnv(t, qmtpURL(srv)), c.env)
			o, lines := bsTranscript(t, env, c.args, c.client)
			if got := codes(lines); got != c.replies {
				t.Errorf("replies %s, want %s\nstdout:\n%s\nstderr:\n%s", got, c.replies, o.stdout, o.stderr)
			}
			if lines[0] != "220 host.example.com ESMTP relaymail" {
				t.Errorf("greeting %q", lines[0])
			}
			if o.exit != c.exit {
				t.Errorf("exit %d, want %d; stderr:\n%s", o.exit, c.exit, o.stderr)
			}
			if n := len(srv.Packages()); n != c.pkgs {
				t.Errorf("smarthost received %d messages, want %d", n, c.pkgs)
			}
		})
	}
}

// The bytes a message arrives with: intake ran on it as for -t (Bcc gone,
// bare names qualified, dots un-stuffed, Date and Message-ID added), and the
// envelope is the one given in MAIL and RCPT.
func TestBSIntake(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	client := "EHLO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<root@example.com>\r\nDATA\r\n" +
		"From: App <app@example.com>\r\nTo: root\r\nBcc: hidden@example.net\r\nSubject: intake\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n"
	o, _ := bsTranscript(t, baseEnv(t, qmtpURL(srv)), nil, client)
	if o.exit != 0 {
		t.Fatalf("exit %d: %s", o.exit, o.stderr)
	}
	p := srv.Packages()[0]
	if p.Sender != "app@example.com" || strings.Join(p.Recipients, " ") != "b@example.org root@example.com" {
		t.Errorf("envelope %q %q", p.Sender, p.Recipients)
	}
	got := mask(string(p.Message))
	want := "From: App <app@example.com>\nTo: root@example.com\nSubject: intake\nDate: GENERATED\nMessage-ID: <GENERATED@host.example.com>\n\n.leading dot\n"
	if got != want {
		t.Errorf("message\n%q\nwant\n%q", got, want)
	}
}

// pipeConn is a child process's standard input and output as a net.Conn,
// for go-smtp's client.
type pipeConn struct {
	io.Reader
	io.WriteCloser
}

func (pipeConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "pipe"} }
func (pipeConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "pipe"} }
func (pipeConn) SetDeadline(time.Time) error      { return nil }
func (pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (pipeConn) SetWriteDeadline(time.Time) error { return nil }
func (c pipeConn) Close() error                   { return c.WriteCloser.Close() }

// A real SMTP client (go-smtp's) drives the built binary over pipes; the
// message reaches the smarthost.
func TestBSWithGoSMTPClient(t *testing.T) {
	srv := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{})
	cmd := exec.Command(sendmailBin, "-bs", "-i")
	cmd.Env = baseEnv(t, "smtp://"+srv.Addr()+"?tls=none")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := gosmtp.NewClient(pipeConn{stdout, stdin})
	if err := c.Hello("app.example"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE", "ENHANCEDSTATUSCODES", "DSN"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("EHLO does not advertise %s", ext)
		}
	}
	for i := 0; i < 2; i++ {
		if err := c.SendMail("app@example.com", []string{"b@example.org"}, strings.NewReader("Subject: go-smtp\r\n\r\nhello\r\n")); err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, stderr.String())
		}
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("sendmail -bs: %v\n%s", err, stderr.String())
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].From != "app@example.com" || !strings.HasSuffix(string(msgs[1].Data), "\r\n\r\nhello\r\n") {
		t.Errorf("smarthost got %+v", msgs)
	}
}

// -bs through to real Dovecot LMTP: what a Symfony or Laravel application
// does, with an LMTP smarthost.
func TestBSToRealDovecot(t *testing.T) {
	needClient(t, "lmtp")
	dc := realserver.StartDovecot(t)
	env := baseEnv(t, "lmtp://"+dc.LMTPAddr)
	client := "HELO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<" + realserver.User1 + "@example.com>\r\nDATA\r\n" +
		"Subject: from -bs\r\nMessage-ID: <bs-1@example.com>\r\n\r\nhello Dovecot\r\n.\r\nQUIT\r\n"
	o, lines := bsTranscript(t, env, []string{"-i"}, client)
	if o.exit != 0 || codes(lines) != "220 250 250 250 354 250 221" {
		t.Fatalf("exit %d, replies %s\n%s%s", o.exit, codes(lines), o.stdout, o.stderr)
	}
	msgs := dc.Maildir(realserver.User1)
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Content), "hello Dovecot") || msgs[0].ReturnPath != "app@example.com" {
		t.Errorf("maildir has %+v", msgs)
	}
}
