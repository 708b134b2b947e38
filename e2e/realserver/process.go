package realserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 15 * time.Second
	stopTimeout  = 5 * time.Second
	// markerVar is put in each server's environment (and passed on to its
	// children through the servers' import_environment) so that a process
	// the server forked can be found and killed even when it left the
	// process group. Dovecot blanks its processes' environ (to make room
	// for process titles), so for Dovecot the process group does it all.
	markerVar = "RELAYMAIL_E2E_INSTANCE"
)

// instanceDir makes a private, short directory under /tmp (unix socket
// paths must stay under 108 bytes, and t.TempDir() can be long and is not
// reachable by the unprivileged users the servers switch to). It is removed
// at cleanup, after the server has stopped.
func instanceDir(tb testing.TB, prefix string) string {
	tb.Helper()
	base := "/tmp"
	if _, err := os.Stat(base); err != nil {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			tb.Logf("realserver: removing %s: %v", dir, err)
		}
	})
	return dir
}

// mkdirOwned creates dir with mode and owner.
func mkdirOwned(dir string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil { // not subject to umask
		return err
	}
	return os.Chown(dir, uid, gid)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are free
// when returned; a server that loses one to a race is restarted by the
// caller.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// process is one server's top process, in its own process group.
type process struct {
	name   string
	dir    string // the instance directory
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // from Wait, valid after done
	marker string
	output string // file with the process's stdout and stderr

	watchdog     *exec.Cmd
	watchdogDone chan struct{}
	lifeline     *os.File // the watchdog's stdin; closed when the test binary dies
}

// watchdogScript ends a server whose test binary died without its cleanup
// (a go test -timeout panic, Ctrl-C, SIGKILL). It waits for EOF on stdin,
// which the kernel delivers when the test binary's end of the pipe closes,
// then kills the server's process group ($1) and whatever still carries
// its marker ($2), and removes the instance directory ($3). (Pdeathsig is
// no help: Postfix and smtp-sink change their credentials, which clears
// it. /bin/sh may be dash, whose kill takes no "--".)
const watchdogScript = `read -r _
kill -TERM "-$1" 2>/dev/null
sleep 2
kill -KILL "-$1" 2>/dev/null
for p in /proc/[0-9]*; do
	grep -qxzF -- "$2" "$p/environ" 2>/dev/null && kill -KILL "${p#/proc/}" 2>/dev/null
done
rm -rf -- "$3"
exit 0`

// start runs argv in its own process group with env (plus the marker),
// stdout and stderr to dir/name.out, watched by a watchdog that ends it if
// the test binary dies without cleaning up.
func start(name, dir string, argv, env []string) (*process, error) {
	out := filepath.Join(dir, name+".out")
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &process{name: name, dir: dir, done: make(chan struct{}), marker: markerVar + "=" + dir, output: out}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(append([]string{}, env...), p.marker)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	if err := p.startWatchdog(); err != nil {
		p.stop()
		return nil, fmt.Errorf("starting the watchdog of %s: %w", name, err)
	}
	return p, nil
}

func (p *process) startWatchdog() error {
	r, w, err := os.Pipe() // close-on-exec: no other child inherits w
	if err != nil {
		return err
	}
	defer r.Close()
	wd := exec.Command("/bin/sh", "-c", watchdogScript, "realserver-watchdog", strconv.Itoa(p.cmd.Process.Pid), p.marker, p.dir)
	wd.Stdin = r
	// Its own process group: a Ctrl-C to the test's group must not end it.
	wd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := wd.Start(); err != nil {
		w.Close()
		return err
	}
	p.watchdog, p.lifeline, p.watchdogDone = wd, w, make(chan struct{})
	go func() {
		wd.Wait()
		close(p.watchdogDone)
	}()
	return nil
}

// stopWatchdog ends the watchdog (by its PID) before a normal stop, so that
// it never signals a process group ID that may have been reused.
func (p *process) stopWatchdog() {
	if p.watchdog == nil {
		return
	}
	p.watchdog.Process.Kill()
	<-p.watchdogDone
	p.lifeline.Close()
	p.watchdog = nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after stopTimeout.
// Group members that outlive the top process (children that have not yet
// noticed it is gone), and processes that carry the marker outside the
// group, get stopTimeout to go, then SIGKILL. It returns those it had to
// kill, for the caller to report.
func (p *process) stop() []string {
	p.stopWatchdog()
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for len(leftovers(pgid, p.marker)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var killed []string
	for _, lp := range leftovers(pgid, p.marker) {
		syscall.Kill(lp.pid, syscall.SIGKILL)
		killed = append(killed, fmt.Sprintf("%d %s", lp.pid, lp.cmdline))
	}
	return killed
}

type procInfo struct {
	pid     int
	cmdline string
}

// leftovers lists the live (not zombie) processes that are in process group
// pgid or whose environment holds marker.
func leftovers(pgid int, marker string) []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("\x00" + marker + "\x00")
	self := os.Getpid()
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold anything, so
		// the fields start after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		inGroup := f[2] == strconv.Itoa(pgid)
		if !inGroup {
			env, err := os.ReadFile(filepath.Join(dir, "environ"))
			if err != nil || !bytes.Contains(append(append([]byte{0}, env...), 0), want) {
				continue
			}
		}
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		out = append(out, procInfo{pid, strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))})
	}
	return out
}

// register stops p at cleanup and reports leftovers; when the test failed,
// it also logs the tail of the server's log files.
func register(tb testing.TB, p *process, logs ...string) {
	tb.Cleanup(func() {
		if killed := p.stop(); len(killed) > 0 {
			tb.Errorf("realserver: %s left processes behind, killed: %s", p.name, strings.Join(killed, "; "))
		}
		if tb.Failed() {
			for _, l := range append([]string{p.output}, logs...) {
				tb.Logf("realserver: %s %s:\n%s", p.name, filepath.Base(l), tail(l, 40))
			}
		}
	})
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startRetrying starts a server with up to three attempts of launch, which
// chooses ports, writes the configuration, starts the process and returns
// it with its readiness checks. A server that exits before it is ready
// (most often: a port taken between choosing and binding it) is started
// again on other ports. logs are registered with the process, and the
// first is quoted when the server does not start.
func startRetrying(tb testing.TB, name string, launch func() (*process, []func() error), logs ...string) *process {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		p, checks := launch()
		err := waitReady(p, checks...)
		if err == nil {
			register(tb, p, logs...)
			return p
		}
		p.stop()
		if attempt == 3 || !errors.Is(err, errExited) {
			quoted := ""
			if len(logs) > 0 {
				quoted = "\n" + tail(logs[0], 20)
			}
			tb.Fatalf("realserver: starting %s: %v%s", name, err, quoted)
		}
		tb.Logf("realserver: %s did not start (attempt %d), retrying with other ports: %v", name, attempt, err)
	}
}

// errExited says the server died while we waited for it.
var errExited = errors.New("exited during startup")

// waitReady polls until every check succeeds, the process dies, or the
// start timeout passes.
func waitReady(p *process, checks ...func() error) error {
	deadline := time.Now().Add(startTimeout)
	for _, check := range checks {
		for {
			if p.exited() {
				return fmt.Errorf("%s %w (%v):\n%s", p.name, errExited, p.err, tail(p.output, 20))
			}
			err := check()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %v: %w", p.name, startTimeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// greets checks that an SMTP or LMTP server answers with a 220 greeting,
// and says QUIT.
func greets(network, addr string) func() error {
	return func() error {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("reading the greeting: %w", err)
			}
			if len(line) < 4 || !strings.HasPrefix(line, "220") {
				return fmt.Errorf("greeting %q", strings.TrimSpace(line))
			}
			if line[3] == ' ' {
				break
			}
		}
		fmt.Fprintf(c, "QUIT\r\n")
		r.ReadString('\n')
		return nil
	}
}

// listens checks that something accepts connections at addr.
func listens(network, addr string) func() error {
	return func() error {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
