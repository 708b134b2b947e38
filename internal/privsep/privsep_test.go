package privsep

import (
	"os"
	"reflect"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFilterEnv(t *testing.T) {
	env := []string{
		"PATH=/usr/bin", "NAME=Cron Daemon", "RELAYMAIL_SMARTHOST=qmtp://evil", "GODEBUG=x509sha1=1",
		"SSL_CERT_FILE=/etc/relaymail.conf", "=odd", "NOEQUALS", "NAME2=x", "TZ=/etc/shadow", "NAME=second",
	}
	got := filterEnv(env, []string{"NAME", "QMAILUSER"})
	want := []string{"NAME=Cron Daemon", "NAME=second"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filterEnv = %q, want %q", got, want)
	}
	if got := filterEnv(env, nil); len(got) != 0 {
		t.Errorf("nothing to keep: got %q", got)
	}
}

// An inherited descriptor without close-on-exec gets it.
func TestCloexecFrom(t *testing.T) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil { // pipe2 without O_CLOEXEC
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	for _, fd := range p {
		if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
			t.Fatalf("fd %d already close-on-exec", fd)
		}
	}
	if err := cloexecFrom(3); err != nil {
		t.Fatal(err)
	}
	for _, fd := range p {
		if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d is not close-on-exec", fd)
		}
	}
	// Standard input, output and error are left alone.
	for fd := 0; fd < 3; fd++ {
		before, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && before&unix.FD_CLOEXEC != 0 {
			t.Errorf("fd %d became close-on-exec", fd)
		}
	}
}

// Unprivileged (the test binary is not set-group-ID), Start changes
// nothing and Do only calls its function.
func TestUnprivileged(t *testing.T) {
	if os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid() {
		t.Skip("the test runs with privileges")
	}
	t.Setenv("RELAYMAIL_SMARTHOST", "qmtp://kept.example")
	// Start may run once per process; the test starts afresh each time
	// (go test -count=N).
	state.mu.Lock()
	state.started, state.privileged, state.dropped = false, false, false
	state.mu.Unlock()
	if err := Start(Options{}); err != nil {
		t.Fatal(err)
	}
	if Privileged() {
		t.Error("Privileged() in an unprivileged process")
	}
	if os.Getenv("RELAYMAIL_SMARTHOST") == "" {
		t.Error("an unprivileged Start cleared the environment")
	}
	uid, gid := Caller()
	if uid != os.Getuid() || gid != os.Getgid() {
		t.Errorf("Caller() = %d, %d", uid, gid)
	}
	called := false
	if err := Do(func() error { called = true; return nil }); err != nil || !called {
		t.Errorf("Do: %v, called %v", err, called)
	}
	if err := Drop(); err != nil {
		t.Errorf("Drop: %v", err)
	}
	if err := Start(Options{}); err == nil {
		t.Error("a second Start succeeded")
	}
}
