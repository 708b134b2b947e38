package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// TLSMode says how the connection is protected. The strings are the ones
// relay/smarthost uses.
type TLSMode string

const (
	// TLSNone speaks plain text. The client then never sends a password
	// unless the server is on a unix socket or a loopback address.
	TLSNone TLSMode = "none"
	// TLSStartTLS requires STARTTLS (RFC 3207). A server that does not
	// offer it is a temporary failure: nothing is sent in plain text. The
	// empty TLSMode means TLSStartTLS.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit starts TLS at connect, before the greeting (RFC 8314
	// §3, port 465).
	TLSImplicit TLSMode = "implicit"
)

// The RFC 5321 §4.5.3.2 timeouts, the defaults for zero Timeouts fields.
const (
	DefaultConnectTimeout   = 30 * time.Second
	DefaultGreetingTimeout  = 5 * time.Minute  // §4.5.3.2.1 initial 220 message
	DefaultCommandTimeout   = 5 * time.Minute  // §4.5.3.2.2-3 MAIL, RCPT (and every other command)
	DefaultDataInitTimeout  = 2 * time.Minute  // §4.5.3.2.4 DATA initiation (the 354)
	DefaultDataBlockTimeout = 3 * time.Minute  // §4.5.3.2.5 each data block written
	DefaultDataEndTimeout   = 10 * time.Minute // §4.5.3.2.6 DATA termination, BDAT LAST
)

// Timeouts bound each step of a session; zero fields get the defaults
// above. Connect also bounds the TLS handshake. DataBlock is a write
// deadline, renewed for every block of the message written, so a server that
// stops reading cannot block the client forever.
type Timeouts struct {
	Connect, Greeting, Command, DataInit, DataBlock, DataEnd time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, DefaultConnectTimeout)
	def(&t.Greeting, DefaultGreetingTimeout)
	def(&t.Command, DefaultCommandTimeout)
	def(&t.DataInit, DefaultDataInitTimeout)
	def(&t.DataBlock, DefaultDataBlockTimeout)
	def(&t.DataEnd, DefaultDataEndTimeout)
	return t
}

// Auth configures SMTP AUTH (RFC 4954).
type Auth struct {
	User string
	// Password is called on each connection, so that a rotated secret is
	// picked up; nil means no AUTH. For XOAUTH2 it returns the bearer token.
	Password func() (string, error)
	// Mechanism forces one of "plain", "login", "cram-md5" or "xoauth2".
	// "" picks the strongest one the server offers: CRAM-MD5, then PLAIN,
	// then LOGIN (all only ever over TLS, a unix socket or loopback).
	// XOAUTH2 is only used when forced.
	Mechanism string
}

// Options configures a Client.
type Options struct {
	// Network and Address name the server: "tcp" and "host:port", or
	// "unix" and a socket path. An empty Network means "tcp".
	Network, Address string
	// ServerName is the name the TLS certificate must carry, and the name
	// of the server in messages. The default is the host part of Address.
	ServerName string
	// LMTP speaks LMTP (RFC 2033) instead of SMTP: LHLO, never HELO, and
	// one reply per accepted recipient after the message.
	LMTP bool
	TLS  TLSMode
	// TLSConfig is cloned for each handshake. The caller builds it (roots,
	// client certificate, VerifyConnection for a pin, InsecureSkipVerify
	// for verify=no); nil means the system roots. An empty ServerName is
	// set from ServerName, and MinVersion is raised to TLS 1.2.
	TLSConfig *tls.Config
	// Hostname is the EHLO/LHLO argument. When empty, the client sends the
	// address literal of its end of the connection ("[192.0.2.1]",
	// "[IPv6:2001:db8::1]"; "[127.0.0.1]" on a unix socket), as RFC 5321
	// §4.1.4 asks of a client without a meaningful domain name; never
	// "localhost".
	Hostname string
	Auth     *Auth
	Timeouts Timeouts
	// Transcript receives every protocol line (sendmail -v): "> " for a
	// line sent, "< " for a line received, "* " for events (TLS), "! " for
	// warnings. AUTH payloads are replaced by "[redacted]"; the message
	// itself is summarised in one line, not copied.
	Transcript io.Writer
	// Warn, when set, receives each warning (an 8-bit message for a server
	// without 8BITMIME, DSN requested from a server without DSN, ...).
	Warn func(string)
	// Name names the server in Results and errors, e.g.
	// "smtp://mail.example.com:587". The default is built from the scheme
	// and Address.
	Name string
}

func (o Options) withDefaults() Options {
	if o.Network == "" {
		o.Network = "tcp"
	}
	if o.TLS == "" {
		o.TLS = TLSStartTLS
	}
	o.Timeouts = o.Timeouts.withDefaults()
	if o.Name == "" {
		scheme := "smtp"
		switch {
		case o.LMTP:
			scheme = "lmtp"
		case o.TLS == TLSImplicit:
			scheme = "smtps"
		}
		if o.Network == "unix" {
			o.Name = scheme + ":" + o.Address
		} else {
			o.Name = scheme + "://" + o.Address
		}
	}
	return o
}

// serverName is the host name for TLS: ServerName, else the host part of a
// TCP address.
func (o Options) serverName() string {
	if o.ServerName != "" || o.Network == "unix" {
		return o.ServerName
	}
	if h, _, err := net.SplitHostPort(o.Address); err == nil {
		return h
	}
	return o.Address
}

// host names the server in messages.
func (o Options) host() string {
	if s := o.serverName(); s != "" {
		return s
	}
	return o.Address
}

// check refuses settings that can never work; the errors are permanent.
func (o Options) check() error {
	p := protoName(o.LMTP)
	switch o.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return relay.Permanentf("%s: unknown TLS mode %q (use none, starttls or implicit)", p, o.TLS)
	}
	for i := 0; i < len(o.Hostname); i++ {
		if c := o.Hostname[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return relay.Permanentf("%s: the host name %q is not usable in EHLO (a domain name or an address literal such as [192.0.2.1])", p, o.Hostname)
		}
	}
	if o.LMTP && o.Network != "unix" {
		if _, port, err := net.SplitHostPort(o.Address); err == nil && port == "25" {
			// RFC 2033 §1: LMTP "MUST NOT be used on TCP port 25".
			return relay.Permanentf("lmtp: refusing to speak LMTP to %s: LMTP must not be used on port 25 (RFC 2033 §1)", o.Address)
		}
	}
	if o.Auth != nil {
		switch strings.ToLower(o.Auth.Mechanism) {
		case "", "plain", "login", "cram-md5", "xoauth2":
		default:
			return relay.Permanentf("%s: unknown AUTH mechanism %q (use plain, login, cram-md5 or xoauth2)", p, o.Auth.Mechanism)
		}
	}
	return nil
}

// writeBufferSize is the size of the write buffer: a pipelined group of
// commands up to this size leaves in one write call (and one TCP segment
// train), so that the server does not wait on delayed ACKs between the
// commands of a group. A larger group (over a thousand recipients) is
// written in several calls.
const writeBufferSize = 64 << 10

// Client is one SMTP or LMTP session. Its methods must not be called
// concurrently, except Close, which may be called at any time to abort the
// session. After a failure of the session as a whole (a lost connection, a
// timeout, a 421, a protocol error) the client is unusable: later calls
// return every recipient Deferred.
type Client struct {
	opts  Options
	proto string // "smtp" or "lmtp", the prefix of errors and texts
	host  string // the server in messages
	raw   net.Conn
	conn  net.Conn // raw, or the TLS connection on it
	br    *bufio.Reader
	bw    *bufio.Writer
	// wtimeout is the write deadline the next Write gets, renewed per
	// write: Command for commands, DataBlock while the message is sent.
	wtimeout time.Duration
	hostname string // the EHLO argument

	greeting string
	ext      map[string]string
	helo     bool // the server refused EHLO and took HELO
	tlsState *tls.ConnectionState
	authMech string
	authOK   bool

	// needReset is set once a transaction has been started; the next one
	// begins with RSET.
	needReset bool
	broken    error // why the session is unusable

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Info describes the session, for sendmail -bv.
type Info struct {
	Greeting string // the text of the 220 greeting
	// Extensions maps each EHLO/LHLO keyword, upper-case, to its
	// parameters; empty after a fallback to HELO.
	Extensions    map[string]string
	TLS           *tls.ConnectionState // nil without TLS
	AuthMechanism string               // the mechanism used, upper-case ("CRAM-MD5"), "" if none
	AuthOK        bool
}

// Info returns what the session learned while it was set up.
func (c *Client) Info() Info {
	return Info{
		Greeting:      c.greeting,
		Extensions:    maps.Clone(c.ext),
		TLS:           c.tlsState,
		AuthMechanism: c.authMech,
		AuthOK:        c.authOK,
	}
}

// Dial connects to the server and sets up the session: TLS for
// TLSImplicit, the greeting, EHLO (LHLO for LMTP; HELO when the server
// refuses EHLO with a 5xx), STARTTLS and EHLO again for TLSStartTLS, and
// AUTH when opts.Auth has a Password.
//
// Its errors are classified (relay.ClassOf): a connection or TLS failure, a
// missing STARTTLS or AUTH, a 4xx reply are temporary; a 5xx reply (such as
// a refused password, 535) and a setting that can never work (AUTH without
// TLS to a remote host) are permanent. A refusal carries the *ReplyError.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	conn, err := relay.Dial(ctx, opts.Network, opts.Address, opts.Timeouts.Connect)
	if err != nil {
		return nil, relay.Temporary(protoName(opts.LMTP), &sessionError{
			msg: fmt.Sprintf("cannot connect to %s: %v", opts.Address, unwrapOpError(err)), err: err})
	}
	return NewClient(ctx, conn, opts)
}

// unwrapOpError drops the "dial tcp 127.0.0.1:25: " prefix the caller
// already says.
func unwrapOpError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// NewClient sets up a session, as Dial does, on a connection the caller
// made (through a proxy, or a custom dialer). The client owns conn from
// then on: it is closed when setting up fails, and by Close.
func NewClient(ctx context.Context, conn net.Conn, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if err := opts.check(); err != nil {
		conn.Close()
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// Go's default, but the pipelining depends on it: a group must
		// not wait for the ACK of the previous one (Nagle).
		tc.SetNoDelay(true)
	}
	c := &Client{
		opts:     opts,
		proto:    protoName(opts.LMTP),
		host:     opts.host(),
		raw:      conn,
		conn:     conn,
		wtimeout: opts.Timeouts.Command,
	}
	c.br = bufio.NewReaderSize(connReader{c}, MaxReplyLine)
	c.bw = bufio.NewWriterSize(connWriter{c}, writeBufferSize)
	c.hostname = opts.Hostname
	if c.hostname == "" {
		c.hostname = addressLiteral(conn.LocalAddr())
	}
	stop := context.AfterFunc(ctx, c.abort)
	f := c.start(ctx)
	if !stop() && f == nil {
		f = &failure{msg: c.host + ": canceled", err: ctx.Err()}
	}
	if f != nil {
		if ctx.Err() != nil {
			f = &failure{msg: fmt.Sprintf("%s: canceled: %v", c.host, ctx.Err()), err: ctx.Err()}
		}
		c.closeConn(c.conn)
		return nil, c.wrap(f)
	}
	return c, nil
}

// addressLiteral returns the RFC 5321 §4.1.3 address literal of a local
// address.
func addressLiteral(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP != nil && !ta.IP.IsUnspecified() {
		if ip4 := ta.IP.To4(); ip4 != nil {
			return "[" + ip4.String() + "]"
		}
		return "[IPv6:" + ta.IP.String() + "]"
	}
	return "[127.0.0.1]"
}

// wrap turns a failure into the classified error the API returns.
func (c *Client) wrap(f *failure) error {
	inner := &sessionError{msg: f.msg, err: f.err}
	if f.class == relay.Failed {
		return relay.Permanent(c.proto, inner)
	}
	return relay.Temporary(c.proto, inner)
}

// replyFailure is a failure caused by reply r to cmd, classified by its
// code.
func (c *Client) replyFailure(cmd string, r *reply, msg string) *failure {
	return &failure{class: class(r.Code), msg: msg, err: newReplyError(cmd, r, c.opts.LMTP), reply: r}
}

func (c *Client) start(ctx context.Context) *failure {
	if c.opts.TLS == TLSImplicit {
		if f := c.handshake(ctx); f != nil {
			return f
		}
	}
	r, f := c.read(c.opts.Timeouts.Greeting, "greeting")
	if f != nil {
		return f
	}
	c.greeting = r.Text()
	if r.Code != 220 {
		// RFC 5321 §3.1: after a 554 greeting the client should QUIT.
		c.cmd("QUIT")
		c.flush(c.opts.Timeouts.Command, "QUIT")
		return c.replyFailure("greeting", r, fmt.Sprintf("%s refused the session: %s", c.host, r))
	}
	if f := c.hello(); f != nil {
		return f
	}
	if c.opts.TLS == TLSStartTLS {
		if f := c.startTLS(ctx); f != nil {
			return f
		}
		if f := c.hello(); f != nil {
			return f
		}
	}
	return c.authenticate()
}

// hello sends EHLO, or LHLO for LMTP, and records the extensions. A 5xx to
// EHLO falls back to HELO (RFC 5321 §4.1.4), without extensions. LMTP
// never falls back: a server that refuses LHLO does not speak LMTP
// (RFC 2033 §4.1).
func (c *Client) hello() *failure {
	verb := "EHLO"
	if c.opts.LMTP {
		verb = "LHLO"
	}
	c.cmd(verb + " " + c.hostname)
	if f := c.flush(c.opts.Timeouts.Command, verb); f != nil {
		return f
	}
	r, f := c.read(c.opts.Timeouts.Command, verb)
	if f != nil {
		return f
	}
	if r.Code == 250 {
		c.ext = parseEHLO(r.Lines)
		c.helo = false
		return nil
	}
	if c.opts.LMTP {
		return c.replyFailure(verb, r, fmt.Sprintf("%s refused LHLO %s: %s (is it an LMTP server?)", c.host, c.hostname, r))
	}
	if r.Code/100 != 5 {
		return c.replyFailure(verb, r, fmt.Sprintf("%s refused EHLO %s: %s", c.host, c.hostname, r))
	}
	c.cmd("HELO " + c.hostname)
	if f := c.flush(c.opts.Timeouts.Command, "HELO"); f != nil {
		return f
	}
	r2, f := c.read(c.opts.Timeouts.Command, "HELO")
	if f != nil {
		return f
	}
	if r2.Code != 250 {
		return c.replyFailure("HELO", r2, fmt.Sprintf("%s refused EHLO (%s) and HELO %s: %s", c.host, r, c.hostname, r2))
	}
	c.ext = map[string]string{}
	c.helo = true
	return nil
}

var errInjection = errors.New("data after the STARTTLS reply")

// startTLS upgrades the session (RFC 3207). TLS is required in this mode: a
// server without STARTTLS, or one that refuses it, is a temporary failure,
// because a misconfigured server may be fixed and the mail must not be lost
// or go out in plain text.
func (c *Client) startTLS(ctx context.Context) *failure {
	if _, ok := c.ext["STARTTLS"]; !ok {
		return &failure{msg: fmt.Sprintf("%s does not offer STARTTLS; relaymail requires TLS (use ?tls=none only for a trusted relay)", c.host)}
	}
	c.cmd("STARTTLS")
	if f := c.flush(c.opts.Timeouts.Command, "STARTTLS"); f != nil {
		return f
	}
	r, f := c.read(c.opts.Timeouts.Command, "STARTTLS")
	if f != nil {
		return f
	}
	if r.Code != 220 {
		f := c.replyFailure("STARTTLS", r, fmt.Sprintf("%s refused STARTTLS: %s; relaymail requires TLS (use ?tls=none only for a trusted relay)", c.host, r))
		f.class = relay.Deferred
		return f
	}
	// Bytes already buffered after the 220 were sent in plain text before
	// the handshake: a man in the middle can inject commands or replies
	// there that would be taken as coming through TLS (RFC 3207 §4.2 and
	// §6; the STARTTLS injection flaw, CVE-2011-0411). Abort.
	if n := c.br.Buffered(); n > 0 {
		return &failure{msg: fmt.Sprintf("%s sent %d bytes after its reply to STARTTLS, before the TLS handshake: "+
			"possible command injection, session aborted", c.host, n), err: errInjection}
	}
	return c.handshake(ctx)
}

func (c *Client) tlsConfig() *tls.Config {
	var cfg *tls.Config
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.opts.serverName()
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// handshake starts TLS on the raw connection, and forgets everything
// learned before it (RFC 3207 §4.2: "The client MUST discard any knowledge
// obtained from the server ... which was not obtained from the TLS
// negotiation itself").
func (c *Client) handshake(ctx context.Context) *failure {
	cfg := c.tlsConfig()
	tc := tls.Client(c.raw, cfg)
	c.raw.SetDeadline(time.Now().Add(c.opts.Timeouts.Connect))
	err := tc.HandshakeContext(ctx)
	c.raw.SetDeadline(time.Time{})
	if err != nil {
		name := cfg.ServerName
		if name == "" {
			name = c.host
		}
		return &failure{msg: DescribeTLSError(err, name), err: err}
	}
	c.conn = tc
	st := tc.ConnectionState()
	c.tlsState = &st
	c.ext = nil
	c.br = bufio.NewReaderSize(connReader{c}, MaxReplyLine)
	c.trace("* ", fmt.Sprintf("%s, %s, server name %q", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), cfg.ServerName))
	return nil
}

func (c *Client) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// connReader and connWriter reach the current connection (TLS after
// STARTTLS) through the client. connWriter renews the write deadline
// before every write: go-smtp's client has none, so a server that stops
// reading would block it forever.
type connReader struct{ c *Client }

func (r connReader) Read(p []byte) (int, error) {
	// Acknowledge what arrives at once: see quickAck.
	quickAck(r.c.raw)
	return r.c.conn.Read(p)
}

type connWriter struct{ c *Client }

func (w connWriter) Write(p []byte) (int, error) {
	w.c.conn.SetWriteDeadline(time.Now().Add(w.c.wtimeout))
	return w.c.conn.Write(p)
}

// cmd queues one command line; flush sends what is queued.
func (c *Client) cmd(line string) {
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	c.trace("> ", line)
}

// cmdSecret queues a line that carries credentials; the transcript shows
// shown instead.
func (c *Client) cmdSecret(line, shown string) {
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	c.trace("> ", shown)
}

// flush writes what is queued, in one write call when it fits the buffer,
// with the write deadline d.
func (c *Client) flush(d time.Duration, what string) *failure {
	c.wtimeout = d
	err := c.bw.Flush()
	c.wtimeout = c.opts.Timeouts.Command
	if err != nil {
		return c.writeFailure(err, what, d)
	}
	return nil
}

// read reads the reply to cmd within d.
func (c *Client) read(d time.Duration, cmd string) (*reply, *failure) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	var trace func(string)
	if c.opts.Transcript != nil {
		trace = func(l string) { c.trace("< ", l) }
	}
	r, err := readReply(c.br, trace)
	if err != nil {
		return nil, c.readFailure(err, cmd, d)
	}
	return r, nil
}

func (c *Client) readFailure(err error, cmd string, d time.Duration) *failure {
	var pe *protocolError
	switch {
	case c.closed.Load():
		return &failure{msg: c.host + ": connection closed by the client", err: net.ErrClosed}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &failure{msg: fmt.Sprintf("%s: no reply to %s within %v", c.host, cmd, d), err: err}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return &failure{msg: fmt.Sprintf("%s closed the connection instead of replying to %s", c.host, cmd), err: err}
	case errors.As(err, &pe):
		return &failure{msg: fmt.Sprintf("%s: protocol error in the reply to %s: %v", c.host, cmd, pe), err: err}
	default:
		return &failure{msg: fmt.Sprintf("%s: reading the reply to %s failed: %v", c.host, cmd, unwrapOpError(err)), err: err}
	}
}

func (c *Client) writeFailure(err error, what string, d time.Duration) *failure {
	switch {
	case c.closed.Load():
		return &failure{msg: c.host + ": connection closed by the client", err: net.ErrClosed}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &failure{msg: fmt.Sprintf("%s: timed out after %v sending %s (the server stopped reading)", c.host, d, what), err: err}
	default:
		return &failure{msg: fmt.Sprintf("%s: sending %s failed: %v", c.host, what, unwrapOpError(err)), err: err}
	}
}

func (c *Client) trace(prefix, line string) {
	if w := c.opts.Transcript; w != nil {
		io.WriteString(w, prefix+line+"\n")
	}
}

// warn reports something the user should know that does not stop delivery.
func (c *Client) warn(format string, a ...any) {
	msg := c.proto + ": " + fmt.Sprintf(format, a...)
	if c.opts.Warn != nil {
		c.opts.Warn(msg)
	}
	c.trace("! ", msg)
}

// Quit sends QUIT and closes the connection. It does not wait for the 221:
// once the end-of-data reply has been read the results are final, and
// waiting would cost a round trip for nothing (RFC 5321 §4.1.1.10 has the
// client SHOULD wait; the server has nothing left to tell). Its error, if
// any, is informational: after a successful transaction it is not a
// failure of the delivery.
func (c *Client) Quit() error {
	var err error
	if c.broken == nil && !c.closed.Load() {
		c.cmd("QUIT")
		if f := c.flush(c.opts.Timeouts.Command, "QUIT"); f != nil {
			err = c.wrap(f)
		}
	}
	if cerr := c.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = relay.Temporary(c.proto, cerr)
	}
	return err
}

// Close closes the connection without QUIT. It may be called at any time,
// also concurrently with another method, to abort the session.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.closeConn(c.conn)
	return c.closeErr
}

// abort closes the raw connection at once (context canceled): a blocked
// read or write returns, and no TLS alert is attempted.
func (c *Client) abort() {
	c.closed.Store(true)
	c.closeConn(c.raw)
}

func (c *Client) closeConn(conn net.Conn) {
	c.closeOnce.Do(func() { c.closeErr = conn.Close() })
}
