package e2e

// Helpers of the queue tests (queue_test.go, crash_test.go): a private
// spool per test, the queue listing as mailq --json prints it, queue runs,
// and the detached sendmail processes (-odb, flush_after_send) found by
// their spool and stopped by PID.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/relaytest"
)

// spoolEnv is baseEnv with a spool of the test's own and no flush after a
// send, and the spool directory.
func spoolEnv(t *testing.T, smarthost string, extra ...string) ([]string, string) {
	t.Helper()
	return spoolEnvAt(t, filepath.Join(t.TempDir(), "spool"), smarthost, extra...)
}

// spoolEnvAt is spoolEnv with the spool in dir. At cleanup any sendmail
// process still working on that spool (a detached child) is killed by PID
// and reported.
func spoolEnvAt(t *testing.T, dir, smarthost string, extra ...string) ([]string, string) {
	t.Helper()
	env := mergeEnv(baseEnv(t, smarthost), append([]string{
		"RELAYMAIL_QUEUE_DIR=" + dir,
		"RELAYMAIL_FLUSH_AFTER_SEND=no",
	}, extra...))
	t.Cleanup(func() {
		if pids := spoolProcesses(dir); len(pids) > 0 {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("sendmail processes still working on %s at the end of the test, killed: %v", dir, pids)
		}
	})
	return env, dir
}

// spoolProcesses lists the live processes (not zombies) whose environment
// has RELAYMAIL_QUEUE_DIR=dir: the sendmail processes of one test, the
// detached ones included, since a detached child inherits the environment.
func spoolProcesses(dir string) []int {
	want := []byte("\x00RELAYMAIL_QUEUE_DIR=" + dir + "\x00")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(append(append([]byte{0}, env...), 0), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitSpoolIdle waits, bounded, until no process works on dir any more (a
// detached run has finished), and fails the test if one still does.
func waitSpoolIdle(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pids := spoolProcesses(dir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("sendmail processes %v still work on %s after 20s", pids, dir)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueListing is what mailq --json prints.
type queueListing struct {
	Messages []listedMessage `json:"messages"`
	Count    int             `json:"count"`
	Bytes    int64           `json:"bytes"`
}

type listedMessage struct {
	ID          string            `json:"id"`
	Arrival     string            `json:"arrival"`
	Size        int64             `json:"size"`
	Sender      string            `json:"sender"`
	MessageID   string            `json:"message_id"`
	Attempts    int               `json:"attempts"`
	NextAttempt string            `json:"next_attempt"`
	Recipients  []listedRecipient `json:"recipients"`
}

type listedRecipient struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Reply   string `json:"reply"`
}

// pending returns the addresses of the pending recipients.
func (m listedMessage) pending() []string {
	var out []string
	for _, r := range m.Recipients {
		if r.State == "pending" {
			out = append(out, r.Address)
		}
	}
	return out
}

// listQueue runs "mailq --json" (argv[0] mailq) and parses what it prints.
func listQueue(t *testing.T, env []string) queueListing {
	t.Helper()
	o := runSendmailAs(t, mailqBin(t), env, []string{"--json"}, nil)
	if o.exit != 0 {
		t.Fatalf("mailq --json: exit %d: %s", o.exit, o.stderr)
	}
	var l queueListing
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("mailq --json: %v:\n%s", err, o.stdout)
	}
	if l.Count != len(l.Messages) {
		t.Errorf("mailq --json: count %d, %d messages", l.Count, len(l.Messages))
	}
	return l
}

// runQueue runs "sendmail -q<arg>" once and expects exit 0 and a quiet
// stderr (a run that chokes on something says so there).
func runQueue(t *testing.T, env []string, args ...string) outcome {
	t.Helper()
	if len(args) == 0 {
		args = []string{"-q"}
	}
	o := runSendmail(t, env, args, nil)
	if o.exit != 0 || o.stderr != "" {
		t.Errorf("sendmail %s: exit %d, stderr:\n%s", strings.Join(args, " "), o.exit, o.stderr)
	}
	return o
}

// drainQueue runs "sendmail -q" until mailq --json lists nothing, at most
// limit times, and returns how many runs it took.
func drainQueue(t *testing.T, env []string, limit int) int {
	t.Helper()
	for n := 1; ; n++ {
		runQueue(t, env)
		l := listQueue(t, env)
		if l.Count == 0 {
			return n
		}
		if n == limit {
			t.Fatalf("the queue still lists %d messages after %d runs: %+v", l.Count, limit, l.Messages)
		}
	}
}

// spoolFiles lists the names in one subdirectory of the spool (tmp, msg,
// env, failed); a missing directory has none.
func spoolFiles(t *testing.T, dir, sub string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, sub))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

var mailqOnce struct {
	sync.Once
	path string
	err  error
}

// mailqBin is a "mailq" link to the binary under test, for argv[0].
func mailqBin(t *testing.T) string {
	t.Helper()
	mailqOnce.Do(func() {
		mailqOnce.path = filepath.Join(filepath.Dir(sendmailBin), "mailq")
		mailqOnce.err = os.Symlink(sendmailBin, mailqOnce.path)
	})
	if mailqOnce.err != nil {
		t.Fatal(mailqOnce.err)
	}
	return mailqOnce.path
}

// smtpURL is the plain-text smarthost URL of a relaytest SMTP or LMTP
// server (relaytest has no STARTTLS unless asked).
func smtpURL(s *relaytest.SMTPServer, lmtp bool) string {
	scheme := "smtp"
	if lmtp {
		scheme = "lmtp"
	}
	if s.Network() == "unix" {
		return scheme + ":" + s.Addr()
	}
	if lmtp {
		return "lmtp://" + s.Addr()
	}
	return "smtp://" + s.Addr() + "?tls=none"
}

// bg is a sendmail process started without waiting for it.
type bg struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// startSendmail starts sendmail with args and stdin; wait collects it. It
// may be called from any goroutine: a process that cannot be started is
// reported with Errorf and waits as exit status 127.
func startSendmail(t *testing.T, env, args []string, stdin []byte) *bg {
	t.Helper()
	p := &bg{cmd: exec.Command(sendmailBin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdin = bytes.NewReader(stdin)
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Errorf("starting sendmail %q: %v", args, err)
		p.err = err
		close(p.done)
		return p
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// kill sends SIGKILL to the process (by PID, through os.Process, which
// never signals a reused PID) unless it has been waited for.
func (p *bg) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
}

// wait waits for the process, at most timeout, and kills it when it takes
// longer. It returns the exit status, -1 when a signal ended it.
func (p *bg) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		<-p.done
		t.Errorf("sendmail %q did not finish within %v; killed", p.cmd.Args[1:], timeout)
	}
	if p.cmd.ProcessState == nil {
		return 127
	}
	return exitStatus(p.cmd.ProcessState)
}

// exitStatus is the exit code, or -1 for a process ended by a signal.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1
	}
	return ps.ExitCode()
}
