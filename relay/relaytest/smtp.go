package relaytest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions configures an SMTPServer. The zero value is a plain SMTP
// server on 127.0.0.1 without TLS or AUTH.
type SMTPOptions struct {
	// LMTP makes it an LMTP server (RFC 2033): LHLO, and one reply per
	// accepted recipient after DATA.
	LMTP bool
	// Unix listens on a unix socket in a temporary directory instead of TCP.
	Unix bool
	// TLSConfig, when set, offers STARTTLS; with ImplicitTLS the listener
	// speaks TLS from the first byte instead (SMTPS).
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// AuthUser and AuthPassword, when AuthUser is set, offer AUTH with
	// that one account and refuse MAIL before authentication. AUTH is only
	// offered over TLS unless AllowInsecureAuth is set.
	AuthUser, AuthPassword string
	AllowInsecureAuth      bool
	// AuthMechanisms lists the mechanisms offered, from PLAIN, LOGIN,
	// CRAM-MD5 and XOAUTH2 (whose bearer token is AuthPassword); nil means
	// PLAIN only.
	AuthMechanisms []string
	// MaxMessageBytes is advertised with SIZE and enforced (0: no limit).
	MaxMessageBytes int64
	// MaxRecipients, when set, refuses further RCPTs of a transaction with
	// "452 4.5.3" (advertised as LIMITS RCPTMAX).
	MaxRecipients int
	// HideExtensions removes these EHLO keywords (e.g. "CHUNKING",
	// "PIPELINING") from the server's reply. It works on plain-text
	// sessions only (not after STARTTLS, not with ImplicitTLS), and not
	// for SIZE, which go-smtp always sends last.
	HideExtensions []string
	// Debug, when set, receives the protocol transcript.
	Debug io.Writer

	// MailError, when set, may refuse MAIL FROM.
	MailError func(from string, opts *smtp.MailOptions) *smtp.SMTPError
	// RcptError, when set, may refuse a RCPT TO: the one in m.Rcpts[i], the
	// last one so far.
	RcptError func(m *SMTPMessage, i int) *smtp.SMTPError
	// DataError, when set, may refuse the message after DATA. In LMTP mode
	// it is the reply for every recipient LMTPError leaves alone.
	DataError func(m *SMTPMessage) *smtp.SMTPError
	// LMTPError, when set, gives the reply after LMTP DATA for m.Rcpts[i],
	// which is an accepted recipient; nil means the DataError reply, or 250.
	LMTPError func(m *SMTPMessage, i int) *smtp.SMTPError
	// Drop, when set and true for a message whose data has just been read,
	// makes the server close the connection without replying; the message
	// is not recorded.
	Drop func(m *SMTPMessage) bool
}

// SMTPRcpt is one RCPT TO command.
type SMTPRcpt struct {
	To   string
	Opts smtp.RcptOptions
	// Err is the refusal sent for the RCPT command, nil when accepted.
	Err *smtp.SMTPError
	// DataErr is, in LMTP mode, the refusal sent for this recipient after
	// DATA, nil when it was accepted (or not in LMTP mode).
	DataErr *smtp.SMTPError
}

// SMTPMessage is one mail transaction that reached the end of DATA (or of
// the last BDAT chunk).
type SMTPMessage struct {
	Conn int    // connection number, from 1
	Helo string // the EHLO/LHLO/HELO argument
	TLS  bool   // the transaction ran inside TLS
	Auth string // the authenticated user, "" without AUTH

	From     string
	MailOpts smtp.MailOptions
	// Rcpts has every RCPT TO of the transaction, accepted or not, in order.
	Rcpts []SMTPRcpt
	// Data is the message as the server's DATA (dot-unstuffed) or BDAT
	// reader delivered it: line endings are kept as sent, the terminating
	// "." line is not included.
	Data []byte
	// DataErr is the refusal sent after DATA (SMTP mode), nil when accepted.
	DataErr *smtp.SMTPError
}

// Accepted returns the recipients whose RCPT TO was accepted.
func (m *SMTPMessage) Accepted() []string {
	var out []string
	for _, r := range m.Rcpts {
		if r.Err == nil {
			out = append(out, r.To)
		}
	}
	return out
}

func (m SMTPMessage) clone() SMTPMessage {
	m.Rcpts = append([]SMTPRcpt(nil), m.Rcpts...)
	m.Data = append([]byte(nil), m.Data...)
	return m
}

// SMTPServer is an in-process SMTP or LMTP server on go-smtp's server that
// records every message it receives.
type SMTPServer struct {
	opts    SMTPOptions
	srv     *smtp.Server
	network string
	addr    string
	done    chan struct{}

	mu      sync.Mutex
	nconns  int
	msgs    []SMTPMessage
	changed chan struct{}
}

// NewSMTPServer starts an SMTPServer and closes it when the test ends.
func NewSMTPServer(tb testing.TB, opts SMTPOptions) *SMTPServer {
	tb.Helper()
	network, addr := "tcp", "127.0.0.1:0"
	if opts.Unix {
		network, addr = "unix", socketPath(tb, "smtp.sock")
	}
	s, err := StartSMTPServer(network, addr, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// StartSMTPServer starts an SMTPServer on network and addr; opts.Unix is
// ignored. The caller must Close it.
func StartSMTPServer(network, addr string, opts SMTPOptions) (*SMTPServer, error) {
	if opts.ImplicitTLS && opts.TLSConfig == nil {
		return nil, errors.New("relaytest: ImplicitTLS needs a TLSConfig")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("relaytest: %w", err)
	}
	s := &SMTPServer{
		opts:    opts,
		network: network,
		addr:    ln.Addr().String(),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "relaytest.invalid"
	srv.LMTP = opts.LMTP
	srv.Network = network
	srv.EnableDSN = true
	srv.EnableSMTPUTF8 = true
	srv.AllowInsecureAuth = opts.AllowInsecureAuth
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.Debug != nil {
		srv.Debug = opts.Debug
	}
	if len(opts.HideExtensions) > 0 {
		ln = &hideListener{Listener: ln, hide: opts.HideExtensions}
	}
	if !opts.ImplicitTLS {
		srv.TLSConfig = opts.TLSConfig
	} else {
		ln = tls.NewListener(ln, opts.TLSConfig)
	}
	s.srv = srv
	go func() {
		defer close(s.done)
		srv.Serve(ln)
	}()
	return s, nil
}

// Network returns "tcp" or "unix".
func (s *SMTPServer) Network() string { return s.network }

// Addr returns the listening address: "127.0.0.1:port" or the socket path.
func (s *SMTPServer) Addr() string { return s.addr }

// Conns returns the number of sessions started so far.
func (s *SMTPServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconns
}

// Messages returns a copy of the messages recorded so far, in order.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SMTPMessage, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.clone()
	}
	return out
}

// WaitMessages waits until at least n messages are recorded and returns
// them, or fails after timeout.
func (s *SMTPServer) WaitMessages(n int, timeout time.Duration) ([]SMTPMessage, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages(), nil
		}
		select {
		case <-ch:
		case <-s.done:
			return s.Messages(), fmt.Errorf("relaytest: server closed with %d messages, want %d", got, n)
		case <-timer.C:
			return s.Messages(), fmt.Errorf("relaytest: %d messages after %v, want %d", got, timeout, n)
		}
	}
}

// Close closes the listener and every connection, and waits for the
// accept loop to end.
func (s *SMTPServer) Close() error {
	err := s.srv.Close()
	<-s.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *SMTPServer) record(m *SMTPMessage) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m.clone())
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.nconns++
	n := s.nconns
	s.mu.Unlock()
	return &smtpSession{s: s, c: c, conn: n}, nil
}

type smtpSession struct {
	s    *SMTPServer
	c    *smtp.Conn
	conn int
	auth string
	m    *SMTPMessage
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

var errNoTransaction = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}

// asError keeps a nil *SMTPError from becoming a non-nil error.
func asError(e *smtp.SMTPError) error {
	if e == nil {
		return nil
	}
	return e
}

func (se *smtpSession) AuthMechanisms() []string {
	if se.s.opts.AuthUser == "" {
		return nil
	}
	if m := se.s.opts.AuthMechanisms; m != nil {
		return m
	}
	return []string{sasl.Plain}
}

func (se *smtpSession) Auth(mech string) (sasl.Server, error) {
	offered := false
	for _, m := range se.AuthMechanisms() {
		offered = offered || strings.EqualFold(m, mech)
	}
	if !offered {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	o := se.s.opts
	check := func(user, pass string) error {
		if user != o.AuthUser || pass != o.AuthPassword {
			return smtp.ErrAuthFailed
		}
		se.auth = user
		return nil
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return smtp.ErrAuthFailed
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	case "CRAM-MD5":
		return &cramMD5Server{user: o.AuthUser, pass: o.AuthPassword, ok: func() { se.auth = o.AuthUser }}, nil
	case "XOAUTH2":
		return &xoauth2Server{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *smtpSession) Mail(from string, opts *smtp.MailOptions) error {
	if se.s.opts.AuthUser != "" && se.auth == "" {
		return errAuthRequired
	}
	if f := se.s.opts.MailError; f != nil {
		if e := f(from, opts); e != nil {
			return e
		}
	}
	_, tls := se.c.TLSConnectionState()
	se.m = &SMTPMessage{Conn: se.conn, Helo: se.c.Hostname(), TLS: tls, Auth: se.auth, From: from}
	if opts != nil {
		se.m.MailOpts = *opts
	}
	return nil
}

func (se *smtpSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if se.m == nil {
		return errNoTransaction
	}
	r := SMTPRcpt{To: to}
	if opts != nil {
		r.Opts = *opts
		r.Opts.Notify = append([]smtp.DSNNotify(nil), opts.Notify...)
	}
	se.m.Rcpts = append(se.m.Rcpts, r)
	i := len(se.m.Rcpts) - 1
	if f := se.s.opts.RcptError; f != nil {
		se.m.Rcpts[i].Err = f(se.m, i)
	}
	return asError(se.m.Rcpts[i].Err)
}

func (se *smtpSession) readData(r io.Reader) error {
	if se.m == nil {
		return errNoTransaction
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.m.Data = data
	return nil
}

// dropped closes the connection when the Drop hook asks for it.
func (se *smtpSession) dropped() bool {
	if f := se.s.opts.Drop; f != nil && f(se.m) {
		se.m = nil
		se.c.Conn().Close()
		return true
	}
	return false
}

var errDropped = errors.New("relaytest: connection dropped")

// finishData reads the message and takes the transaction out of the
// session, unless the connection is to be dropped.
func (se *smtpSession) finishData(r io.Reader) (*SMTPMessage, error) {
	if err := se.readData(r); err != nil {
		return nil, err
	}
	if se.dropped() {
		return nil, errDropped
	}
	m := se.m
	se.m = nil
	return m, nil
}

func (se *smtpSession) Data(r io.Reader) error {
	m, err := se.finishData(r)
	if err != nil {
		return err
	}
	if f := se.s.opts.DataError; f != nil {
		m.DataErr = f(m)
	}
	se.s.record(m)
	return asError(m.DataErr)
}

// LMTPData gives each accepted recipient its own reply, in RCPT order
// (RFC 2033 §4.2). go-smtp matches statuses to recipients by address; for a
// duplicated address the calls are in order, so each copy gets its own.
func (se *smtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	m, err := se.finishData(r)
	if err != nil {
		return err
	}
	var dataErr *smtp.SMTPError
	if f := se.s.opts.DataError; f != nil {
		dataErr = f(m)
	}
	for i := range m.Rcpts {
		if m.Rcpts[i].Err != nil {
			continue
		}
		e := dataErr
		if f := se.s.opts.LMTPError; f != nil {
			if le := f(m, i); le != nil {
				e = le
			}
		}
		m.Rcpts[i].DataErr = e
	}
	se.s.record(m)
	for _, rc := range m.Rcpts {
		if rc.Err == nil {
			status.SetStatus(rc.To, asError(rc.DataErr))
		}
	}
	return nil
}

func (se *smtpSession) Reset() { se.m = nil }

func (se *smtpSession) Logout() error { return nil }

// loginServer is the server side of LOGIN (draft-murchison-sasl-login):
// "Username:" and "Password:" prompts; a user name sent as the initial
// response skips the first prompt.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	step     int
	haveUser bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch {
	case l.step > 3:
		return nil, false, smtp.ErrAuthFailed
	case !l.haveUser && l.step == 1 && len(response) == 0:
		return []byte("Username:"), false, nil
	case !l.haveUser:
		l.user, l.haveUser = string(response), true
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

// cramMD5Server is the server side of CRAM-MD5 (RFC 2195).
type cramMD5Server struct {
	user, pass string
	ok         func()
	challenge  []byte
}

func (c *cramMD5Server) Next(response []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = []byte(fmt.Sprintf("<%d.%d@relaytest.invalid>", time.Now().UnixNano(), len(c.user)))
		return c.challenge, false, nil
	}
	user, digest, ok := strings.Cut(string(response), " ")
	m := hmac.New(md5.New, []byte(c.pass))
	m.Write(c.challenge)
	want := hex.EncodeToString(m.Sum(nil))
	if !ok || user != c.user || !hmac.Equal([]byte(digest), []byte(want)) {
		return nil, false, smtp.ErrAuthFailed
	}
	c.ok()
	return nil, true, nil
}

// xoauth2Server is the server side of XOAUTH2: a refused token draws a 334
// with a JSON error, and the client's empty answer then gets the 535.
type xoauth2Server struct {
	check  func(user, token string) error
	failed bool
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, false, smtp.ErrAuthFailed
	}
	var user, token string
	for _, f := range bytes.Split(response, []byte{1}) {
		if u, ok := bytes.CutPrefix(f, []byte("user=")); ok {
			user = string(u)
		}
		if t, ok := bytes.CutPrefix(f, []byte("auth=Bearer ")); ok {
			token = string(t)
		}
	}
	if err := x.check(user, token); err != nil {
		x.failed = true
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	return nil, true, nil
}

// hideListener removes EHLO keywords from the server's replies. go-smtp
// writes (and flushes) each reply line on its own, so a continuation line
// "250-KEYWORD..." is one write.
type hideListener struct {
	net.Listener
	hide []string
}

func (l *hideListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &hideConn{Conn: c, hide: l.hide}, nil
}

type hideConn struct {
	net.Conn
	hide []string
}

func (c *hideConn) Write(p []byte) (int, error) {
	if line, ok := bytes.CutPrefix(p, []byte("250-")); ok {
		kw, _, _ := strings.Cut(strings.TrimRight(string(line), "\r\n"), " ")
		for _, h := range c.hide {
			if strings.EqualFold(kw, h) {
				return len(p), nil
			}
		}
	}
	return c.Conn.Write(p)
}
