package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOpenCreatesSpool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "spool")
	q, _ := newQueue(t, Options{Dir: dir})
	for _, sub := range []string{"tmp", "msg", "env", "failed"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want a directory with 0700", sub, fi.Mode())
		}
	}
	if err := q.CheckWritable(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, q); len(got) != 0 {
		t.Errorf("CheckWritable left %v", got)
	}
	// Opening again is fine, and changes nothing.
	if _, err := Open(Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("not a directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o600)
		_, err := Open(Options{Dir: file})
		var se *SpoolError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), file) {
			t.Fatalf("got %v, want a *SpoolError naming %s", err, file)
		}
		t.Log(err)
	})
	t.Run("a subdirectory is a file", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "env"), nil, 0o600)
		_, err := Open(Options{Dir: dir})
		var se *SpoolError
		if !errors.As(err, &se) || !errors.Is(err, syscall.ENOTDIR) || se.Dir != filepath.Join(dir, "env") {
			t.Fatalf("got %v", err)
		}
		t.Log(err)
	})
	t.Run("tmp not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root can write anywhere")
		}
		dir := t.TempDir()
		q, _ := newQueue(t, Options{Dir: dir})
		os.Chmod(q.path("tmp"), 0o500)
		t.Cleanup(func() { os.Chmod(q.path("tmp"), 0o700) })
		q, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("Open: %v (it does not write)", err)
		}
		_, spoolErr := q.NewSpool()
		for _, err := range []error{q.CheckWritable(), spoolErr} {
			var se *SpoolError
			if !errors.As(err, &se) || !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("got %v", err)
			}
			want := "queue: cannot create files in " + q.path("tmp") + ": permission denied (make it writable by uid "
			if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), ", or set queue_dir to a directory you can write)") {
				t.Errorf("got  %q\nwant %q...", err, want)
			}
		}
	})
}

func TestSpoolError(t *testing.T) {
	err := &SpoolError{Dir: "/var/spool/relaymail/tmp", Op: "create files in",
		Err: &fs.PathError{Op: "open", Path: "/var/spool/relaymail/tmp/x", Err: syscall.EACCES}}
	want := "queue: cannot create files in /var/spool/relaymail/tmp: permission denied (make it writable by uid "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %q", err)
	}
	err.Err = syscall.ENOSPC
	if !strings.Contains(err.Error(), "no space left on device (free some space") {
		t.Errorf("got %q", err)
	}
}

func TestNewSpoolAndDiscard(t *testing.T) {
	q, _ := newQueue(t, Options{})
	sp, err := q.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	if !validID(sp.ID) || !strings.HasPrefix(sp.ID, fmt.Sprintf("%016X-", t0.UnixNano())) {
		t.Errorf("ID %q: want 16 hex digits of the clock's nanoseconds, a dash, 8 random hex digits", sp.ID)
	}
	fi, err := sp.File.Stat()
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (%v)", fi.Mode(), err)
	}
	if got := files(t, q); !reflect.DeepEqual(got, []string{"tmp/" + sp.ID + ".msg"}) {
		t.Errorf("files %v", got)
	}
	sp2, _ := q.NewSpool()
	if sp2.ID == sp.ID {
		t.Error("two spools got the same ID")
	}
	sp2.Discard()
	if err := sp.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := sp.Discard(); err != nil {
		t.Errorf("a second Discard: %v", err)
	}
	if got := files(t, q); len(got) != 0 {
		t.Errorf("files after Discard: %v", got)
	}
}

func TestCommit(t *testing.T) {
	q, clk := newQueue(t, Options{})
	sp, err := q.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("a@x", []string{"b@y"})
	sp.File.WriteString(msg)
	clk.Advance(time.Second)
	e := &Entry{Sender: "a@x", Recipients: []Recipient{{Addr: "b@y"}}}
	if err := q.Commit(sp, e); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, q), []string{"env/" + sp.ID, "msg/" + sp.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	if e.ID != sp.ID || e.Size != int64(len(msg)) || !e.Arrival.Equal(t0) || !e.NextAttempt.Equal(t0.Add(time.Second)) {
		t.Errorf("entry %+v", e)
	}
	if got := readFile(t, q.path("msg", sp.ID)); got != msg {
		t.Errorf("msg/ID holds %q", got)
	}
	entries := listAll(t, q)
	if len(entries) != 1 || !reflect.DeepEqual(&entries[0], e) {
		t.Errorf("List gives %+v, want %+v", entries, e)
	}
	if err := q.Commit(sp, e); err == nil {
		t.Error("a spool was committed twice")
	}
	if err := sp.Discard(); err != nil || len(files(t, q)) != 2 {
		t.Errorf("Discard after Commit: %v, files %v", err, files(t, q))
	}
}

func TestCommitAfterAttempt(t *testing.T) {
	q, _ := newQueue(t, Options{})
	long := "451 4.3.0 later\r\n" + strings.Repeat("x", 1000)
	e := &Entry{Sender: "a@x", Attempts: 3, LastAttempt: t0, Recipients: []Recipient{{Addr: "b@y", Reply: long}}}
	commitEntry(t, q, e, "x\n")
	if r := e.Recipients[0].Reply; len(r) != maxReply || !strings.HasPrefix(r, "451 4.3.0 later xxx") {
		t.Errorf("reply %q", r)
	}
	if want := t0.Add(4 * time.Minute); !e.NextAttempt.Equal(want) {
		t.Errorf("next attempt %v, want %v (1m × 2^(3-1))", e.NextAttempt, want)
	}
}

func TestCommitRefusesBadEntry(t *testing.T) {
	q, _ := newQueue(t, Options{})
	for name, e := range map[string]*Entry{
		"no recipients":     {Sender: "a@x"},
		"bad recipient":     {Recipients: []Recipient{{Addr: "b"}}},
		"newline in sender": {Sender: "a@x\nrcpt pending evil@x", Recipients: []Recipient{{Addr: "b@y"}}},
	} {
		sp, _ := q.NewSpool()
		sp.File.WriteString("x\n")
		if err := q.Commit(sp, e); err == nil {
			t.Errorf("%s: committed", name)
		}
		if got := files(t, q); len(got) != 0 {
			t.Errorf("%s: left %v", name, got)
		}
	}
}

// errInjected stands for a full disk at one step of the protocol.
var errInjected = syscall.ENOSPC

// Every step of the commit protocol can fail; each failure must leave
// nothing committed and nothing behind.
func TestCommitFaults(t *testing.T) {
	for _, step := range []string{
		"fsync message", "link", "fsync msg/", "write envelope", "fsync envelope", "rename", "fsync env/",
	} {
		t.Run(step, func(t *testing.T) {
			q, _ := newQueue(t, Options{})
			hit := false
			fault := func(s string) error {
				if s == step {
					hit = true
					return errInjected
				}
				return nil
			}
			ops := q.ops
			q.ops.sync = func(f *os.File) error {
				what := "fsync message"
				if strings.HasSuffix(f.Name(), ".env") {
					what = "fsync envelope"
				}
				if err := fault(what); err != nil {
					return err
				}
				return ops.sync(f)
			}
			q.ops.write = func(f *os.File, b []byte) (int, error) {
				if err := fault("write envelope"); err != nil {
					return len(b) / 2, err
				}
				return ops.write(f, b)
			}
			q.ops.link = func(a, b string) error {
				if err := fault("link"); err != nil {
					return err
				}
				return ops.link(a, b)
			}
			q.ops.rename = func(a, b string) error {
				if err := fault("rename"); err != nil {
					return err
				}
				return ops.rename(a, b)
			}
			q.ops.syncDir = func(dir string) error {
				if err := fault("fsync " + filepath.Base(dir) + "/"); err != nil {
					return err
				}
				return ops.syncDir(dir)
			}
			sp, err := q.NewSpool()
			if err != nil {
				t.Fatal(err)
			}
			sp.File.WriteString(testMessage("a@x", []string{"b@y"}))
			err = q.Commit(sp, &Entry{Sender: "a@x", Recipients: []Recipient{{Addr: "b@y"}}})
			if !hit {
				t.Fatal("the step was never reached")
			}
			if !errors.Is(err, errInjected) {
				t.Fatalf("Commit returned %v, want the injected error", err)
			}
			t.Log(err)
			if entries := listAll(t, q); len(entries) != 0 {
				t.Errorf("List shows %+v", entries)
			}
			if got := files(t, q); len(got) != 0 {
				t.Errorf("left behind: %v", got)
			}
		})
	}
}

func TestListReportsBadFiles(t *testing.T) {
	q, _ := newQueue(t, Options{})
	a := enqueue(t, q, "a@x", "b@y")
	bad := enqueue(t, q, "a@x", "c@y")
	c := enqueue(t, q, "a@x", "d@y")
	os.WriteFile(q.path("env", bad.ID), []byte("relaymail-envelope 1\ngarbage\n"), 0o600)
	os.WriteFile(q.path("env", "stray~"), nil, 0o600)
	entries, err := q.List()
	if err == nil || !strings.Contains(err.Error(), bad.ID) || !strings.Contains(err.Error(), "stray~") {
		t.Errorf("error %v, want one naming %s and stray~", err, bad.ID)
	}
	want := []string{a.ID, c.ID}
	sort.Strings(want) // same arrival: the random part decides
	if len(entries) != 2 || entries[0].ID != want[0] || entries[1].ID != want[1] {
		t.Errorf("entries %+v, want %v in order", entries, want)
	}
}
