package queue

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The listing shows local time; the golden file is in UTC. Set here,
	// before any test runs, so that nothing races with it.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// t0 is the tests' "now": nothing in this package reads the wall clock
// when a clock is injected.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newQueue opens a queue in a fresh directory with a clock at t0.
func newQueue(t *testing.T, opts Options) (*Queue, *clock) {
	t.Helper()
	clk := &clock{t: t0}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "spool")
	}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	if opts.Hostname == "" {
		opts.Hostname = "mx.example.com"
	}
	if opts.Domain == "" {
		opts.Domain = "example.com"
	}
	if opts.Log == nil {
		opts.Log = func(format string, a ...any) { t.Logf(format, a...) }
	}
	q, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return q, clk
}

func testMessage(sender string, rcpts []string) string {
	return "From: " + sender + "\nTo: " + strings.Join(rcpts, ", ") +
		"\nSubject: queue test\nMessage-ID: <test@example.com>\n\nHello.\n"
}

// enqueue commits a message from sender to rcpts, never tried.
func enqueue(t *testing.T, q *Queue, sender string, rcpts ...string) *Entry {
	t.Helper()
	e := &Entry{Sender: sender, MessageID: "<test@example.com>"}
	for _, r := range rcpts {
		e.Recipients = append(e.Recipients, Recipient{Addr: r, State: Pending})
	}
	commitEntry(t, q, e, testMessage(sender, rcpts))
	return e
}

func commitEntry(t *testing.T, q *Queue, e *Entry, msg string) {
	t.Helper()
	sp, err := q.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.File.WriteString(msg); err != nil {
		t.Fatal(err)
	}
	if err := q.Commit(sp, e); err != nil {
		t.Fatal(err)
	}
}

// files lists the spool's files as "sub/name", sorted.
func files(t *testing.T, q *Queue) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{dirTmp, dirMsg, dirEnv, dirFailed} {
		des, err := os.ReadDir(q.path(sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			out = append(out, sub+"/"+de.Name())
		}
	}
	sort.Strings(out)
	return out
}

func listAll(t *testing.T, q *Queue) []Entry {
	t.Helper()
	entries, err := q.List()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func entryByID(t *testing.T, q *Queue, id string) *Entry {
	t.Helper()
	e, err := q.readEntry(id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
