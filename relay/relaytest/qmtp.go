package relaytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/qmtp"
)

// QMTPPackage is one package a QMTPServer received completely.
type QMTPPackage struct {
	// N is the order in which the server recorded the package, from 1,
	// across all connections.
	N int
	// Conn is the connection number, from 1, in the order the server
	// accepted them; Seq is the package's number on its connection, from 1.
	Conn, Seq int
	// Encoding is the first byte of the message netstring: '\n' for encoding
	// #2, '\r' for encoding #1 (QMTP.txt §4).
	Encoding byte
	// Message is the message as qmail-qmtpd would store it: without the
	// encoding byte, and for encoding #1 with every CR LF turned into LF
	// (a CR not followed by LF is kept).
	Message []byte
	// Sender is the envelope sender, "" for <>.
	Sender     string
	Recipients []string
	// Replies are the replies sent, in order, each without its netstring
	// framing (e.g. "Kok 1700000000 qp 12"). There are fewer replies than
	// recipients when the script closed the connection or stalled.
	Replies []string
}

func (p QMTPPackage) clone() QMTPPackage {
	p.Message = bytes.Clone(p.Message)
	p.Recipients = append([]string(nil), p.Recipients...)
	p.Replies = append([]string(nil), p.Replies...)
	return p
}

type actionKind int

const (
	actDefault actionKind = iota
	actReply
	actClose
	actStall
	actCloseAfter
)

// QMTPAction is what a QMTPServer does at one point of a package. The zero
// value means "do what qmail-qmtpd would do".
type QMTPAction struct {
	kind  actionKind
	reply string
	n     int64
}

// Reply answers a recipient with code ("K", "Z" or "D"; anything else is sent
// as it is, for testing clients against broken servers) followed by text.
func Reply(code, text string) QMTPAction { return QMTPAction{kind: actReply, reply: code + text} }

// CloseConn closes the connection instead of answering the recipient; the
// replies to earlier recipients of the package are sent first. As a
// BeforePackage action it closes the connection before reading the package.
func CloseConn() QMTPAction { return QMTPAction{kind: actClose} }

// Stall stops reading and replying on the connection until the server is
// closed. The replies to earlier recipients of the package are sent first.
func Stall() QMTPAction { return QMTPAction{kind: actStall} }

// CloseAfter, as a BeforePackage action, closes the connection after reading
// n bytes of the package. A package cut off that way is thrown away
// (QMTP.txt §2). If the package is n bytes or shorter it was received whole:
// it is recorded, and the connection is closed before the first reply.
func CloseAfter(n int64) QMTPAction { return QMTPAction{kind: actCloseAfter, n: n} }

// QMTPServer is an in-process QMTP server that behaves like qmail-qmtpd and
// records what it receives. Set the hook fields before any client sends;
// the server reads them only after data has arrived from a client.
type QMTPServer struct {
	// Script, when set, chooses the action for recipient i (from 0) of p,
	// once p has been read whole. The zero QMTPAction gives the default
	// reply: "Kok <unix-time> qp <n>" like qmail, or qmail's D replies for a
	// sender or recipient of 1000 bytes or more or with a NUL in it.
	Script func(p *QMTPPackage, i int) QMTPAction
	// BeforePackage, when set, is called when the first byte of a package
	// has arrived, before the package is read, with only p.Conn and p.Seq
	// set. It may return CloseAfter, CloseConn or Stall.
	BeforePackage func(p *QMTPPackage) QMTPAction
	// OnPackage, when set, is called with each package as it is recorded,
	// before any reply to it is sent. Calls for different connections may run
	// concurrently.
	OnPackage func(p QMTPPackage)
	// MaxMessage caps the message netstring's length; a longer one is a
	// protocol error (the connection is closed without a reply). The default
	// is qmail-qmtpd's 200000000.
	MaxMessage int64
	// MaxEnvelope caps the sender netstring and the recipient-list netstring
	// (default 1 MiB).
	MaxEnvelope int64

	network, addr string
	ln            net.Listener
	done          chan struct{}
	wg            sync.WaitGroup
	closeOnce     sync.Once

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{}
	nconns  int
	qp      int
	pkgs    []QMTPPackage
	changed chan struct{} // closed and replaced whenever pkgs grows
}

// NewQMTPServer starts a QMTPServer on 127.0.0.1 with a random port and
// closes it when the test ends.
func NewQMTPServer(tb testing.TB) *QMTPServer {
	tb.Helper()
	s, err := StartQMTPServer("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// NewUnixQMTPServer starts a QMTPServer on a unix socket in a temporary
// directory and closes it when the test ends.
func NewUnixQMTPServer(tb testing.TB) *QMTPServer {
	tb.Helper()
	s, err := StartQMTPServer("unix", socketPath(tb, "qmtp.sock"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// StartQMTPServer starts a QMTPServer listening on network ("tcp" or "unix")
// and addr. The caller must Close it.
func StartQMTPServer(network, addr string) (*QMTPServer, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("relaytest: %w", err)
	}
	s := &QMTPServer{
		network: network,
		addr:    ln.Addr().String(),
		ln:      ln,
		done:    make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
		changed: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Network returns "tcp" or "unix".
func (s *QMTPServer) Network() string { return s.network }

// Addr returns the address the server listens on: "127.0.0.1:port" or the
// socket path.
func (s *QMTPServer) Addr() string { return s.addr }

// Conns returns the number of connections accepted so far.
func (s *QMTPServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconns
}

// Packages returns a copy of the packages recorded so far, in order.
func (s *QMTPServer) Packages() []QMTPPackage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]QMTPPackage, len(s.pkgs))
	for i, p := range s.pkgs {
		out[i] = p.clone()
	}
	return out
}

// WaitPackages waits until at least n packages are recorded and returns
// them. It fails when timeout passes first or the server is closed first.
func (s *QMTPServer) WaitPackages(n int, timeout time.Duration) ([]QMTPPackage, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.pkgs), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Packages(), nil
		}
		select {
		case <-ch:
		case <-s.done:
			return s.Packages(), fmt.Errorf("relaytest: server closed with %d packages, want %d", got, n)
		case <-timer.C:
			return s.Packages(), fmt.Errorf("relaytest: %d packages after %v, want %d", got, timeout, n)
		}
	}
}

// Close stops the server: it closes the listener and every connection
// (ending stalls) and waits for its goroutines. A unix socket file is
// removed.
func (s *QMTPServer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

func (s *QMTPServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.nconns++
		n := s.nconns
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(conn, n)
			conn.Close()
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}

// serve runs one connection: package after package until the client
// closes, a protocol error, or a scripted close. Like qmail-qmtpd it never
// replies to a package before it has read the package's final byte, and it
// closes the connection without a reply on a protocol error ("badproto").
func (s *QMTPServer) serve(conn net.Conn, connNo int) {
	br := bufio.NewReader(conn)
	bw := bufio.NewWriter(conn)
	for seq := 1; ; seq++ {
		// Wait for the package's first byte before looking at the hooks: a
		// client that closes here simply ends the session, and the hooks,
		// set by the test before its client wrote anything, are read after
		// that write (which the race detector sees as synchronisation).
		if _, err := br.Peek(1); err != nil {
			return
		}
		p := &QMTPPackage{Conn: connNo, Seq: seq}
		r := br
		cut := false
		if s.BeforePackage != nil {
			switch a := s.BeforePackage(p); a.kind {
			case actClose:
				return
			case actStall:
				<-s.done
				return
			case actCloseAfter:
				// A reader of its own that cannot see past n bytes; the
				// connection is closed after this package anyway.
				r = bufio.NewReader(io.LimitReader(br, a.n))
				cut = true
			}
		}
		if !s.readPackage(r, p) {
			return
		}

		end := CloseConn()
		if !cut {
			end = s.replies(p)
		}
		s.record(p)

		for _, r := range p.Replies {
			bw.Write(qmtp.AppendNetstring(nil, r))
		}
		if bw.Flush() != nil {
			return
		}
		switch end.kind {
		case actClose, actCloseAfter:
			return
		case actStall:
			<-s.done
			return
		}
	}
}

// replies fills p.Replies from the script and the defaults, up to the first
// action that is not a reply, and returns that action (the zero action when
// every recipient gets a reply).
func (s *QMTPServer) replies(p *QMTPPackage) QMTPAction {
	ok := ""
	for i, rcpt := range p.Recipients {
		a := QMTPAction{}
		if s.Script != nil {
			a = s.Script(p, i)
		}
		if a.kind == actDefault {
			switch {
			// qmail-qmtpd.c: a sender of 1000 bytes or more, or with a
			// NUL, fails every recipient; so does such a recipient.
			case len(p.Sender) >= 1000 || strings.IndexByte(p.Sender, 0) >= 0:
				a = Reply("D", "unacceptable sender (#5.1.7)")
			case len(rcpt) >= 1000 || strings.IndexByte(rcpt, 0) >= 0:
				a = Reply("D", "sorry, I can't handle that recipient (#5.1.3)")
			default:
				// Every accepted recipient of a package gets the same
				// reply, naming the qmail-queue process; a per-server
				// counter stands in for its pid.
				if ok == "" {
					s.mu.Lock()
					s.qp++
					ok = fmt.Sprintf("ok %d qp %d", time.Now().Unix(), s.qp)
					s.mu.Unlock()
				}
				a = Reply("K", ok)
			}
		}
		if a.kind != actReply {
			return a
		}
		p.Replies = append(p.Replies, a.reply)
	}
	return QMTPAction{}
}

func (s *QMTPServer) record(p *QMTPPackage) {
	s.mu.Lock()
	p.N = len(s.pkgs) + 1
	s.pkgs = append(s.pkgs, p.clone())
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if s.OnPackage != nil {
		s.OnPackage(p.clone())
	}
}

// readPackage reads one package into p (QMTP.txt §4). It returns false at a
// clean end of input, when the package was cut off (it is then thrown away,
// QMTP.txt §2), and on a protocol error.
func (s *QMTPServer) readPackage(r *bufio.Reader, p *QMTPPackage) bool {
	maxMsg := s.MaxMessage
	if maxMsg <= 0 {
		maxMsg = 200000000
	}
	maxEnv := s.MaxEnvelope
	if maxEnv <= 0 {
		maxEnv = 1 << 20
	}
	n, err := qmtp.ReadNetstringLength(r, maxMsg)
	if err != nil || n == 0 { // qmail-qmtpd: a zero-length message is badproto
		return false
	}
	enc, err := r.ReadByte()
	if err != nil || (enc != '\n' && enc != '\r') {
		return false
	}
	p.Encoding = enc
	var msg bytes.Buffer
	body := io.LimitReader(r, n-1)
	if enc == '\n' {
		// Encoding #2 is stored verbatim.
		if got, err := io.Copy(&msg, body); err != nil || got != n-1 {
			return false
		}
	} else if !decodeCRLF(&msg, body, n-1) {
		return false
	}
	p.Message = msg.Bytes()
	if qmtp.ReadNetstringEnd(r) != nil {
		return false
	}
	sender, err := qmtp.ReadNetstring(r, maxEnv)
	if err != nil {
		return false
	}
	p.Sender = string(sender)
	list, err := qmtp.ReadNetstring(r, maxEnv)
	if err != nil {
		return false
	}
	lr := bufio.NewReader(bytes.NewReader(list))
	for {
		rcpt, err := qmtp.ReadNetstring(lr, maxEnv)
		if err == io.EOF {
			break
		}
		if err != nil {
			return false
		}
		p.Recipients = append(p.Recipients, string(rcpt))
	}
	return true
}

// decodeCRLF stores encoding #1 ("<0d>, the first line, <0d 0a>, the second
// line, ...") as qmail-qmtpd does: CR LF becomes LF, a lone CR stays.
func decodeCRLF(dst *bytes.Buffer, r io.Reader, n int64) bool {
	br := bufio.NewReader(r)
	cr := false
	for i := int64(0); i < n; i++ {
		c, err := br.ReadByte()
		if err != nil {
			return false
		}
		switch {
		case c == '\r':
			if cr {
				dst.WriteByte('\r')
			}
			cr = true
			continue
		case cr && c != '\n':
			dst.WriteByte('\r')
		}
		cr = false
		dst.WriteByte(c)
	}
	if cr {
		dst.WriteByte('\r')
	}
	return true
}

// socketPath returns a path for a unix socket in a temporary directory,
// falling back to a shorter directory when the test's one is too long for a
// socket address (108 bytes on Linux).
func socketPath(tb testing.TB, name string) string {
	tb.Helper()
	p := tb.TempDir() + "/" + name
	if len(p) < 100 {
		return p
	}
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir + "/" + name
}
