package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/relaytest"
)

// Files planted in the spool by whoever can write it are never read
// through, never delivered and never moved: a symbolic link (to a secret
// the runner may be able to read), a FIFO (which would block a read), a
// hard link, a file writable by everyone. Each is reported and left alone,
// and the rest of the queue is delivered.
func TestRunPlantedFiles(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	q, _ := newQueue(t, Options{})
	ro := RunOptions{Relayers: []relay.Relayer{qmtpRelayer(s)}}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("root:$6$secret-hash:19000:0:99999:7:::\n"), 0o600)

	good := enqueue(t, q, "a@x", "ok@y")

	// env/ID a symbolic link to a valid envelope elsewhere.
	linkedEnv := enqueue(t, q, "a@x", "b@y")
	outside := filepath.Join(t.TempDir(), "env")
	os.Rename(q.path("env", linkedEnv.ID), outside)
	os.Symlink(outside, q.path("env", linkedEnv.ID))

	// msg/ID a symbolic link to the secret, with an envelope that has the
	// secret's size so that nothing else would stop it.
	linkedMsg := enqueue(t, q, "a@x", "c@y")
	fi, _ := os.Stat(secret)
	e := entryByID(t, q, linkedMsg.ID)
	e.Size = fi.Size()
	if err := q.writeState(e); err != nil {
		t.Fatal(err)
	}
	os.Remove(q.path("msg", linkedMsg.ID))
	os.Symlink(secret, q.path("msg", linkedMsg.ID))

	// msg/ID a FIFO.
	fifo := enqueue(t, q, "a@x", "d@y")
	os.Remove(q.path("msg", fifo.ID))
	if err := syscall.Mkfifo(q.path("msg", fifo.ID), 0o600); err != nil {
		t.Fatal(err)
	}

	// env/ID with a second hard link.
	hard := enqueue(t, q, "a@x", "e@y")
	os.Link(q.path("env", hard.ID), filepath.Join(t.TempDir(), "link"))

	// env/ID writable by everyone.
	open := enqueue(t, q, "a@x", "f@y")
	os.Chmod(q.path("env", open.ID), 0o666)

	before := files(t, q)
	done := make(chan struct{})
	var st Stats
	var err error
	go func() {
		st, err = q.Run(context.Background(), ro)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the run hangs (on the FIFO?)")
	}
	for _, want := range []string{
		linkedEnv.ID + " is a symbolic link", linkedMsg.ID + " is a symbolic link",
		fifo.ID + " is not a regular file", hard.ID + " has 2 hard links", open.ID + " is writable by every user",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	var ue *UntrustedError
	if !errors.As(err, &ue) {
		t.Errorf("no *UntrustedError in %v", err)
	}
	pkgs := s.Packages()
	if st.Delivered != 1 || len(pkgs) != 1 || pkgs[0].Recipients[0] != "ok@y" {
		t.Fatalf("stats %+v, packages %+v", st, pkgs)
	}
	for _, p := range pkgs {
		if strings.Contains(string(p.Message), "secret-hash") {
			t.Fatal("the secret was delivered")
		}
	}
	// Everything but the good message is where it was.
	var want []string
	for _, f := range before {
		if !strings.HasSuffix(f, good.ID) {
			want = append(want, f)
		}
	}
	if got := files(t, q); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files\n %v\nwant\n %v", got, want)
	}
	if _, err := os.Lstat(q.path("env", linkedEnv.ID)); err != nil {
		t.Errorf("the planted link was removed: %v", err)
	}

	// mailq reports them and lists the rest.
	entries, err := q.List()
	if err == nil || !strings.Contains(err.Error(), linkedEnv.ID+" is a symbolic link") {
		t.Errorf("List error: %v", err)
	}
	for _, en := range entries {
		if en.ID == linkedEnv.ID || en.ID == hard.ID || en.ID == open.ID {
			t.Errorf("List shows %s", en.ID)
		}
	}
}

// A state written over a planted symbolic link does not follow it.
func TestWriteFileNoFollow(t *testing.T) {
	q, _ := newQueue(t, Options{})
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	tmp := q.path("tmp", "0187A3B4C5D6E7F8-1a2b3c4d.env")
	os.Symlink(victim, tmp)
	if err := q.writeFile(tmp, []byte("x"), os.O_TRUNC); err == nil {
		t.Error("writeFile followed the link")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target was changed: %q", b)
	}
}

// A subdirectory replaced by a symbolic link is refused when the queue is
// opened.
func TestOpenRefusesLinkedSubdirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	newQueue(t, Options{Dir: dir})
	os.Remove(filepath.Join(dir, "env"))
	os.Symlink(t.TempDir(), filepath.Join(dir, "env"))
	_, err := Open(Options{Dir: dir, Hostname: "mx.example.com"})
	var se *SpoolError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open: %v", err)
	}
}

// A Shared spool gets directories of mode 2770 and files of mode 0640 (with
// the umask of a privileged run), and trusts files by their group.
func TestSharedModes(t *testing.T) {
	old := syscall.Umask(0o007)
	defer syscall.Umask(old)
	q, _ := newQueue(t, Options{Shared: true})
	e := enqueue(t, q, "a@x", "b@y")
	for _, sub := range []string{"tmp", "msg", "env", "failed"} {
		fi, err := os.Stat(q.path(sub))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(os.ModePerm|os.ModeSetgid) != 0o770|os.ModeSetgid {
			t.Errorf("%s: mode %v", sub, fi.Mode())
		}
	}
	for _, p := range []string{q.path("msg", e.ID), q.path("env", e.ID)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v", p, fi.Mode())
		}
	}
	// A spool directory with the set-group-ID bit (the packaged one) is
	// shared, whatever the options say.
	dir := filepath.Join(t.TempDir(), "spool")
	os.Mkdir(dir, 0o770)
	os.Chmod(dir, 0o770|os.ModeSetgid)
	q2, _ := newQueue(t, Options{Dir: dir})
	e2 := enqueue(t, q2, "a@x", "b@y")
	if fi, err := os.Stat(q2.path("env", e2.ID)); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("set-group-ID spool: env mode %v, %v", fi.Mode(), err)
	}
	// A file of another group is not trusted in a Shared spool.
	if os.Geteuid() != 0 {
		return
	}
	other := q.gid + 1
	os.Chown(q.path("env", e.ID), -1, other)
	_, err := q.readEntry(e.ID)
	if err == nil || !strings.Contains(err.Error(), "belongs to group "+strconv.Itoa(other)) {
		t.Errorf("readEntry: %v", err)
	}
}
