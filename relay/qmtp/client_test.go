package qmtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// guard bounds how long a fake server waits for the client, so that a broken
// client fails the test instead of hanging it. Nothing is timed against it.
const guard = 20 * time.Second

func message(s string) *relay.Message {
	return &relay.Message{Data: strings.NewReader(s), Size: int64(len(s))}
}

func ns(s string) string { return string(AppendNetstring(nil, s)) }

// fakeServer accepts connections on 127.0.0.1 and runs handle for each.
type fakeServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns int
}

func startFake(t *testing.T, handle func(conn net.Conn)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			conn.SetDeadline(time.Now().Add(guard))
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer conn.Close()
				handle(conn)
			}()
		}
	}()
	t.Cleanup(f.close)
	return f
}

// close stops accepting and waits for the handlers.
func (f *fakeServer) close() {
	f.ln.Close()
	f.wg.Wait()
}

func (f *fakeServer) numConns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakeServer) opts() Options {
	return Options{Address: f.ln.Addr().String(), Name: "qmtp://test"}
}

// readRest reads what the client still sends until it closes.
// startRecorder is a server that reads until the client closes and then
// hands over everything the client wrote.
func startRecorder(t *testing.T) (*fakeServer, <-chan string) {
	t.Helper()
	sent := make(chan string, 1)
	return startFake(t, func(conn net.Conn) { sent <- readRest(conn) }), sent
}

func readRest(conn net.Conn) string {
	b, _ := io.ReadAll(conn)
	return string(b)
}

type want struct {
	class    relay.Class
	text     string
	enhanced string
	scope    relay.Scope
}

func checkResults(t *testing.T, got []relay.Result, rcpts []string, host string, wants []want) {
	t.Helper()
	if len(got) != len(rcpts) {
		t.Fatalf("got %d results for %d recipients: %+v", len(got), len(rcpts), got)
	}
	for i, r := range got {
		w := wants[i]
		if r.Recipient != rcpts[i] || r.Host != host || r.Code != 0 {
			t.Errorf("result %d: recipient %q host %q code %d, want %q %q 0", i, r.Recipient, r.Host, r.Code, rcpts[i], host)
		}
		if r.Class != w.class || r.Text != w.text || r.Enhanced != w.enhanced || r.Scope != w.scope {
			t.Errorf("result %d = {%v %q %q scope %v}, want {%v %q %q scope %v}",
				i, r.Class, r.Text, r.Enhanced, r.Scope, w.class, w.text, w.enhanced, w.scope)
		}
	}
}

// checkTemporary asserts err is a classified temporary error with the
// package prefix.
func checkTemporary(t *testing.T, err error) {
	t.Helper()
	var re *relay.Error
	if !errors.As(err, &re) || re.Class != relay.Deferred {
		t.Fatalf("err = %#v, want a temporary *relay.Error", err)
	}
	if !strings.HasPrefix(err.Error(), "qmtp: ") {
		t.Errorf("error %q lacks the qmtp: prefix", err)
	}
}

// Transcript tests: the fake server checks the exact bytes the client writes
// and plays back exact reply bytes.
func TestTranscripts(t *testing.T) {
	const (
		closedText = "qmtp: connection closed before the reply for this recipient"
		kok        = "Kok 838640135 qp 1390"
	)
	delivered := want{class: relay.Delivered, text: "ok 838640135 qp 1390"}
	tests := []struct {
		name     string
		sender   string
		rcpts    []string
		msg      string
		wantSent string
		replies  string
		want     []want
		wantErr  error // nil: no error; errAny: some temporary error
	}{
		{
			// QMTP.txt §8: sender and recipient list byte for byte.
			name:     "spec example",
			sender:   "God-DSN-37@heaven.af.mil",
			rcpts:    []string{"djb@silverton.berkeley.edu"},
			msg:      "Subject: hi\n\nhello\n",
			wantSent: "20:\nSubject: hi\n\nhello\n,24:God-DSN-37@heaven.af.mil,30:26:djb@silverton.berkeley.edu,,",
			replies:  "21:Kok 838640135 qp 1390,",
			want:     []want{delivered},
		},
		{
			name:     "addresses are raw bytes",
			sender:   "",
			rcpts:    []string{"Hate.The Quoting@silverton.berkeley.edu"},
			msg:      "x\n",
			wantSent: "3:\nx\n,0:,43:39:Hate.The Quoting@silverton.berkeley.edu,,",
			replies:  ns(kok),
			want:     []want{delivered},
		},
		{
			name:     "null sender and K Z D",
			rcpts:    []string{"a@x", "b@y", "c@z"},
			msg:      "x\n",
			wantSent: "3:\nx\n,0:,18:3:a@x,3:b@y,3:c@z,,",
			replies:  ns(kok) + ns("Zqq write error or disk full (#4.3.0)") + ns("Dsorry, no mailbox here by that name. (#5.1.1)"),
			want: []want{
				delivered,
				{class: relay.Deferred, text: "qq write error or disk full (#4.3.0)", enhanced: "4.3.0"},
				{class: relay.Failed, text: "sorry, no mailbox here by that name. (#5.1.1)", enhanced: "5.1.1", scope: relay.RecipientScope},
			},
		},
		{
			name:     "sender refused is message scope",
			sender:   "bad\x00sender",
			rcpts:    []string{"a@x", "b@y"},
			msg:      "",
			wantSent: "1:\n,10:bad\x00sender,12:3:a@x,3:b@y,,",
			replies:  ns("Dunacceptable sender (#5.1.7)") + ns("Dunacceptable sender (#5.1.7)"),
			want: []want{
				{class: relay.Failed, text: "unacceptable sender (#5.1.7)", enhanced: "5.1.7", scope: relay.MessageScope},
				{class: relay.Failed, text: "unacceptable sender (#5.1.7)", enhanced: "5.1.7", scope: relay.MessageScope},
			},
		},
		{
			name:     "duplicates keep their order",
			sender:   "s@x",
			rcpts:    []string{"d@x", "d@x", "e@x"},
			msg:      "a",
			wantSent: "2:\na,3:s@x,18:3:d@x,3:d@x,3:e@x,,",
			replies:  ns("Dno (#5.2.2)") + ns(kok) + ns("Zlater"),
			want: []want{
				{class: relay.Failed, text: "no (#5.2.2)", enhanced: "5.2.2", scope: relay.RecipientScope},
				delivered,
				{class: relay.Deferred, text: "later"},
			},
		},
		{
			name:     "message bytes are sent verbatim",
			sender:   "s@x",
			rcpts:    []string{"r@x"},
			msg:      "a\x00\xff\rb\n\nno final newline",
			wantSent: "24:\na\x00\xff\rb\n\nno final newline,3:s@x,6:3:r@x,,",
			replies:  ns(kok),
			want:     []want{delivered},
		},
		{
			name:     "garbage first byte",
			sender:   "s@x",
			rcpts:    []string{"a@x", "b@x", "c@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,18:3:a@x,3:b@x,3:c@x,,",
			replies:  ns(kok) + ns("Xwhat") + ns(kok),
			want: []want{
				delivered,
				{class: relay.Deferred, text: `qmtp: protocol error: reply starts with 'X', not K, Z or D`},
				{class: relay.Deferred, text: `qmtp: protocol error: reply starts with 'X', not K, Z or D`},
			},
			wantErr: errProtocol,
		},
		{
			name:     "empty reply",
			sender:   "s@x",
			rcpts:    []string{"a@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,6:3:a@x,,",
			replies:  "0:,",
			want:     []want{{class: relay.Deferred, text: "qmtp: protocol error: empty reply"}},
			wantErr:  errProtocol,
		},
		{
			name:     "leading zero in reply length",
			sender:   "s@x",
			rcpts:    []string{"a@x", "b@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,12:3:a@x,3:b@x,,",
			replies:  "05:Kabcd," + ns(kok),
			want: []want{
				{class: relay.Deferred, text: "qmtp: protocol error: malformed reply: leading zero in length"},
				{class: relay.Deferred, text: "qmtp: protocol error: malformed reply: leading zero in length"},
			},
			wantErr: errAny,
		},
		{
			name:     "missing comma",
			sender:   "s@x",
			rcpts:    []string{"a@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,6:3:a@x,,",
			replies:  "3:Kok;",
			want:     []want{{class: relay.Deferred, text: `qmtp: protocol error: malformed reply: ';' where the closing ',' should be`}},
			wantErr:  errAny,
		},
		{
			name:     "not a digit",
			sender:   "s@x",
			rcpts:    []string{"a@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,6:3:a@x,,",
			replies:  "Kok\n",
			want:     []want{{class: relay.Deferred, text: `qmtp: protocol error: malformed reply: unexpected byte 'K' in length`}},
			wantErr:  errAny,
		},
		{
			name:     "reply too long",
			sender:   "s@x",
			rcpts:    []string{"a@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,6:3:a@x,,",
			replies:  "70000:K",
			want:     []want{{class: relay.Deferred, text: "qmtp: protocol error: reply longer than 65536 bytes"}},
			wantErr:  errAny,
		},
		{
			name:     "close after the first of three replies",
			sender:   "s@x",
			rcpts:    []string{"a@x", "b@x", "c@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,18:3:a@x,3:b@x,3:c@x,,",
			replies:  ns(kok),
			want:     []want{delivered, {class: relay.Deferred, text: closedText}, {class: relay.Deferred, text: closedText}},
			wantErr:  io.EOF,
		},
		{
			name:     "close in the middle of a reply",
			sender:   "s@x",
			rcpts:    []string{"a@x", "b@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,12:3:a@x,3:b@x,,",
			replies:  ns(kok) + "21:Kok 8386",
			want:     []want{delivered, {class: relay.Deferred, text: closedText}},
			wantErr:  io.ErrUnexpectedEOF,
		},
		{
			name:     "close without any reply",
			sender:   "s@x",
			rcpts:    []string{"a@x"},
			msg:      "m\n",
			wantSent: "3:\nm\n,3:s@x,6:3:a@x,,",
			replies:  "",
			want:     []want{{class: relay.Deferred, text: closedText}},
			wantErr:  io.EOF,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srvDone := make(chan struct{})
			fake := startFake(t, func(conn net.Conn) {
				defer close(srvDone)
				got := make([]byte, len(tc.wantSent))
				if _, err := io.ReadFull(conn, got); err != nil {
					t.Errorf("server read %q: %v", got, err)
					return
				}
				if string(got) != tc.wantSent {
					t.Errorf("client sent\n%q\nwant\n%q", got, tc.wantSent)
				}
				io.WriteString(conn, tc.replies)
				// A FIN, not a reset: the whole package was read.
				conn.(*net.TCPConn).CloseWrite()
				if rest := readRest(conn); rest != "" {
					t.Errorf("client sent more: %q", rest)
				}
			})
			c, err := Dial(context.Background(), fake.opts())
			if err != nil {
				t.Fatal(err)
			}
			env := &relay.Envelope{Sender: tc.sender, Recipients: tc.rcpts}
			res, err := c.Send(context.Background(), env, message(tc.msg))
			c.Close()
			<-srvDone
			checkResults(t, res, tc.rcpts, "qmtp://test", tc.want)
			switch tc.wantErr {
			case nil:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			case errAny:
				checkTemporary(t, err)
			default:
				checkTemporary(t, err)
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want it to wrap %v", err, tc.wantErr)
				}
			}
			if fake.numConns() != 1 {
				t.Errorf("%d connections, want 1", fake.numConns())
			}
		})
	}
}

var errAny = errors.New("any error")

func TestSessionErrorNamesTheServer(t *testing.T) {
	fake := startFake(t, func(conn net.Conn) {
		io.ReadFull(conn, make([]byte, len("3:\nm\n,3:s@x,12:3:a@x,3:b@x,,")))
		io.WriteString(conn, ns("Kok"))
	})
	c, err := Dial(context.Background(), fake.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Send(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: []string{"a@x", "b@x"}}, message("m\n"))
	want := "qmtp: qmtp://test: connection closed before the reply for this recipient (at recipient 2 of 2)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// A silent server: the client gives up after IOTimeout and defers everyone.
func TestReplyTimeout(t *testing.T) {
	release := make(chan struct{})
	fake := startFake(t, func(conn net.Conn) {
		io.ReadFull(conn, make([]byte, len("3:\nm\n,3:s@x,12:3:a@x,3:b@x,,")))
		<-release
	})
	defer close(release) // runs before fake.close (t.Cleanup)
	opts := fake.opts()
	opts.IOTimeout = 50 * time.Millisecond
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rcpts := []string{"a@x", "b@x"}
	res, err := c.Send(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: rcpts}, message("m\n"))
	text := "qmtp: no reply within 50ms"
	checkResults(t, res, rcpts, "qmtp://test", []want{{text: text}, {text: text}})
	checkTemporary(t, err)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	// The session is unusable now, and says so without writing.
	res, err = c.Send(context.Background(), &relay.Envelope{Sender: "s@x", Recipients: rcpts[:1]}, message("m\n"))
	checkTemporary(t, err)
	if !strings.HasPrefix(res[0].Text, "qmtp: session unusable") {
		t.Errorf("second send: %q", res[0].Text)
	}
}

// A server that never reads: the write deadline fires while the message is
// being streamed.
func TestWriteTimeout(t *testing.T) {
	release := make(chan struct{})
	fake := startFake(t, func(conn net.Conn) { <-release })
	defer close(release)
	opts := fake.opts()
	opts.IOTimeout = 50 * time.Millisecond
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := strings.Repeat("0123456789abcdef", 4<<20) // 64 MiB, more than any socket buffer
	rcpts := []string{"a@x"}
	res, err := c.Send(context.Background(), &relay.Envelope{Recipients: rcpts}, message(big))
	text := "qmtp: timed out after 50ms sending the package"
	checkResults(t, res, rcpts, "qmtp://test", []want{{text: text}})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
}

func TestContextCancel(t *testing.T) {
	got := make(chan struct{})
	fake := startFake(t, func(conn net.Conn) {
		io.ReadFull(conn, make([]byte, len("3:\nm\n,3:s@x,6:3:a@x,,")))
		close(got)
		readRest(conn) // until the client closes
	})
	c, err := Dial(context.Background(), fake.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-got
		cancel()
	}()
	rcpts := []string{"a@x"}
	res, err := c.Send(ctx, &relay.Envelope{Sender: "s@x", Recipients: rcpts}, message("m\n"))
	checkResults(t, res, rcpts, "qmtp://test", []want{{text: "qmtp: canceled: context canceled"}})
	checkTemporary(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// A context that is already done stops Send before it writes anything.
func TestContextDoneBeforeSend(t *testing.T) {
	fake, sent := startRecorder(t)
	c, err := Dial(context.Background(), fake.opts())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := c.Send(ctx, &relay.Envelope{Recipients: []string{"a@x"}}, message("m\n"))
	if !errors.Is(err, context.Canceled) || res[0].Class != relay.Deferred {
		t.Fatalf("res %+v err %v", res, err)
	}
	c.Close()
	if s := <-sent; s != "" {
		t.Errorf("client wrote %q", s)
	}
}

// QMTP.txt §4 needs one or more recipients; qmail-qmtpd answers an empty
// list with nothing, so a client that sent one would hang.
func TestZeroRecipientsWritesNothing(t *testing.T) {
	fake, sent := startRecorder(t)
	c, err := Dial(context.Background(), fake.opts())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(context.Background(), &relay.Envelope{Sender: "s@x"}, message("m\n"))
	if len(res) != 0 || !errors.Is(err, ErrNoRecipients) || !relay.IsPermanent(err) {
		t.Errorf("Send = %+v, %v; want no results and a permanent ErrNoRecipients", res, err)
	}
	// In a batch, one empty package stops the whole batch before any byte.
	all, err := c.SendAll(context.Background(), []Package{
		{Envelope: &relay.Envelope{Recipients: []string{"a@x"}}, Message: message("m\n")},
		{Envelope: &relay.Envelope{}, Message: message("m\n")},
	})
	if !errors.Is(err, ErrNoRecipients) || len(all) != 2 || len(all[0]) != 1 || len(all[1]) != 0 {
		t.Fatalf("SendAll = %+v, %v", all, err)
	}
	if r := all[0][0]; r.Class != relay.Deferred || r.Text != "qmtp: not sent: package without recipients (package 2 of 2)" {
		t.Errorf("first package result %+v", r)
	}
	c.Close()
	if s := <-sent; s != "" {
		t.Errorf("client wrote %q", s)
	}
}

// The session clock: once SessionTimeout has passed, nothing more is sent.
func TestSessionTimeLimit(t *testing.T) {
	fake, sent := startRecorder(t)
	opts := fake.opts()
	opts.SessionTimeout = 10 * time.Second
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return c.end }
	res, err := c.Send(context.Background(), &relay.Envelope{Recipients: []string{"a@x"}}, message("m\n"))
	checkTemporary(t, err)
	if res[0].Text != "qmtp: session time limit of 10s reached" {
		t.Errorf("text %q", res[0].Text)
	}
	c.Close()
	if s := <-sent; s != "" {
		t.Errorf("client wrote %q", s)
	}
}

// deadlineConn records the deadlines the client sets instead of applying
// them.
type deadlineConn struct {
	net.Conn
	mu            sync.Mutex
	reads, writes []time.Time
}

func (d *deadlineConn) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads = append(d.reads, t)
	return nil
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes = append(d.writes, t)
	return nil
}

func (d *deadlineConn) SetDeadline(t time.Time) error {
	d.SetReadDeadline(t)
	return d.SetWriteDeadline(t)
}

// Deadlines are IOTimeout from now, but never past the session's end.
func TestDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name            string
		io, session, at time.Duration // at: the frozen clock, after the start
		want            time.Duration // every deadline, after the start
	}{
		{"io bound", 5 * time.Second, time.Hour, 0, 5 * time.Second},
		{"session bound", time.Hour, 10 * time.Second, 0, 10 * time.Second},
		{"session bound later", 5 * time.Second, 10 * time.Second, 8 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := startFake(t, func(conn net.Conn) {
				io.ReadFull(conn, make([]byte, len("3:\nm\n,0:,12:3:a@x,3:b@x,,")))
				io.WriteString(conn, ns("Kok")+ns("Kok"))
				readRest(conn)
			})
			raw, err := net.Dial("tcp", fake.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			dc := &deadlineConn{Conn: raw}
			c := NewClient(dc, Options{IOTimeout: tc.io, SessionTimeout: tc.session})
			start := c.end.Add(-tc.session)
			c.now = func() time.Time { return start.Add(tc.at) }
			res, err := c.Send(context.Background(), &relay.Envelope{Recipients: []string{"a@x", "b@x"}}, message("m\n"))
			c.Close()
			if err != nil || res[0].Class != relay.Delivered || res[1].Class != relay.Delivered {
				t.Fatalf("Send = %+v, %v", res, err)
			}
			dc.mu.Lock()
			defer dc.mu.Unlock()
			if len(dc.writes) == 0 || len(dc.reads) < 2 {
				t.Fatalf("%d write and %d read deadlines; want a write deadline and one read deadline per reply", len(dc.writes), len(dc.reads))
			}
			// A reply wait that starts before the package is written whole
			// is bounded by the session only, then re-armed once it is.
			end := start.Add(tc.session)
			for _, d := range append(dc.writes, dc.reads...) {
				if got := d.Sub(start); got != tc.want && !d.Equal(end) {
					t.Errorf("deadline at start+%v, want start+%v or the session end", got, tc.want)
				}
			}
			for _, d := range dc.writes {
				if got := d.Sub(start); got != tc.want {
					t.Errorf("write deadline at start+%v, want start+%v", got, tc.want)
				}
			}
			// The last read deadline is the per-reply one, unless the replies
			// arrived before the writer re-armed it: then no wait was left
			// to bound, and the session end was the last one set.
			if last := dc.reads[len(dc.reads)-1]; last.Sub(start) != tc.want && !last.Equal(end) {
				t.Errorf("last read deadline at start+%v, want start+%v", last.Sub(start), tc.want)
			}
		})
	}
}

// NewClient without an Address names the server after the connection.
func TestNewClientName(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := NewClient(a, Options{}).opts.Name; got != "pipe:pipe" {
		t.Errorf("name %q", got)
	}
	if got := NewClient(a, Options{Name: "qmtp://x"}).opts.Name; got != "qmtp://x" {
		t.Errorf("name %q", got)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{Address: "mx:209"}.withDefaults()
	if o.Network != "tcp" || o.DialTimeout != 30*time.Second || o.IOTimeout != time.Minute ||
		o.SessionTimeout != time.Hour || o.Name != "tcp:mx:209" {
		t.Errorf("defaults %+v", o)
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  want
		bad   bool
	}{
		{reply: "Kok 1 qp 2", want: want{class: relay.Delivered, text: "ok 1 qp 2"}},
		{reply: "K", want: want{class: relay.Delivered}},
		{reply: "Z4.2.2 mailbox full", want: want{class: relay.Deferred, text: "4.2.2 mailbox full", enhanced: "4.2.2"}},
		{reply: "Dsorry, that message size exceeds my databytes limit (#5.3.4)", want: want{class: relay.Failed,
			text: "sorry, that message size exceeds my databytes limit (#5.3.4)", enhanced: "5.3.4", scope: relay.MessageScope}},
		{reply: "Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", want: want{class: relay.Failed,
			text: "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", enhanced: "5.7.1", scope: relay.RecipientScope}},
		{reply: "k lower case", bad: true},
		{reply: " K reserved", bad: true},
		{reply: "", bad: true},
	} {
		var r relay.Result
		f := parseReply([]byte(tc.reply), &r)
		if tc.bad {
			if f == nil || !errors.Is(f.err, errProtocol) {
				t.Errorf("%q: accepted as %+v", tc.reply, r)
			}
			continue
		}
		if f != nil {
			t.Errorf("%q: %s", tc.reply, f.detail)
			continue
		}
		if r.Class != tc.want.class || r.Text != tc.want.text || r.Enhanced != tc.want.enhanced || r.Scope != tc.want.scope {
			t.Errorf("%q = %+v, want %+v", tc.reply, r, tc.want)
		}
	}
}

// A spool file that fails or is shorter than its size aborts the package
// without completing it, so that the server throws it away.
func TestMessageReadFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  *relay.Message
		text string
	}{
		{"read error", &relay.Message{Data: failingReaderAt{}, Size: 10}, "qmtp: reading the message failed: disk on fire"},
		{"short file", &relay.Message{Data: bytes.NewReader([]byte("abc")), Size: 10}, "qmtp: message is 3 bytes, not the 10 bytes declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, sent := startRecorder(t)
			c, err := Dial(context.Background(), fake.opts())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rcpts := []string{"a@x"}
			res, err := c.Send(context.Background(), &relay.Envelope{Recipients: rcpts}, tc.msg)
			checkResults(t, res, rcpts, "qmtp://test", []want{{text: tc.text}})
			checkTemporary(t, err)
			c.Close()
			if s := <-sent; strings.HasSuffix(s, ",") {
				t.Errorf("the server got a complete package: %q", s)
			}
		})
	}
}

type failingReaderAt struct{}

func (failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

// Close during a Send aborts it; later sends report the closed connection.
func TestCloseAbortsSend(t *testing.T) {
	got := make(chan struct{})
	fake := startFake(t, func(conn net.Conn) {
		io.ReadFull(conn, make([]byte, len("3:\nm\n,0:,6:3:a@x,,")))
		close(got)
		readRest(conn)
	})
	c, err := Dial(context.Background(), fake.opts())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-got
		c.Close()
	}()
	res, err := c.Send(context.Background(), &relay.Envelope{Recipients: []string{"a@x"}}, message("m\n"))
	checkTemporary(t, err)
	if res[0].Class != relay.Deferred || res[0].Text != "qmtp: connection closed by the client" {
		t.Errorf("result %+v", res[0])
	}
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("err = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
