package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/qmtp"
	"github.com/relaymail/relaymail/relay/relaytest"
	"github.com/relaymail/relaymail/relay/smtp"
)

func qmtpRelayer(s *relaytest.QMTPServer) relay.Relayer {
	return &qmtp.Relayer{Options: qmtp.Options{Network: s.Network(), Address: s.Addr()}}
}

func smtpRelayer(s *relaytest.SMTPServer, lmtp bool) relay.Relayer {
	return &smtp.Relayer{Options: smtp.Options{Network: s.Network(), Address: s.Addr(), TLS: smtp.TLSNone, LMTP: lmtp}}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func run(t *testing.T, q *Queue, ro RunOptions) Stats {
	t.Helper()
	st, err := q.Run(context.Background(), ro)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return st
}

func states(e *Entry) string {
	var out []string
	for _, r := range e.Recipients {
		s := r.Addr + "=" + r.State.String()
		if r.Reply != "" {
			s += " (" + r.Reply + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

var errFull = &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}

// A 452 for one recipient keeps only that recipient pending, and the next
// run sends only it: the delivered ones are never sent again.
func TestRunPartialDelivery(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		name := "SMTP RCPT 452"
		if lmtp {
			name = "LMTP 452 after DATA"
		}
		t.Run(name, func(t *testing.T) {
			var full atomic.Bool
			full.Store(true)
			refuse := func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
				if full.Load() && m.Rcpts[i].To == "bob@example.org" {
					return errFull
				}
				return nil
			}
			opts := relaytest.SMTPOptions{LMTP: lmtp, RcptError: refuse}
			if lmtp {
				opts = relaytest.SMTPOptions{LMTP: true, LMTPError: refuse}
			}
			s := relaytest.NewSMTPServer(t, opts)
			q, clk := newQueue(t, Options{})
			e := enqueue(t, q, "alice@example.com", "carol@example.org", "bob@example.org", "dave@example.org")
			ro := RunOptions{Relayers: []relay.Relayer{smtpRelayer(s, lmtp)}}

			st := run(t, q, ro)
			if want := (Stats{Messages: 1, Delivered: 2, Deferred: 1, Connections: 1}); st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
			got := entryByID(t, q, e.ID)
			want := "carol@example.org=delivered (250 2.0.0 OK: queued), bob@example.org=pending (452 4.2.2 mailbox full), dave@example.org=delivered (250 2.0.0 OK: queued)"
			if lmtp { // go-smtp's LMTP replies name the recipient
				want = "carol@example.org=delivered (250 2.0.0 <carol@example.org> OK: queued), bob@example.org=pending (452 4.2.2 <bob@example.org> mailbox full), dave@example.org=delivered (250 2.0.0 <dave@example.org> OK: queued)"
			}
			if states(got) != want {
				t.Errorf("states\n %s\nwant\n %s", states(got), want)
			}
			if got.Attempts != 1 || !got.LastAttempt.Equal(t0) || !got.NextAttempt.Equal(t0.Add(time.Minute)) {
				t.Errorf("attempts %d, last %v, next %v", got.Attempts, got.LastAttempt, got.NextAttempt)
			}

			full.Store(false)
			if st := run(t, q, ro); st.Messages != 0 || len(s.Messages()) != 1 {
				t.Errorf("a run before the message was due tried it: %+v", st)
			}
			clk.Advance(time.Minute)
			if st := run(t, q, ro); st != (Stats{Messages: 1, Delivered: 1, Connections: 1}) {
				t.Errorf("second run: %+v", st)
			}
			msgs := s.Messages()
			if len(msgs) != 2 || !reflect.DeepEqual(msgs[1].Accepted(), []string{"bob@example.org"}) || len(msgs[1].Rcpts) != 1 {
				t.Fatalf("the second run sent %+v, want bob only", msgs[len(msgs)-1].Rcpts)
			}
			if string(msgs[1].Data) != strings.ReplaceAll(testMessage("alice@example.com", e.recipientAddrs()), "\n", "\r\n") {
				t.Errorf("message %q", msgs[1].Data)
			}
			if f := files(t, q); len(f) != 0 {
				t.Errorf("left behind: %v", f)
			}
		})
	}
}

func (e *Entry) recipientAddrs() []string {
	var out []string
	for _, r := range e.Recipients {
		out = append(out, r.Addr)
	}
	return out
}

func TestRunFailover(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		second := relaytest.NewQMTPServer(t)
		q, _ := newQueue(t, Options{})
		enqueue(t, q, "a@x", "b@y")
		enqueue(t, q, "a@x", "c@y")
		dead := &qmtp.Relayer{Options: qmtp.Options{Address: deadAddr(t)}}
		st := run(t, q, RunOptions{Relayers: []relay.Relayer{dead, qmtpRelayer(second)}})
		if st != (Stats{Messages: 2, Delivered: 2, Connections: 1}) {
			t.Errorf("stats %+v", st)
		}
		if len(second.Packages()) != 2 || len(listAll(t, q)) != 0 {
			t.Errorf("second smarthost got %d packages; queue %v", len(second.Packages()), files(t, q))
		}
	})
	t.Run("every recipient deferred", func(t *testing.T) {
		first, second := relaytest.NewQMTPServer(t), relaytest.NewQMTPServer(t)
		first.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
			return relaytest.Reply("Z", "try later (#4.3.0)")
		}
		q, _ := newQueue(t, Options{})
		enqueue(t, q, "a@x", "b@y", "c@y")
		st := run(t, q, RunOptions{Relayers: []relay.Relayer{qmtpRelayer(first), qmtpRelayer(second)}})
		if st != (Stats{Messages: 1, Delivered: 2, Connections: 2}) {
			t.Errorf("stats %+v", st)
		}
		if p := second.Packages(); len(p) != 1 || len(p[0].Recipients) != 2 {
			t.Errorf("second smarthost got %+v", p)
		}
	})
	t.Run("session dropped after one recipient", func(t *testing.T) {
		first, second := relaytest.NewQMTPServer(t), relaytest.NewQMTPServer(t)
		first.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
			if i == 1 {
				return relaytest.CloseConn()
			}
			return relaytest.QMTPAction{}
		}
		q, _ := newQueue(t, Options{})
		enqueue(t, q, "a@x", "b@y", "c@y", "d@y")
		st := run(t, q, RunOptions{Relayers: []relay.Relayer{qmtpRelayer(first), qmtpRelayer(second)}})
		if st != (Stats{Messages: 1, Delivered: 3, Connections: 2}) {
			t.Errorf("stats %+v", st)
		}
		if p := second.Packages(); len(p) != 1 || !reflect.DeepEqual(p[0].Recipients, []string{"c@y", "d@y"}) {
			t.Errorf("second smarthost got %+v, want c@y and d@y only", p)
		}
	})
	t.Run("partly deferred: no failover", func(t *testing.T) {
		first, second := relaytest.NewQMTPServer(t), relaytest.NewQMTPServer(t)
		first.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
			if p.Recipients[i] == "c@y" {
				return relaytest.Reply("Z", "mailbox full (#4.2.2)")
			}
			return relaytest.QMTPAction{}
		}
		q, _ := newQueue(t, Options{})
		e := enqueue(t, q, "a@x", "b@y", "c@y")
		st := run(t, q, RunOptions{Relayers: []relay.Relayer{qmtpRelayer(first), qmtpRelayer(second)}})
		if st != (Stats{Messages: 1, Delivered: 1, Deferred: 1, Connections: 1}) {
			t.Errorf("stats %+v", st)
		}
		if len(second.Packages()) != 0 {
			t.Error("the second smarthost was tried")
		}
		got := entryByID(t, q, e.ID)
		if !strings.HasPrefix(states(got), "b@y=delivered (") || !strings.HasSuffix(states(got), "c@y=pending (mailbox full (#4.2.2))") {
			t.Errorf("states %s", states(got))
		}
	})
	t.Run("all smarthosts fail", func(t *testing.T) {
		q, _ := newQueue(t, Options{})
		e := enqueue(t, q, "a@x", "b@y")
		dead1 := &qmtp.Relayer{Options: qmtp.Options{Address: deadAddr(t)}}
		dead2 := &smtp.Relayer{Options: smtp.Options{Address: deadAddr(t), TLS: smtp.TLSNone}}
		st := run(t, q, RunOptions{Relayers: []relay.Relayer{dead1, dead2}})
		if st != (Stats{Messages: 1, Deferred: 1}) {
			t.Errorf("stats %+v", st)
		}
		got := entryByID(t, q, e.ID)
		if got.Recipients[0].State != Pending || !strings.Contains(got.Recipients[0].Reply, "refused") || got.Attempts != 1 {
			t.Errorf("entry %+v", got)
		}
	})
}

// fakeRelayer answers every recipient with one class and records what it
// was given. It has no sessions: the runner calls Relay per message.
type fakeRelayer struct {
	name  string
	class relay.Class
	mu    sync.Mutex
	calls [][]string
}

func (f *fakeRelayer) Relay(ctx context.Context, env *relay.Envelope, msg *relay.Message) ([]relay.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, env.Recipients)
	f.mu.Unlock()
	var out []relay.Result
	for _, r := range env.Recipients {
		out = append(out, relay.Result{Recipient: r, Class: f.class, Text: "fake " + f.class.String()})
	}
	return out, nil
}

func (f *fakeRelayer) String() string { return f.name }

// downRelayer can keep sessions, but cannot connect.
type downRelayer struct {
	fakeRelayer
	opens atomic.Int32
}

func (d *downRelayer) Open(ctx context.Context) (relay.Session, error) {
	d.opens.Add(1)
	return nil, relay.Temporary("fake", syscall.ECONNREFUSED)
}

func TestRunWithoutSessions(t *testing.T) {
	q, _ := newQueue(t, Options{})
	for i := 0; i < 3; i++ {
		enqueue(t, q, "a@x", fmt.Sprintf("r%d@y", i))
	}
	down := &downRelayer{fakeRelayer: fakeRelayer{name: "down"}}
	plain := &fakeRelayer{name: "plain", class: relay.Delivered}
	st := run(t, q, RunOptions{Relayers: []relay.Relayer{down, plain}})
	if st != (Stats{Messages: 3, Delivered: 3, Connections: 3}) {
		t.Errorf("stats %+v", st)
	}
	if n := down.opens.Load(); n != 1 {
		t.Errorf("a smarthost that cannot be reached was tried %d times in one run", n)
	}
	if len(plain.calls) != 3 {
		t.Errorf("plain relayer called %d times", len(plain.calls))
	}
}

func TestRunNoRelayers(t *testing.T) {
	q, _ := newQueue(t, Options{})
	enqueue(t, q, "a@x", "b@y")
	os.WriteFile(q.path("tmp", "stale"), nil, 0o600)
	os.Chtimes(q.path("tmp", "stale"), t0.Add(-48*time.Hour), t0.Add(-48*time.Hour))
	before := files(t, q)
	st, err := q.Run(context.Background(), RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "no smarthost") || st != (Stats{}) {
		t.Errorf("Run: %+v, %v", st, err)
	}
	if after := files(t, q); !reflect.DeepEqual(before, after) {
		t.Errorf("files changed: %v -> %v", before, after)
	}
}

// A backlog costs one connection: SMTP sends message after message on one
// session.
func TestRunOneSMTPConnection(t *testing.T) {
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{})
	q, _ := newQueue(t, Options{})
	for i := 0; i < 5; i++ {
		enqueue(t, q, "a@x", fmt.Sprintf("r%d@y", i))
	}
	st := run(t, q, RunOptions{Relayers: []relay.Relayer{smtpRelayer(s, false)}})
	if st != (Stats{Messages: 5, Delivered: 5, Connections: 1}) {
		t.Errorf("stats %+v", st)
	}
	if n := s.Conns(); n != 1 {
		t.Errorf("%d connections", n)
	}
	if len(s.Messages()) != 5 || len(listAll(t, q)) != 0 {
		t.Errorf("%d messages delivered, queue %v", len(s.Messages()), files(t, q))
	}
}

// backlog is a new queue with n messages from a@x, message i to r<i>@y,
// their IDs in that order.
func backlog(t *testing.T, n int) *Queue {
	q, clk := newQueue(t, Options{})
	for i := 0; i < n; i++ {
		enqueue(t, q, "a@x", fmt.Sprintf("r%d@y", i))
		clk.Advance(time.Microsecond)
	}
	return q
}

// QMTP pipelines the backlog: every package on one connection, in batches
// of batchSize.
func TestRunQMTPPipelined(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	n := batchSize + 5
	q := backlog(t, n)
	st := run(t, q, RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}})
	if st != (Stats{Messages: n, Delivered: n, Connections: 1}) {
		t.Errorf("stats %+v", st)
	}
	pkgs := s.Packages()
	if len(pkgs) != n || s.Conns() != 1 {
		t.Fatalf("%d packages on %d connections", len(pkgs), s.Conns())
	}
	for i, p := range pkgs {
		if p.Conn != 1 || p.Seq != i+1 || p.Recipients[0] != fmt.Sprintf("r%d@y", i) {
			t.Errorf("package %d: connection %d, number %d, to %v", i+1, p.Conn, p.Seq, p.Recipients)
		}
	}
}

// Finished messages leave the queue in groups: their envelopes are
// removed, env/ is fsynced once per group, and only then do their msg/
// files go, so that a lost removal can bring back a message (sent again)
// but never an envelope without its message.
func TestRunSettlesFinishedMessagesPerGroup(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	n := batchSize + 5
	q := backlog(t, n)
	syncDir := q.ops.syncDir
	envSyncs := 0
	q.ops.syncDir = func(dir string) error {
		if dir == q.path("env") {
			envSyncs++
			envs, _ := os.ReadDir(q.path("env"))
			msgs, _ := os.ReadDir(q.path("msg"))
			// The group's messages are all still there, and nothing
			// earlier is: msg/ is emptied only after this fsync.
			if want := n - (envSyncs-1)*batchSize; len(msgs) != want {
				t.Errorf("fsync %d of env/: %d msg/ files, want %d", envSyncs, len(msgs), want)
			}
			if len(envs) >= len(msgs) {
				t.Errorf("fsync %d of env/: %d envelopes for %d messages: nothing finished", envSyncs, len(envs), len(msgs))
			}
		}
		return syncDir(dir)
	}
	st := run(t, q, RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}})
	if st != (Stats{Messages: n, Delivered: n, Connections: 1}) {
		t.Errorf("stats %+v", st)
	}
	if want := (n + batchSize - 1) / batchSize; envSyncs != want {
		t.Errorf("%d fsyncs of env/ for %d delivered messages, want %d", envSyncs, n, want)
	}
	if got := files(t, q); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
}

func TestRunFilters(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	q, clk := newQueue(t, Options{})
	enqueue(t, q, "a@x", "b@example.org")
	clk.Advance(time.Second)
	net := enqueue(t, q, "a@x", "c@example.net")
	clk.Advance(time.Second)
	enqueue(t, q, "a@x", "d@other.example", "e@EXAMPLE.ORG")
	clk.Advance(time.Second)
	last := enqueue(t, q, "a@x", "f@other.example")
	ro := RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}, Force: true}

	for _, bad := range []string{"1", "0000", strings.ToLower(last.ID) + "0"} {
		ro.ID = bad
		if _, err := q.Run(context.Background(), ro); err == nil {
			t.Errorf("-qI%s: no error", bad)
		} else {
			t.Log(err)
		}
	}

	ro.ID, ro.Domain = "", "example.ORG"
	if st := run(t, q, ro); st.Messages != 2 || st.Delivered != 3 {
		t.Errorf("-qR: %+v", st)
	}
	var sent []string
	for _, p := range s.Packages() {
		sent = append(sent, p.Recipients...)
	}
	// The whole message goes, not only the recipients in the domain.
	if want := []string{"b@example.org", "d@other.example", "e@EXAMPLE.ORG"}; !reflect.DeepEqual(sent, want) {
		t.Errorf("-qR sent to %v, want %v", sent, want)
	}
	ro.Domain = ""
	ro.ID = strings.ToLower(net.ID[:16]) // a unique prefix, in the wrong case
	if st := run(t, q, ro); st.Messages != 1 {
		t.Errorf("-qI: %+v", st)
	}
	if p := s.Packages(); p[len(p)-1].Recipients[0] != "c@example.net" {
		t.Errorf("-qI sent %v", p[len(p)-1].Recipients)
	}
	entries := listAll(t, q)
	if len(entries) != 1 || entries[0].ID != last.ID {
		t.Errorf("left %+v", entries)
	}
}

// Without Force only due messages are tried; the wait doubles from
// retry_min up to retry_max.
func TestRunSchedule(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	s.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction { return relaytest.Reply("Z", "later") }
	q, clk := newQueue(t, Options{})
	e := enqueue(t, q, "a@x", "b@y")
	ro := RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, time.Hour, time.Hour, time.Hour}
	for i, wait := range want {
		if st := run(t, q, ro); st.Messages != 1 {
			t.Fatalf("attempt %d: not tried when due: %+v", i+1, st)
		}
		got := entryByID(t, q, e.ID)
		if got.Attempts != i+1 || got.NextAttempt.Sub(got.LastAttempt) != wait {
			t.Errorf("after attempt %d: attempts %d, next after %v, want %v", i+1, got.Attempts, got.NextAttempt.Sub(got.LastAttempt), wait)
		}
		clk.Advance(wait - time.Second)
		if st := run(t, q, ro); st.Messages != 0 {
			t.Errorf("attempt %d: tried a second early", i+1)
		}
		clk.Advance(time.Second)
	}
	before := len(s.Packages())
	ro.Force = true
	if st := run(t, q, ro); st.Messages != 1 || len(s.Packages()) != before+1 {
		t.Errorf("a forced run did not try the message: %+v", st)
	}
}

func TestBackoff(t *testing.T) {
	q, _ := newQueue(t, Options{RetryMin: time.Minute, RetryMax: time.Hour})
	for n, want := range map[int]time.Duration{
		0: time.Minute, 1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 6: 32 * time.Minute,
		7: time.Hour, 8: time.Hour, 100: time.Hour, maxAttempts: time.Hour,
	} {
		if got := q.backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
	q, _ = newQueue(t, Options{RetryMin: time.Nanosecond, RetryMax: 1<<63 - 1})
	if got := q.backoff(maxAttempts); got != 1<<63-1 {
		t.Errorf("backoff overflowed: %v", got)
	}
}

func TestRunSkipsLockedMessage(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	q, _ := newQueue(t, Options{})
	e := enqueue(t, q, "a@x", "b@y")
	before := readFile(t, q.path("env", e.ID))
	f, err := os.Open(q.path("msg", e.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	ro := RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}, Force: true}
	if st := run(t, q, ro); st != (Stats{Skipped: 1}) {
		t.Errorf("stats %+v", st)
	}
	if len(s.Packages()) != 0 || readFile(t, q.path("env", e.ID)) != before {
		t.Error("a locked message was touched")
	}
	f.Close()
	if st := run(t, q, ro); st.Delivered != 1 {
		t.Errorf("after unlocking: %+v", st)
	}
}

func TestRunCleanup(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	s.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction { return relaytest.Reply("Z", "later") }
	q, _ := newQueue(t, Options{})
	queued := enqueue(t, q, "a@x", "b@y")
	old, fresh := t0.Add(-staleAge-time.Minute), t0.Add(-staleAge+time.Minute)
	plant := func(path string, mtime time.Time) {
		if err := os.WriteFile(path, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, mtime, mtime)
	}
	plant(q.path("tmp", "0187A3B4C5D6E7F8-00000001.msg"), old)
	plant(q.path("tmp", "0187A3B4C5D6E7F8-00000001.env"), old)
	plant(q.path("tmp", "0187A3B4C5D6E7F8-00000002.msg"), fresh)
	plant(q.path("msg", "0187A3B4C5D6E7F8-00000003"), old)
	plant(q.path("msg", "0187A3B4C5D6E7F8-00000004"), fresh)
	plant(q.path("failed", "0187A3B4C5D6E7F8-00000005.msg"), old)
	os.Chtimes(q.path("msg", queued.ID), old, old) // queued: kept whatever its age
	run(t, q, RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}})
	want := []string{
		"env/" + queued.ID,
		"failed/0187A3B4C5D6E7F8-00000005.msg",
		"msg/0187A3B4C5D6E7F8-00000004",
		"msg/" + queued.ID,
		"tmp/0187A3B4C5D6E7F8-00000002.msg",
	}
	if got := files(t, q); !reflect.DeepEqual(got, want) {
		t.Errorf("files\n %v\nwant\n %v", got, want)
	}
}

func TestRunMovesUnusableEnvelopes(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	q, _ := newQueue(t, Options{})
	ro := RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}}

	garbled := enqueue(t, q, "a@x", "b@y")
	const junk = "relaymail-envelope 1\nid x\nrcpt pending evil@x\r\nDATA"
	os.WriteFile(q.path("env", garbled.ID), []byte(junk), 0o600)

	noMsg := enqueue(t, q, "a@x", "c@y")
	os.Remove(q.path("msg", noMsg.ID))

	// A move to failed/ that stopped before env/ID was removed.
	moved := enqueue(t, q, "a@x", "d@y")
	os.Rename(q.path("msg", moved.ID), q.path("failed", moved.ID+".msg"))
	os.WriteFile(q.path("failed", moved.ID+".env"), []byte("final state\nreason x\n"), 0o600)

	os.WriteFile(q.path("env", "notes.txt"), nil, 0o600)

	st, err := q.Run(context.Background(), ro)
	if err == nil || !strings.Contains(err.Error(), garbled.ID) || !strings.Contains(err.Error(), noMsg.ID) ||
		!strings.Contains(err.Error(), "notes.txt") || strings.Contains(err.Error(), moved.ID) {
		t.Errorf("error %v", err)
	}
	if st.Messages != 0 || st.Bounced != 0 || len(s.Packages()) != 0 {
		t.Errorf("stats %+v; %d packages", st, len(s.Packages()))
	}
	want := []string{
		"env/notes.txt",
		"failed/" + garbled.ID + ".env", "failed/" + garbled.ID + ".msg",
		"failed/" + moved.ID + ".env", "failed/" + moved.ID + ".msg",
		"failed/" + noMsg.ID + ".env",
	}
	sort.Strings(want)
	if got := files(t, q); !reflect.DeepEqual(got, want) {
		t.Errorf("files\n %v\nwant\n %v", got, want)
	}
	g := readFile(t, q.path("failed", garbled.ID+".env"))
	if !strings.HasPrefix(g, junk+"\nreason cannot use the envelope: ") || !strings.HasSuffix(g, "\n") {
		t.Errorf("failed/ID.env: %q", g)
	}
	if m := readFile(t, q.path("failed", garbled.ID+".msg")); m != testMessage("a@x", []string{"b@y"}) {
		t.Errorf("failed/ID.msg: %q", m)
	}
	if n := readFile(t, q.path("failed", noMsg.ID+".env")); !strings.Contains(n, "\nreason cannot use the envelope: ") || !strings.Contains(n, "is missing") {
		t.Errorf("failed/ID.env: %q", n)
	}
}

func TestRunSizeMismatch(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	q, _ := newQueue(t, Options{})
	e := enqueue(t, q, "a@x", "b@y")
	os.WriteFile(q.path("msg", e.ID), []byte("truncated"), 0o600)
	if _, err := q.Run(context.Background(), RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}}); err == nil {
		t.Error("no error")
	}
	if got := files(t, q); len(got) != 2 || got[0] != "failed/"+e.ID+".env" || len(s.Packages()) != 0 {
		t.Errorf("files %v", got)
	}
}

// Canceling a run (SIGTERM to the daemon) abandons what is in flight and
// records nothing for it: it is sent again, never lost.
func TestRunCancel(t *testing.T) {
	t.Run("QMTP stalled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := relaytest.NewQMTPServer(t)
		s.OnPackage = func(relaytest.QMTPPackage) { cancel() }
		s.Script = func(*relaytest.QMTPPackage, int) relaytest.QMTPAction { return relaytest.Stall() }
		q, _ := newQueue(t, Options{})
		a := enqueue(t, q, "a@x", "b@y")
		b := enqueue(t, q, "a@x", "c@y")
		before := []string{readFile(t, q.path("env", a.ID)), readFile(t, q.path("env", b.ID))}
		st, err := q.Run(ctx, RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
		if st.Delivered+st.Deferred+st.Failed != 0 {
			t.Errorf("stats %+v", st)
		}
		after := []string{readFile(t, q.path("env", a.ID)), readFile(t, q.path("env", b.ID))}
		if !reflect.DeepEqual(before, after) || len(files(t, q)) != 4 {
			t.Errorf("state changed: %v", files(t, q))
		}
	})
	t.Run("SMTP between messages", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{DataError: func(*relaytest.SMTPMessage) *gosmtp.SMTPError {
			cancel()
			return nil
		}})
		q, _ := newQueue(t, Options{})
		a := enqueue(t, q, "a@x", "b@y")
		b := enqueue(t, q, "a@x", "c@y")
		before := []string{readFile(t, q.path("env", a.ID)), readFile(t, q.path("env", b.ID))}
		_, err := q.Run(ctx, RunOptions{Relayers: []relay.Relayer{smtpRelayer(s, false)}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
		if n := len(s.Messages()); n != 1 {
			t.Errorf("%d messages sent after the cancellation", n-1)
		}
		after := []string{readFile(t, q.path("env", a.ID)), readFile(t, q.path("env", b.ID))}
		if !reflect.DeepEqual(before, after) {
			t.Error("state changed")
		}
	})
}

// A message queued longer than the lifetime is not tried again: its pending
// recipients fail with their last reply, the sender gets a notification
// (sent in the same run), and the message moves to failed/.
func TestRunExpiry(t *testing.T) {
	var full atomic.Bool
	full.Store(true)
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
		if full.Load() && m.Rcpts[i].To == "bob@example.org" {
			return errFull
		}
		return nil
	}})
	q, clk := newQueue(t, Options{})
	e := enqueue(t, q, "alice@example.com", "bob@example.org", "carol@example.org")
	ro := RunOptions{Relayers: []relay.Relayer{smtpRelayer(s, false)}}
	run(t, q, ro)
	full.Store(false) // bob could take it now, but it is too late

	if q.expired(entryByID(t, q, e.ID), t0.Add(defaultLifetime)) {
		t.Error("expired at exactly the lifetime")
	}
	clk.Advance(defaultLifetime + time.Minute)
	st := run(t, q, ro)
	if want := (Stats{Messages: 2, Delivered: 1, Failed: 1, Bounced: 1, Expired: 1, Connections: 1}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	msgs := s.Messages()
	if len(msgs) != 2 || msgs[1].From != "" || !reflect.DeepEqual(msgs[1].Accepted(), []string{"alice@example.com"}) {
		t.Fatalf("the expired message was tried, or no notification was sent: %+v", msgs[len(msgs)-1])
	}
	checkDSN(t, msgs[1].Data, e, []dsnRcpt{{
		addr: "bob@example.org", status: "4.2.2",
		diag: "smtp; 452 4.2.2 mailbox full (gave up after 5 days)",
	}})
	want := []string{"failed/" + e.ID + ".env", "failed/" + e.ID + ".msg"}
	if got := files(t, q); !reflect.DeepEqual(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	f := readFile(t, q.path("failed", e.ID+".env"))
	if !strings.Contains(f, "\nrcpt failed bob@example.org\nreply 452 4.2.2 mailbox full (gave up after 5 days)\nrcpt delivered carol@example.org\n") ||
		!strings.HasSuffix(f, "\nreason expired: queued for more than 5 days\n") {
		t.Errorf("failed/ID.env:\n%s", f)
	}
}

// A state that cannot be written leaves the old one: the message is sent
// again (a duplicate), never lost.
func TestRunStateWriteFails(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	s.Script = func(*relaytest.QMTPPackage, int) relaytest.QMTPAction { return relaytest.Reply("Z", "later") }
	q, _ := newQueue(t, Options{})
	e := enqueue(t, q, "a@x", "b@y")
	before := readFile(t, q.path("env", e.ID))
	q.ops.rename = func(string, string) error { return errInjected }
	_, err := q.Run(context.Background(), RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}})
	if !errors.Is(err, errInjected) {
		t.Errorf("Run returned %v", err)
	}
	if readFile(t, q.path("env", e.ID)) != before {
		t.Error("the state changed")
	}
	if got := files(t, q); len(got) != 2 {
		t.Errorf("files %v", got)
	}
}

// When the notification cannot be queued, the message stays in env/ with
// its final state, and the next run bounces it: never zero notifications.
func TestRunBounceCommitFails(t *testing.T) {
	q, _ := newQueue(t, Options{})
	e := enqueue(t, q, "a@x", "b@y")
	fail := &fakeRelayer{name: "fail", class: relay.Failed}
	ro := RunOptions{Relayers: []relay.Relayer{fail}}
	ops := q.ops
	q.ops.link = func(string, string) error { return errInjected } // Commit's step 2
	st, err := q.Run(context.Background(), ro)
	if !errors.Is(err, errInjected) || st.Bounced != 0 {
		t.Errorf("Run: %+v, %v", st, err)
	}
	if got, want := files(t, q), []string{"env/" + e.ID, "msg/" + e.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	if got := entryByID(t, q, e.ID); got.Recipients[0].State != Failed || got.Attempts != 1 {
		t.Errorf("final state not written: %s", states(got))
	}
	q.ops = ops
	st = run(t, q, ro)
	if st.Bounced != 1 || len(fail.calls) != 2 || fail.calls[1][0] != "a@x" {
		t.Errorf("second run: %+v, relayed %v", st, fail.calls)
	}
	if len(listAll(t, q)) != 0 {
		t.Errorf("queue %v", files(t, q))
	}
}
