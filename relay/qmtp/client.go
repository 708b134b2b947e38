// Package qmtp is a QMTP client (D. J. Bernstein, "Quick Mail Transfer
// Protocol", 19970201; referred to as QMTP.txt below).
//
// A QMTP session has no greeting, no HELO and no QUIT: the client sends
// packages, each a message, a sender and one or more recipients, and the server
// answers every package with one reply per recipient, in order. Packages may be
// pipelined; the client then reads replies while it is still writing
// (QMTP.txt §2).
//
// The message is sent with encoding #2 (a leading LF, then the LF-terminated
// lines as intake stored them), streamed from the spool file: a large message
// costs no more memory than a small one.
package qmtp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// Defaults for the zero fields of Options.
const (
	DefaultDialTimeout = 30 * time.Second
	DefaultIOTimeout   = 60 * time.Second
	// DefaultSessionTimeout follows QMTP.txt §2: "A QMTP session should take
	// at most 1 hour. Both sides are expected to close the connection after
	// this time." qmail-qmtpd enforces it with alarm(3600).
	DefaultSessionTimeout = time.Hour
)

// MaxReply caps the length of one server reply. qmail's replies are well
// under 100 bytes; the cap only stops a broken server from making us
// allocate without bound.
const MaxReply = 64 << 10

// ErrNoRecipients is returned, wrapped, for a package without recipients.
// qmail-qmtpd answers such a package with zero replies and waits for the next
// one, so a client waiting for a reply would hang; it is never sent.
var ErrNoRecipients = errors.New("qmtp: package without recipients")

// Options configures a connection to one QMTP server.
type Options struct {
	// Network and Address name the server: "tcp" and "host:port", or "unix"
	// and a socket path. An empty Network means "tcp".
	Network, Address string
	// DialTimeout bounds the connection set-up (default 30s). IOTimeout
	// bounds every write and the wait for every reply (default 60s).
	// SessionTimeout bounds the whole session (default 1h, QMTP.txt §2): no
	// deadline is ever set past the session's start plus SessionTimeout.
	DialTimeout, IOTimeout, SessionTimeout time.Duration
	// Name is how the server is named in Results and errors, e.g.
	// "qmtp://127.0.0.1:209". The default is Network+":"+Address.
	Name string
}

func (o Options) withDefaults() Options {
	if o.Network == "" {
		o.Network = "tcp"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.Name == "" {
		o.Name = o.Network + ":" + o.Address
	}
	return o
}

// Package is one message for a set of recipients, the unit QMTP sends.
type Package struct {
	Envelope *relay.Envelope
	Message  *relay.Message
}

// Client is a QMTP session on one connection. Its methods must not be called
// concurrently, except Close, which may be called at any time to abort a
// session in progress. After any failure the session is unusable: the
// connection is closed and later sends return every recipient Deferred.
type Client struct {
	conn net.Conn
	opts Options
	br   *bufio.Reader
	end  time.Time        // session start + SessionTimeout
	now  func() time.Time // replaced by tests

	mu     sync.Mutex // serialises SendAll
	broken error      // why the session is unusable; guarded by mu

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Dial connects to the server named by opts. Its error is classified
// temporary.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	conn, err := relay.Dial(ctx, opts.Network, opts.Address, opts.DialTimeout)
	if err != nil {
		return nil, relay.Temporary("qmtp", &sessionError{host: opts.Name, detail: "cannot connect: " + err.Error(), err: err})
	}
	return NewClient(conn, opts), nil
}

// NewClient starts a QMTP session on an established connection. The session
// clock starts now.
func NewClient(conn net.Conn, opts Options) *Client {
	if opts.Name == "" && opts.Address == "" && conn.RemoteAddr() != nil {
		opts.Name = conn.RemoteAddr().Network() + ":" + conn.RemoteAddr().String()
	}
	opts = opts.withDefaults()
	c := &Client{
		conn: conn,
		opts: opts,
		br:   bufio.NewReaderSize(conn, 4096),
		now:  time.Now,
	}
	c.end = c.now().Add(opts.SessionTimeout)
	return c
}

// Close closes the connection. QMTP has no QUIT: the client ends a session
// by closing it (QMTP.txt §8, "The client closes the connection.").
func (c *Client) Close() error {
	c.closed.Store(true)
	c.closeConn()
	return c.closeErr
}

func (c *Client) closeConn() {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
}

// Send sends one package and reads its replies. It returns one Result per
// recipient, in envelope order, even when it also returns an error.
func (c *Client) Send(ctx context.Context, env *relay.Envelope, msg *relay.Message) ([]relay.Result, error) {
	res, err := c.SendAll(ctx, []Package{{Envelope: env, Message: msg}})
	return res[0], err
}

// SendAll pipelines packages over the connection: a writer goroutine sends
// package after package while the calling goroutine reads the replies, so
// that neither side blocks on full socket buffers (QMTP.txt §2: "if it sends
// a package before receiving all expected server responses, it must
// continuously watch for those responses").
//
// It returns one []relay.Result per package, in order, each with one Result
// per recipient. Every recipient without a well-formed reply is Deferred
// (QMTP.txt §2: "Any response not received by the client indicates a
// temporary failure"), and the error then says why.
//
// A package without recipients, or without a message, is a caller error:
// nothing at all is written and the error is permanent. SendAll of no
// packages does nothing.
func (c *Client) SendAll(ctx context.Context, pkgs []Package) ([][]relay.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(pkgs) == 0 {
		return nil, nil
	}

	results := make([][]relay.Result, len(pkgs))
	for k, p := range pkgs {
		if p.Envelope == nil {
			continue
		}
		results[k] = make([]relay.Result, len(p.Envelope.Recipients))
		for i, rcpt := range p.Envelope.Recipients {
			results[k][i] = relay.Result{Recipient: rcpt, Class: relay.Deferred, Host: c.opts.Name}
		}
	}
	if err := validate(pkgs); err != nil {
		fillFrom(results, 0, 0, "qmtp: not sent: "+strings.TrimPrefix(err.Error(), "qmtp: "))
		return results, relay.Permanent("", err)
	}

	var f *failure
	switch {
	case c.closed.Load():
		f = &failure{detail: "connection already closed", err: net.ErrClosed}
	case c.broken != nil:
		f = &failure{detail: "session unusable after an earlier failure: " + c.broken.Error(), err: c.broken}
	case ctx.Err() != nil:
		f = &failure{detail: "canceled: " + ctx.Err().Error(), err: ctx.Err()}
	case !c.now().Before(c.end):
		f = &failure{detail: c.sessionOver(), err: os.ErrDeadlineExceeded}
	default:
		f = c.run(ctx, pkgs, results)
	}
	if f == nil {
		return results, nil
	}
	if c.broken == nil {
		c.broken = f.err
		if c.broken == nil {
			c.broken = errors.New(f.detail)
		}
	}
	c.closeConn()
	fillFrom(results, f.pkg, f.rcpt, "qmtp: "+f.detail)
	return results, relay.Temporary("qmtp", f.sessionError(c.opts.Name, pkgs))
}

func validate(pkgs []Package) error {
	for k, p := range pkgs {
		var why string
		switch {
		case p.Envelope == nil:
			why = "has no envelope"
		case len(p.Envelope.Recipients) == 0:
			if len(pkgs) == 1 {
				return ErrNoRecipients
			}
			return fmt.Errorf("%w (package %d of %d)", ErrNoRecipients, k+1, len(pkgs))
		case p.Message == nil || p.Message.Data == nil:
			why = "has no message"
		case p.Message.Size < 0 || p.Message.Size >= 1<<62:
			why = fmt.Sprintf("has an impossible message size %d", p.Message.Size)
		default:
			continue
		}
		return fmt.Errorf("qmtp: package %d of %d %s", k+1, len(pkgs), why)
	}
	return nil
}

// fillFrom marks every recipient from package k, recipient i onwards as
// Deferred with text.
func fillFrom(results [][]relay.Result, k, i int, text string) {
	for ; k < len(results); k, i = k+1, 0 {
		for ; i < len(results[k]); i++ {
			results[k][i].Class = relay.Deferred
			results[k][i].Text = text
		}
	}
}

// failure describes why replies stopped at package pkg, recipient rcpt.
type failure struct {
	pkg, rcpt int
	placed    bool   // pkg and rcpt were set by at
	detail    string // lower case, without the "qmtp: " prefix
	err       error  // the underlying cause, for errors.Is
}

func (f *failure) sessionError(host string, pkgs []Package) error {
	detail := f.detail
	if f.placed {
		detail += fmt.Sprintf(" (at recipient %d of %d", f.rcpt+1, len(pkgs[f.pkg].Envelope.Recipients))
		if len(pkgs) > 1 {
			detail += fmt.Sprintf(" of package %d of %d", f.pkg+1, len(pkgs))
		}
		detail += ")"
	}
	return &sessionError{host: host, detail: detail, err: f.err}
}

// sessionError is the unclassified error inside the relay.Error a Client
// returns. It names the server, says what happened, and unwraps to the cause
// (io.EOF, os.ErrDeadlineExceeded, context.Canceled, ...).
type sessionError struct {
	host, detail string
	err          error
}

func (e *sessionError) Error() string { return e.host + ": " + e.detail }
func (e *sessionError) Unwrap() error { return e.err }

// deadline returns the deadline for the next read or write: IOTimeout from
// now, but never past the end of the session.
func (c *Client) deadline() time.Time {
	d := c.now().Add(c.opts.IOTimeout)
	if d.After(c.end) {
		d = c.end
	}
	return d
}

func (c *Client) sessionOver() string {
	return fmt.Sprintf("session time limit of %v reached", c.opts.SessionTimeout)
}

// session is the shared state of one SendAll: the writer goroutine and the
// reader (the caller's goroutine) coordinate deadlines through it.
type session struct {
	c   *Client
	ctx context.Context

	mu        sync.Mutex
	readerPkg int      // package whose replies the reader is on
	reading   bool     // the reader is waiting for a reply
	written   int      // packages written whole (flushed)
	wfail     *failure // set when writing package wfail.pkg failed
}

// armLocked sets the read deadline for the reply the reader waits for. The
// server may not answer a package before its final byte (QMTP.txt §2), so
// while the package is still being written the wait is bounded only by the
// session; the writer's own deadlines catch a server that stops reading.
// Called with s.mu held.
func (s *session) armLocked() {
	if !s.reading {
		return
	}
	c := s.c
	if s.readerPkg < s.written {
		c.conn.SetReadDeadline(c.deadline())
	} else {
		c.conn.SetReadDeadline(c.end)
	}
}

func (c *Client) run(ctx context.Context, pkgs []Package, results [][]relay.Result) *failure {
	s := &session{c: c, ctx: ctx}
	// Closing the connection is the one way to interrupt both a blocked
	// write and a blocked read at once.
	stop := context.AfterFunc(ctx, c.closeConn)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		s.write(pkgs)
	}()
	f := s.read(pkgs, results)
	if f != nil {
		// Stop the writer: the session cannot continue after a lost or
		// garbled reply, since later replies could no longer be matched to
		// their recipients.
		c.closeConn()
	}
	<-wdone
	if !stop() && f == nil {
		// ctx was canceled after the last reply was read. The results
		// stand, but the connection is gone.
		c.broken = ctx.Err()
	}
	if f == nil && s.wfail != nil {
		// Every reply arrived although a write failed; keep the results,
		// but do not trust the connection any more.
		c.broken = s.wfail.err
		c.closeConn()
	}
	return f
}

// deadlineWriter refreshes the write deadline before every Write, so that a
// large message may take as long as it needs while each write makes progress.
type deadlineWriter struct{ s *session }

func (w deadlineWriter) Write(p []byte) (int, error) {
	s := w.s
	d := s.c.deadline()
	s.mu.Lock()
	s.c.conn.SetWriteDeadline(d)
	if s.reading && s.readerPkg < s.written {
		// The server may hold back its replies while more data arrives
		// (QMTP.txt §2: "The server is permitted to delay its responses if
		// further data has already shown up from the client"), so progress
		// in writing later packages keeps the wait for a reply alive.
		s.c.conn.SetReadDeadline(d)
	}
	s.mu.Unlock()
	return s.c.conn.Write(p)
}

func (s *session) write(pkgs []Package) {
	bw := bufio.NewWriterSize(deadlineWriter{s}, 64<<10)
	for k, p := range pkgs {
		f := s.writePackage(bw, p)
		s.mu.Lock()
		if f != nil {
			f.pkg = k
			s.wfail = f
			if s.reading && s.readerPkg >= k {
				// The server will never answer a package it did not
				// receive whole: wake the reader now.
				s.c.conn.SetReadDeadline(time.Unix(1, 0))
			}
			s.mu.Unlock()
			return
		}
		s.written = k + 1
		s.armLocked()
		s.mu.Unlock()
	}
}

// writePackage writes one package (QMTP.txt §4): netstring("\n" + message),
// netstring(sender), netstring(netstring(rcpt1) + netstring(rcpt2) + ...).
func (s *session) writePackage(bw *bufio.Writer, p Package) *failure {
	size := p.Message.Size
	var buf []byte
	// Encoding #2 (QMTP.txt §4): "<0a>, the first line, <0a>, the second
	// line, ...": the leading LF is counted in the netstring's length.
	buf = strconv.AppendInt(buf, size+1, 10)
	buf = append(buf, ':', '\n')
	if _, err := bw.Write(buf); err != nil {
		return s.writeFailure(err)
	}
	mr := p.Message.TrackedReader()
	n, err := io.Copy(bw, mr)
	switch {
	case mr.Err != nil:
		return &failure{detail: "reading the message failed: " + mr.Err.Error(), err: mr.Err}
	case err != nil:
		return s.writeFailure(err)
	case n != size:
		err := fmt.Errorf("message is %d bytes, not the %d bytes declared", n, size)
		return &failure{detail: err.Error(), err: err}
	}
	buf = append(buf[:0], ',')
	buf = AppendNetstring(buf, p.Envelope.Sender) // the null sender <> is "0:,"
	var rcpts []byte
	for _, r := range p.Envelope.Recipients {
		rcpts = AppendNetstring(rcpts, r)
	}
	buf = AppendNetstring(buf, string(rcpts))
	if _, err := bw.Write(buf); err != nil {
		return s.writeFailure(err)
	}
	if err := bw.Flush(); err != nil {
		return s.writeFailure(err)
	}
	return nil
}

func (s *session) writeFailure(err error) *failure {
	c := s.c
	switch {
	case s.ctx.Err() != nil:
		return &failure{detail: "canceled: " + s.ctx.Err().Error(), err: s.ctx.Err()}
	case c.closed.Load():
		return &failure{detail: "connection closed by the client", err: net.ErrClosed}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !c.now().Before(c.end) {
			return &failure{detail: c.sessionOver(), err: err}
		}
		return &failure{detail: fmt.Sprintf("timed out after %v sending the package", c.opts.IOTimeout), err: err}
	default:
		return &failure{detail: "sending the package failed: " + err.Error(), err: err}
	}
}

// read reads one reply per recipient, package after package (QMTP.txt §2:
// "one response for each envelope recipient address, in the same order as
// given by the client"). It returns nil when every reply was read, or where
// and why it stopped.
func (s *session) read(pkgs []Package, results [][]relay.Result) *failure {
	c := s.c
	for k, p := range pkgs {
		for i := range p.Envelope.Recipients {
			s.mu.Lock()
			if wf := s.wfail; wf != nil && wf.pkg <= k {
				s.mu.Unlock()
				return at(wf, k, i)
			}
			s.readerPkg, s.reading = k, true
			s.armLocked()
			s.mu.Unlock()

			reply, err := ReadNetstring(c.br, MaxReply)

			s.mu.Lock()
			s.reading = false
			wf := s.wfail
			s.mu.Unlock()
			if err != nil {
				if wf != nil && wf.pkg <= k {
					return at(wf, k, i)
				}
				return at(s.readFailure(err), k, i)
			}
			r := &results[k][i]
			if f := parseReply(reply, r); f != nil {
				return at(f, k, i)
			}
		}
	}
	return nil
}

// at returns a copy of f placed at package k, recipient i.
func at(f *failure, k, i int) *failure {
	g := *f
	g.pkg, g.rcpt, g.placed = k, i, true
	return &g
}

func (s *session) readFailure(err error) *failure {
	c := s.c
	var ne *NetstringError
	switch {
	case s.ctx.Err() != nil:
		return &failure{detail: "canceled: " + s.ctx.Err().Error(), err: s.ctx.Err()}
	case c.closed.Load():
		return &failure{detail: "connection closed by the client", err: net.ErrClosed}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return &failure{detail: "connection closed before the reply for this recipient", err: err}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !c.now().Before(c.end) {
			return &failure{detail: c.sessionOver(), err: err}
		}
		return &failure{detail: fmt.Sprintf("no reply within %v", c.opts.IOTimeout), err: err}
	case errors.As(err, &ne):
		if ne.TooLong {
			return &failure{detail: fmt.Sprintf("protocol error: reply longer than %d bytes", MaxReply), err: err}
		}
		return &failure{detail: "protocol error: malformed reply: " + ne.Reason, err: err}
	default:
		return &failure{detail: "reading the reply failed: " + err.Error(), err: err}
	}
}

var errProtocol = errors.New("qmtp: protocol error")

// parseReply classifies one reply (QMTP.txt §5): K accepted, Z temporary
// failure, D permanent failure; the rest of the reply is a description, which
// in qmail carries an RFC 3463 code as "(#5.1.1)".
func parseReply(reply []byte, r *relay.Result) *failure {
	if len(reply) == 0 {
		return &failure{detail: "protocol error: empty reply", err: errProtocol}
	}
	text := string(reply[1:])
	switch reply[0] {
	case 'K':
		r.Class = relay.Delivered
	case 'Z':
		r.Class = relay.Deferred
	case 'D':
		r.Class = relay.Failed
	default:
		return &failure{detail: fmt.Sprintf("protocol error: reply starts with %q, not K, Z or D", reply[0]), err: errProtocol}
	}
	r.Text = text
	r.Enhanced = relay.ParseEnhanced(text)
	if r.Class == relay.Failed {
		r.Scope = relay.ScopeOf(r.Enhanced)
	}
	return nil
}
