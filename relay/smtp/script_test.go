package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// guard bounds how long the scripted server lets a read or write block
// without a deadline, so that a broken client fails the test instead of
// hanging it. Nothing is timed against it.
const guard = 20 * time.Second

// turn is one server turn of a scripted session: the client has written
// want (each element one Write call, exactly) since the previous turn and
// now waits for data; the server answers reply.
type turn struct {
	want  []string
	reply string
	// silent: the server says nothing; the client's read blocks until its
	// deadline.
	silent bool
	// eof: after reply, the server closes its end (reads return EOF).
	eof bool
	// stopReading: after reply, the server stops reading; every later
	// client write blocks until its deadline.
	stopReading bool
}

// scriptConn is the client's end of a scripted session. A "turn" is a
// client Read that finds no server data buffered, i.e. one that would
// block for the server: counting them counts round trips.
type scriptConn struct {
	t      *testing.T
	turns  []turn
	local  net.Addr
	remote net.Addr

	mu          sync.Mutex
	next        int      // index of the next turn
	writes      []string // write calls since the last turn
	all         []string // every write call
	rbuf        []byte
	eof         bool
	stopped     bool // the server stopped reading
	closed      bool
	rdl, wdl    time.Time
	wake        chan struct{}
	deadWrites  int // writes that blocked until their deadline
	deadReads   int // reads that blocked until their deadline
	wdlAtBlock  time.Time
	wdlSetCount int
}

func newScript(t *testing.T, turns ...turn) *scriptConn {
	return &scriptConn{
		t:      t,
		turns:  turns,
		local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25},
		wake:   make(chan struct{}),
	}
}

func (s *scriptConn) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// waitLocked waits, with s.mu held on entry and exit, until woken or the
// deadline (*dl) passes.
func (s *scriptConn) waitLocked(dl *time.Time, what string) error {
	start := time.Now()
	for {
		if s.closed {
			return net.ErrClosed
		}
		d := *dl
		if !d.IsZero() && !time.Now().Before(d) {
			return os.ErrDeadlineExceeded
		}
		wait := guard - time.Since(start)
		if !d.IsZero() {
			wait = time.Until(d)
		} else if wait <= 0 {
			s.t.Errorf("scripted server: the client %s without a deadline for %v", what, guard)
			return errors.New("scriptConn: guard expired")
		}
		ch := s.wake
		s.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
		s.mu.Lock()
	}
}

func (s *scriptConn) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	if len(s.rbuf) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		if s.next >= len(s.turns) {
			s.t.Errorf("scripted server: the client reads past the end of the script (after writing %q)", s.writes)
			return 0, io.EOF
		}
		tr := s.turns[s.next]
		s.next++
		if !equalWrites(s.writes, tr.want) {
			s.t.Errorf("scripted server, turn %d: the client wrote\n  %q\nwant\n  %q", s.next, s.writes, tr.want)
			s.eof = true
			return 0, io.EOF
		}
		s.writes = nil
		if tr.silent {
			err := s.waitLocked(&s.rdl, "waits for a reply")
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.deadReads++
			}
			return 0, err
		}
		s.rbuf = []byte(tr.reply)
		s.eof = tr.eof
		s.stopped = tr.stopReading
	}
	n := copy(p, s.rbuf)
	s.rbuf = s.rbuf[n:]
	return n, nil
}

func equalWrites(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func (s *scriptConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	if s.stopped {
		s.wdlAtBlock = s.wdl
		err := s.waitLocked(&s.wdl, "writes to a server that stopped reading")
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.deadWrites++
		}
		return 0, err
	}
	s.writes = append(s.writes, string(p))
	s.all = append(s.all, string(p))
	return len(p), nil
}

func (s *scriptConn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.wakeLocked()
	return nil
}

func (s *scriptConn) LocalAddr() net.Addr  { return s.local }
func (s *scriptConn) RemoteAddr() net.Addr { return s.remote }

func (s *scriptConn) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *scriptConn) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdl = t
	s.wakeLocked()
	return nil
}

func (s *scriptConn) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wdl = t
	if !t.IsZero() {
		s.wdlSetCount++
	}
	s.wakeLocked()
	return nil
}

// turnsTaken is the number of server turns so far.
func (s *scriptConn) turnsTaken() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// done checks that the whole script was played and that the client wrote
// trailing (write calls) after the last turn.
func (s *scriptConn) done(trailing ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != len(s.turns) {
		s.t.Errorf("the client stopped after turn %d of %d", s.next, len(s.turns))
	}
	if !equalWrites(s.writes, trailing) {
		s.t.Errorf("after the last turn the client wrote\n  %q\nwant\n  %q", s.writes, trailing)
	}
}

// Test fixtures.

const (
	greet220 = "220 mx.test ESMTP ready\r\n"
	ehloPC   = "250-mx.test hello\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
	ehloP    = "250-mx.test hello\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
	ehloNone = "250 mx.test hello\r\n"
)

func testOptions() Options {
	return Options{
		Network:  "tcp",
		Address:  "mx.test:25",
		TLS:      TLSNone,
		Hostname: "client.example",
		Name:     "smtp://mx.test:25",
	}
}

// message builds a stored message from LF text, as intake leaves it.
func message(s string) *relay.Message {
	m := &relay.Message{Data: strings.NewReader(s), Size: int64(len(s))}
	for _, line := range strings.SplitAfter(s, "\n") {
		if len(strings.TrimSuffix(line, "\n")) > 998 {
			m.LongLines = true
		}
	}
	m.EightBit = !relay.IsASCII(s)
	return m
}

func envelope(from string, to ...string) *relay.Envelope {
	return &relay.Envelope{Sender: from, Recipients: to}
}

// dial sets up a client on the script; it fails the test on error.
func dial(t *testing.T, sc *scriptConn, opts Options) *Client {
	t.Helper()
	c, err := NewClient(context.Background(), sc, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// rcptLines is "RCPT TO:<addr>\r\n" for each address.
func rcptLines(addrs ...string) string {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "RCPT TO:<%s>\r\n", a)
	}
	return b.String()
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

// checkResult compares the fields of a result that matter.
func checkResult(t *testing.T, got relay.Result, rcpt string, cl relay.Class, code int, enhanced string) {
	t.Helper()
	if got.Recipient != rcpt || got.Class != cl || got.Code != code || got.Enhanced != enhanced {
		t.Errorf("result %+v, want recipient %q class %v code %d enhanced %q", got, rcpt, cl, code, enhanced)
	}
}
