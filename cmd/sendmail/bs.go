package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/inject"
)

// -bs: one SMTP session on standard input and output, for Symfony Mailer
// (its default sendmail transport runs "sendmail -bs") and Laravel ("-bs
// -i"). go-smtp's server speaks the protocol; stdioConn makes the two
// descriptors one connection and bridges what that server does not do the
// way a sendmail must: the greeting text, HELP, and bare LF line endings in
// DATA. Each message goes through the same intake, relay and queue as
// sendmail -t would send it.
//
// Permanent per-recipient failures: the smarthost is consulted only after
// DATA (asking it at RCPT time would need a connection per RCPT, or holding
// one open across the client's pauses). So RCPT accepts every address that
// intake accepts, and after DATA the reply sums up: 250 when every
// recipient was delivered or queued, or when some failed and the others
// were delivered or queued (the failed ones then get a bounce from the
// queue, as from any MTA that accepted the message); 554 when every
// recipient failed; 451 when some were deferred and the queue is off.

const bsReadTimeout = 5 * time.Minute // RFC 5321 §4.5.3.2.7: a server waits 5 minutes for a command

func (s *sendmail) serveSMTP(req *request, cfg *config.Config) int {
	sm, code := s.newSubmitter(req, cfg)
	if sm != nil {
		if code = sm.checkSpool(); code != exOK {
			sm = nil
		}
	}
	if sm == nil {
		// No usable configuration: say so in SMTP too, so that a framework
		// shows the reason rather than a broken pipe.
		fmt.Fprintf(s.stdout, "421 4.3.0 %s relaymail is not configured; see its standard error\r\n", cfg.Hostname)
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()

	be := &bsBackend{sm: sm, ctx: ctx}
	srv := gosmtp.NewServer(be)
	srv.Domain = cfg.Hostname
	srv.ReadTimeout = bsReadTimeout
	srv.WriteTimeout = bsReadTimeout
	srv.MaxMessageBytes = cfg.MaxMessageSize
	srv.MaxRecipients = 1000
	// go-smtp's default of 2000 octets would cut a message that callers
	// wrote with long lines; intake folds nothing, the SMTP client folds
	// at 998 on the way out, so only memory bounds this.
	srv.MaxLineLength = 1 << 20
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	srv.ErrorLog = discardLog{}

	conn := newStdioConn(s.stdin, s.stdout, cfg.Hostname)
	l := &oneConnListener{conn: conn}
	done := make(chan struct{})
	go func() {
		srv.Serve(l)
		close(done)
	}()
	select {
	case <-conn.closed:
	case <-ctx.Done():
	}
	srv.Close()
	<-done
	if be.incomplete() {
		// The client went away in the middle of a message: nothing of it
		// was sent or kept. EX_IOERR, as for a broken standard input.
		s.errorf("-bs: standard input ended in the middle of a message; that message was discarded")
		return exIOErr
	}
	return exOK
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

type bsBackend struct {
	sm  *submitter
	ctx context.Context

	mu      sync.Mutex
	partial bool // a message was cut off: standard input ended inside DATA
}

func (b *bsBackend) incomplete() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.partial
}

func (b *bsBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &bsSession{b: b}, nil
}

type bsSession struct {
	b      *bsBackend
	from   string
	mail   *gosmtp.MailOptions
	rcpts  []string
	notify []string
}

func (t *bsSession) cutOff() {
	t.b.mu.Lock()
	t.b.partial = true
	t.b.mu.Unlock()
}

func (t *bsSession) Reset() {
	t.from, t.mail, t.rcpts, t.notify = "", nil, nil, nil
}

func (t *bsSession) Logout() error { return nil }

// checkArg runs an address through intake's rules, so that the session
// refuses at once what the message would be refused for later.
func (t *bsSession) checkArg(what, addr string) *gosmtp.SMTPError {
	opts := injectOptions(t.b.sm.req, t.b.sm.cfg)
	opts.SenderSet, opts.Sender, opts.Recipients = true, "", nil
	if what == "sender" {
		opts.Sender = addr
	} else {
		opts.Recipients = []string{addr}
	}
	if _, err := inject.Envelope(opts); err != nil {
		code := gosmtp.EnhancedCode{5, 1, 3}
		if what == "sender" {
			code = gosmtp.EnhancedCode{5, 1, 7}
		}
		return &gosmtp.SMTPError{Code: 553, EnhancedCode: code, Message: oneLine(err.Error())}
	}
	return nil
}

func (t *bsSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if from != "" {
		if err := t.checkArg("sender", from); err != nil {
			return err
		}
	}
	t.from, t.mail = from, opts
	return nil
}

func (t *bsSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if err := t.checkArg("recipient", to); err != nil {
		return err
	}
	t.rcpts = append(t.rcpts, to)
	if len(t.notify) == 0 && opts != nil {
		// relay.DSN carries one NOTIFY for the message: the first
		// recipient's, the usual case of a client that sends the same
		// NOTIFY for all.
		for _, n := range opts.Notify {
			t.notify = append(t.notify, string(n))
		}
	}
	return nil
}

// Data hands the message to the same submit path as sendmail -t, and
// answers 250 only once it is delivered or durably queued.
func (t *bsSession) Data(r io.Reader) error {
	sm := t.b.sm
	req := *sm.req
	req.Notify = t.notify
	if t.mail != nil {
		if t.mail.Return != "" {
			req.Ret = strings.ToUpper(string(t.mail.Return))
		}
		if t.mail.EnvelopeID != "" {
			req.EnvID = t.mail.EnvelopeID
		}
		if t.mail.Body == gosmtp.Body8BitMIME || t.mail.Body == gosmtp.Body7Bit {
			req.Body = string(t.mail.Body)
		}
		req.SMTPUTF8 = req.SMTPUTF8 || t.mail.UTF8
	}
	opts := injectOptions(&req, sm.cfg)
	opts.Recipients = t.rcpts
	opts.Extract = false
	opts.IgnoreDots = true   // the server has already undone the dot-stuffing
	opts.MaxMessageBytes = 0 // go-smtp enforces it on what the client sent, with 552
	if sm.cfg.AllowFromOverride {
		// MAIL FROM is the caller's sender, as -f is: with
		// allow_from_override no, both are ignored.
		opts.SenderSet, opts.Sender = true, t.from
		if t.from == "" {
			opts.Sender = "<>"
		}
	}
	run := *sm
	run.req = &req
	o := run.submit(t.b.ctx, r, opts, true)
	if o.err != nil {
		var ie *inject.Error
		if errors.Is(o.err, gosmtp.ErrDataTooLarge) {
			return gosmtp.ErrDataTooLarge // 552 5.3.4, the SIZE this session advertised
		}
		if errors.As(o.err, &ie) && ie.Kind == inject.KindRead {
			// The client vanished mid-DATA: go-smtp ends the session.
			t.cutOff()
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "message incomplete; discarded"}
		}
		if errors.As(o.err, &ie) && (ie.Kind == inject.KindData || ie.Kind == inject.KindUsage) {
			return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: oneLine(o.err.Error())}
		}
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: oneLine(o.err.Error())}
	}
	return dataReply(o)
}

// dataReply turns the outcome of one message into the reply to its DATA.
func dataReply(o outcome) error {
	var delivered, deferred, failed int
	var firstFailure, firstDeferral relay.Result
	for _, r := range o.results {
		switch r.Class {
		case relay.Delivered:
			delivered++
		case relay.Deferred:
			if deferred == 0 {
				firstDeferral = r
			}
			deferred++
		case relay.Failed:
			if failed == 0 {
				firstFailure = r
			}
			failed++
		}
	}
	switch {
	case len(o.results) == 0:
		return nil // queued without an attempt
	case failed == len(o.results):
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: enhanced(firstFailure.Enhanced, gosmtp.EnhancedCode{5, 0, 0}),
			Message: "rejected by the smarthost: " + oneLine(resultText(firstFailure))}
	case deferred > 0 && o.queuedAs == "":
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: enhanced(firstDeferral.Enhanced, gosmtp.EnhancedCode{4, 4, 0}),
			Message: "not delivered and not queued (the queue is off): " + oneLine(resultText(firstDeferral))}
	}
	return nil
}

// enhanced parses "5.1.1" into go-smtp's form, with a fallback of the same
// class as the reply.
func enhanced(code string, fallback gosmtp.EnhancedCode) gosmtp.EnhancedCode {
	var c gosmtp.EnhancedCode
	if n, _ := fmt.Sscanf(code, "%d.%d.%d", &c[0], &c[1], &c[2]); n == 3 && c[0] == fallback[0] {
		return c
	}
	return fallback
}

// oneConnListener hands out one connection, then blocks until closed.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	mu     sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed == nil {
		l.closed = make(chan struct{})
	}
	c := l.conn
	l.conn = nil
	closed := l.closed
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.mu.Lock()
	if l.closed == nil {
		l.closed = make(chan struct{})
	}
	l.once.Do(func() { close(l.closed) })
	l.mu.Unlock()
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return stdioAddr{} }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "stdio" }

// stdioConn is standard input and output as one net.Conn. It bridges
// three things go-smtp's server does not do the way a sendmail must:
//   - its greeting says "Service Ready"; the writer replaces it with
//     "220 <hostname> ESMTP relaymail";
//   - it refuses HELP with 502; the reader passes HELP on as NOOP and the
//     writer replaces that NOOP's reply with a 214 help text;
//   - its DATA reader only knows CRLF; between a 354 reply and the lone dot
//     the reader turns a bare LF into CRLF, because PHP and friends send LF.
//
// The reader passes command lines on whole and one at a time, so that
// whatever follows a command is read only after go-smtp has answered it
// (and a 354 has switched to DATA mode). BDAT chunks pass through raw: their
// length counts the client's bytes.
type stdioConn struct {
	in       io.Reader
	out      io.Writer
	hostname string
	closed   chan struct{}
	once     sync.Once
	tmp      []byte

	mu         sync.Mutex
	buf        []byte // read from in, not yet processed
	ready      []byte // processed, for go-smtp to read
	cmd        []byte // a command line read only in part
	rawLeft    int64  // bytes of a BDAT chunk still to pass through
	dataMode   bool   // between a 354 reply and the lone dot
	lineStart  bool
	dotLine    bool // the DATA line so far is "." (or ".\r")
	lastCR     bool
	replies    []bool // per command passed on, oldest first: was it HELP?
	greeted    bool
	outPartial []byte // a reply line written only in part
}

const maxCommandLine = 4096

func newStdioConn(in io.Reader, out io.Writer, hostname string) *stdioConn {
	return &stdioConn{in: in, out: out, hostname: hostname, closed: make(chan struct{}), lineStart: true,
		tmp: make([]byte, 32<<10)}
}

func (c *stdioConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.ready) == 0 {
		if c.isClosed() {
			return 0, net.ErrClosed
		}
		if len(c.buf) == 0 {
			c.mu.Unlock()
			n, err := c.in.Read(c.tmp)
			c.mu.Lock()
			c.buf = append(c.buf, c.tmp[:n]...)
			if n == 0 {
				if err == nil {
					continue
				}
				if len(c.cmd) > 0 {
					// The input ended inside a command line: hand it over
					// as it is; go-smtp sees the EOF next.
					c.ready, c.cmd = append(c.ready, c.cmd...), nil
					break
				}
				return 0, err
			}
		}
		c.process()
	}
	n := copy(p, c.ready)
	c.ready = c.ready[n:]
	return n, nil
}

// process moves bytes from buf to ready: in command mode at most one
// command line, in DATA mode up to the end of the message.
func (c *stdioConn) process() {
	switch {
	case c.rawLeft > 0:
		n := int64(len(c.buf))
		if n > c.rawLeft {
			n = c.rawLeft
		}
		c.ready = append(c.ready, c.buf[:n]...)
		c.buf = c.buf[n:]
		c.rawLeft -= n
	case c.dataMode:
		for len(c.buf) > 0 && c.dataMode {
			b := c.buf[0]
			c.buf = c.buf[1:]
			if b == '\n' {
				if !c.lastCR {
					c.ready = append(c.ready, '\r')
				}
				c.ready = append(c.ready, '\n')
				if c.dotLine {
					// The lone dot ends the message; the reply to it is
					// the next reply go-smtp writes.
					c.dataMode = false
					c.replies = append(c.replies, false)
				}
				c.lineStart, c.dotLine, c.lastCR = true, false, false
				continue
			}
			if c.lineStart {
				c.dotLine = b == '.'
			} else if b != '\r' {
				c.dotLine = false
			}
			c.lineStart, c.lastCR = false, b == '\r'
			c.ready = append(c.ready, b)
		}
	default:
		i := strings.IndexByte(string(c.buf), '\n')
		if i < 0 {
			c.cmd = append(c.cmd, c.buf...)
			c.buf = c.buf[:0]
			if len(c.cmd) > maxCommandLine {
				// An overlong line is go-smtp's to refuse; pass it on.
				c.ready, c.cmd = append(c.ready, c.cmd...), nil
			}
			return
		}
		line := append(c.cmd, c.buf[:i+1]...)
		c.cmd, c.buf = nil, c.buf[i+1:]
		word := strings.ToUpper(strings.TrimRight(string(line), "\r\n"))
		help := word == "HELP" || strings.HasPrefix(word, "HELP ")
		c.replies = append(c.replies, help)
		if help {
			line = []byte("NOOP\r\n")
		}
		if f := strings.Fields(word); len(f) >= 2 && f[0] == "BDAT" {
			var n int64
			if _, err := fmt.Sscan(f[1], &n); err == nil && n > 0 {
				c.rawLeft = n
			}
		}
		c.ready = append(c.ready, line...)
	}
}

func (c *stdioConn) Write(p []byte) (int, error) {
	if c.isClosed() {
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	c.outPartial = append(c.outPartial, p...)
	var out []byte
	for {
		i := strings.IndexByte(string(c.outPartial), '\n')
		if i < 0 {
			break
		}
		line := string(c.outPartial[:i+1])
		c.outPartial = c.outPartial[i+1:]
		out = append(out, c.rewriteReply(line)...)
	}
	c.mu.Unlock()
	if _, err := c.out.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// rewriteReply sees each reply line go-smtp writes, in order.
func (c *stdioConn) rewriteReply(line string) string {
	if len(line) < 4 {
		return line
	}
	final := line[3] == ' '
	if !c.greeted {
		if final {
			c.greeted = true
		}
		return "220 " + c.hostname + " ESMTP relaymail\r\n"
	}
	if !final {
		return line
	}
	help := false
	if len(c.replies) > 0 {
		help = c.replies[0]
		c.replies = c.replies[1:]
	}
	if strings.HasPrefix(line, "354") {
		c.dataMode, c.lineStart, c.dotLine, c.lastCR = true, true, false, false
	}
	if help {
		return "214-2.0.0 relaymail speaks SMTP here for local programs.\r\n" +
			"214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT\r\n" +
			"214 2.0.0 See sendmail(8), option -bs\r\n"
	}
	return line
}

func (c *stdioConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *stdioConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *stdioConn) LocalAddr() net.Addr  { return stdioAddr{} }
func (c *stdioConn) RemoteAddr() net.Addr { return stdioAddr{} }

// Deadlines apply to standard input when it supports them (a pipe does).
func (c *stdioConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *stdioConn) SetReadDeadline(t time.Time) error {
	if f, ok := c.in.(*os.File); ok {
		f.SetReadDeadline(t)
	}
	return nil
}

func (c *stdioConn) SetWriteDeadline(t time.Time) error {
	if f, ok := c.out.(*os.File); ok {
		f.SetWriteDeadline(t)
	}
	return nil
}
