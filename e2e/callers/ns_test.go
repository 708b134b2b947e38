package callers

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The callers run in a mount namespace of their own, which gives them what
// a real host has and this test machine lacks: a syslog socket at /dev/log
// (the test's own, so the test reads what relaymail, cron and sudo log,
// cron's report of the mailer's exit status included), and, for cron, an
// /etc/cron.d, /etc/crontab and crontab spool that hold only the test's
// jobs, and a /run of its own for cron's pid file. Nothing outside the
// namespace sees these mounts; they go when its last process exits.

// nsSetup runs as root in the new namespace: sh -c nsSetup ns DIR CRONDIR
// UID GID -- argv... It builds a private /dev (the host's devices, bound,
// plus DIR/syslog.sock as /dev/log), binds CRONDIR's cron files when
// CRONDIR is not empty, then becomes UID:GID with its supplementary groups
// (none given: stays root) and execs argv.
const nsSetup = `set -eu
dir=$1 crondir=$2 uid=$3 gid=$4
shift 5
d=$dir/dev.$$
mkdir "$d"
mount -t tmpfs -o mode=0755,size=1m relaymail-e2e-dev "$d"
for n in null zero full random urandom tty ptmx; do
	[ -e "/dev/$n" ] || continue
	: >"$d/$n"
	mount --bind "/dev/$n" "$d/$n"
done
mkdir "$d/pts" "$d/shm"
mount --bind /dev/pts "$d/pts"
mount --bind /dev/shm "$d/shm"
ln -s /proc/self/fd "$d/fd"
ln -s fd/0 "$d/stdin"
ln -s fd/1 "$d/stdout"
ln -s fd/2 "$d/stderr"
: >"$d/log"
mount --bind "$dir/syslog.sock" "$d/log"
mount --move "$d" /dev
rmdir "$d"
if [ -n "$crondir" ]; then
	mount --bind "$crondir/cron.d" /etc/cron.d
	mount --bind "$crondir/crontab" /etc/crontab
	if [ -d /var/spool/cron/crontabs ]; then
		mount --bind "$crondir/crontabs" /var/spool/cron/crontabs
	fi
	mount -t tmpfs -o mode=0755,size=1m relaymail-e2e-run /run
fi
if [ -n "$uid" ]; then
	exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
fi
exec "$@"
`

// syslog is the test's /dev/log: a datagram socket that keeps every line.
type syslog struct {
	conn  *net.UnixConn
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startSyslog(t *testing.T, path string) *syslog {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// relaymail logs as the relaymail user, sudo's mailer as root.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	s := &syslog{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.lines = append(s.lines, strings.TrimRight(string(buf[:n]), "\n\x00"))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-s.done
	})
	return s
}

// Lines returns what was logged so far.
func (s *syslog) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// Grep returns the lines that contain every one of subs.
func (s *syslog) Grep(subs ...string) []string {
	var out []string
	for _, l := range s.Lines() {
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(l, sub)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// WaitFor waits until a line holds every one of subs, at most timeout.
func (s *syslog) WaitFor(timeout time.Duration, subs ...string) []string {
	deadline := time.Now().Add(timeout)
	for {
		if l := s.Grep(subs...); len(l) > 0 || time.Now().After(deadline) {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// account is a user the callers run as.
type account struct {
	name     string
	uid, gid int
	home     string
}

func lookup(t *testing.T, name string) account {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return account{name: name, uid: uid, gid: gid, home: u.HomeDir}
}

// run is one finished command.
type run struct {
	exit           int
	stdout, stderr string
}

// nsCommand is argv in a namespace as described above, as user (root when
// nil), with exactly env, and cron's files from crondir when it is not "".
func (s *suite) nsCommand(as *account, crondir string, env []string, argv ...string) *exec.Cmd {
	uid, gid := "", ""
	if as != nil {
		uid, gid = strconv.Itoa(as.uid), strconv.Itoa(as.gid)
	}
	args := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", nsSetup, "relaymail-e2e-ns",
		s.dir, crondir, uid, gid, "--"}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = env
	cmd.Dir = s.dir
	// A caller may leave a detached child holding its output (sudo's
	// mailer): stop waiting for the pipes once the caller has exited.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// userEnv is the environment of a login session of a.
func userEnv(a *account, extra ...string) []string {
	home := a.home
	if home == "" || home == "/nonexistent" {
		home = "/tmp"
	}
	return append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"HOME=" + home, "USER=" + a.name, "LOGNAME=" + a.name, "LANG=C.UTF-8", "SHELL=/bin/sh",
	}, extra...)
}

// rootEnv is root's.
var rootEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root", "LOGNAME=root", "LANG=C.UTF-8"}

// exec runs argv in the namespace with stdin and waits, at most a minute.
func (s *suite) exec(t *testing.T, as *account, env []string, stdin string, argv ...string) run {
	t.Helper()
	cmd := s.nsCommand(as, "", env, argv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not finish within a minute; killed\nstdout: %s\nstderr: %s", argv, stdout.String(), stderr.String())
	}
	r := run{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.exit = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.exit = -1
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// plain runs a command outside the namespace (dpkg, make), as root.
func plain(t *testing.T, env []string, argv ...string) run {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := run{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return r
}

// writeRootFile writes a file that cron accepts: root's, not writable by
// others.
func writeRootFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
