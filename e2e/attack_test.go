package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/relaytest"
)

// The attacker suite (SECURITY.md, "Tests"). It installs the real binaries
// the way packaging/README.md installs them, in a temporary root:
// usr/sbin/sendmail and usr/bin/qmail-inject set-group-ID to a group the
// test creates, etc/relaymail.conf 0640 root:group holding the password,
// and the spool 2770 root:group. Then real unprivileged users, created for
// the test and removed after it, attack it through setpriv(1): every
// attempt must fail with the documented exit status and leave no trace.
//
// A privileged sendmail reads only the configuration file fixed when it
// was built, so the test builds its binaries with -ldflags "-X
// main.defaultConfig=<root>/etc/relaymail.conf": the users can no more
// redirect these binaries than the packaged ones. (The alternative, a
// mount namespace with /etc/relaymail.conf bound over, would need that
// file to exist on the host.)
//
// It needs root, to create users and set-group-ID files: without root it
// is skipped, except under CI=true, where that is a failure.

// account is a user the test created.
type account struct {
	name     string
	uid, gid int
	// noNewPrivs runs the program as systemd's NoNewPrivileges=yes does:
	// the set-group-ID bit is not honoured.
	noNewPrivs bool
}

// install is the temporary packaged install.
type install struct {
	root, bin, qmailInject, conf, spool, www string
	group                                    string
	gid                                      int
	service                                  account // the relaymail user, named like the group
	alice, bob                               account
	password                                 string
}

// userEnv is the environment of an ordinary login session.
var userEnv = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}

func randomTag(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func needRoot(t *testing.T) {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the attacker suite cannot run: %s (CI must run it as root)", why)
		}
		t.Skipf("the attacker suite needs %s", why)
	}
	if os.Geteuid() != 0 {
		skip("root: it creates users, a group and set-group-ID files")
	}
	for _, tool := range []string{"setpriv", "useradd", "userdel", "groupadd", "groupdel"} {
		if toolPath(tool) == "" {
			skip(tool + " (util-linux, passwd)")
		}
	}
}

func toolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	return ""
}

// mustRun runs one of the account tools, again for a few seconds when it
// fails: another process may hold the lock on /etc/passwd.
func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for try := 0; try < 25; try++ {
		if out, err = exec.Command(toolPath(name), args...).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s %q: %v\n%s", name, args, err, out)
}

// cleanupRun removes an account after the test, retrying as mustRun does.
func cleanupRun(name string, args ...string) {
	for try := 0; try < 25; try++ {
		if exec.Command(toolPath(name), args...).Run() == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lookupAccount(t *testing.T, name string) account {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return account{name: name, uid: uid, gid: gid}
}

// addUser creates a user without a home directory or a login shell, and
// removes it (and the private group useradd made for it) after the test.
func addUser(t *testing.T, name string, extra ...string) account {
	t.Helper()
	mustRun(t, "useradd", append(append([]string{"-M", "-s", "/usr/sbin/nologin"}, extra...), name)...)
	t.Cleanup(func() { cleanupRun("userdel", name) })
	return lookupAccount(t, name)
}

func newInstall(t *testing.T) *install {
	t.Helper()
	needRoot(t)
	tag := randomTag(3)
	in := &install{group: "rmt" + tag + "g", password: "pw-" + randomTag(12)}
	mustRun(t, "groupadd", in.group)
	t.Cleanup(func() {
		// userdel of the relaymail user may have removed the group already.
		if _, err := user.LookupGroup(in.group); err == nil {
			cleanupRun("groupdel", in.group)
		}
	})
	in.service = addUser(t, in.group, "-N", "-g", in.group)
	in.gid = in.service.gid
	in.alice = addUser(t, "rmt"+tag+"a")
	in.bob = addUser(t, "rmt"+tag+"b")

	root, err := os.MkdirTemp("", "relaymail-attack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	in.root = root
	for _, d := range []string{"usr/sbin", "usr/bin", "etc", "var/spool"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{root, filepath.Join(root, "usr"), filepath.Join(root, "var")} {
		os.Chmod(d, 0o755)
	}
	in.conf = filepath.Join(root, "etc", "relaymail.conf")
	in.bin = filepath.Join(root, "usr", "sbin", "sendmail")
	in.qmailInject = filepath.Join(root, "usr", "bin", "qmail-inject")
	for pkg, out := range map[string]string{"../cmd/sendmail": in.bin, "../cmd/qmail-inject": in.qmailInject} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.defaultConfig="+in.conf, "-o", out, pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, b)
		}
		in.own(t, out, 0o755|os.ModeSetgid)
	}
	// The spool as packaging creates it: every directory root:relaymail,
	// 2770, so that no user can even look inside.
	in.spool = filepath.Join(root, "var", "spool", "relaymail")
	for _, d := range []string{"", "tmp", "msg", "env", "failed"} {
		p := filepath.Join(in.spool, d)
		os.Mkdir(p, 0o700)
		in.own(t, p, 0o770|os.ModeSetgid)
	}
	// A directory only the relaymail group may write: a file appears in
	// it only if sendmail wrote it with its privileges.
	in.www = filepath.Join(root, "var", "www")
	os.Mkdir(in.www, 0o700)
	in.own(t, in.www, 0o770|os.ModeSetgid)
	return in
}

// own gives path to root and the relaymail group, with mode.
func (in *install) own(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chown(path, 0, in.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// configure writes the configuration file, 0640 root:relaymail, with the
// password, the smarthost and extra lines.
func (in *install) configure(t *testing.T, smarthost string, extra ...string) {
	t.Helper()
	lines := []string{
		"smarthost " + smarthost,
		"password " + in.password,
		"queue_dir " + in.spool,
		"domain example.com",
		"hostname host.example.com",
		"aliases /dev/null",
		"flush_after_send no",
		"timeout 5s",
		"log stderr",
	}
	// A key in extra replaces the default line.
	lines = mergeKeyed(lines, extra, " ")
	if err := os.WriteFile(in.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in.own(t, in.conf, 0o640)
}

// as runs bin as who (root when who is the zero account) with exactly env,
// through setpriv: real and effective IDs of the user, no supplementary
// groups, so that the set-group-ID bit is the only privilege.
func (in *install) as(t *testing.T, who account, bin string, env, args []string, stdin []byte) outcome {
	t.Helper()
	cmd := in.command(who, bin, env, args)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q as %s did not finish", bin, args, who.name)
	}
	o := outcome{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		o.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o
}

func (in *install) command(who account, bin string, env, args []string) *exec.Cmd {
	var cmd *exec.Cmd
	if who.uid == 0 {
		cmd = exec.Command(bin, args...)
	} else {
		opts := []string{"--reuid=" + strconv.Itoa(who.uid), "--regid=" + strconv.Itoa(who.gid), "--clear-groups"}
		if who.noNewPrivs {
			opts = append(opts, "--no-new-privs")
		}
		cmd = exec.Command(toolPath("setpriv"), append(append(opts, "--", bin), args...)...)
	}
	cmd.Env = env
	cmd.Dir = "/"
	return cmd
}

// sendmail runs the installed sendmail as who.
func (in *install) sendmail(t *testing.T, who account, env, args []string, stdin []byte) outcome {
	t.Helper()
	return in.as(t, who, in.bin, env, args, stdin)
}

// shell runs a shell command as who; it reports whether it succeeded.
func (in *install) shell(t *testing.T, who account, script string) (bool, string) {
	t.Helper()
	o := in.as(t, who, "/bin/sh", userEnv, []string{"-c", script}, nil)
	return o.exit == 0, o.stdout + o.stderr
}

// queued lists the queue IDs in env/.
func (in *install) queued(t *testing.T) []string {
	t.Helper()
	var ids []string
	des, err := os.ReadDir(filepath.Join(in.spool, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		ids = append(ids, de.Name())
	}
	return ids
}

// spoolSnapshot names every file of the spool with a hash of its content,
// to show that an attempt changed nothing.
func (in *install) spoolSnapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, sub := range []string{"tmp", "msg", "env", "failed"} {
		des, _ := os.ReadDir(filepath.Join(in.spool, sub))
		for _, de := range des {
			p := filepath.Join(in.spool, sub, de.Name())
			fi, _ := os.Lstat(p)
			sum := ""
			if fi != nil && fi.Mode().IsRegular() {
				data, _ := os.ReadFile(p)
				h := sha256.Sum256(data)
				sum = hex.EncodeToString(h[:8])
			}
			fmt.Fprintf(&b, "%s/%s %v %s\n", sub, de.Name(), fi.Mode(), sum)
		}
	}
	return b.String()
}

// clearQueue empties the spool between subtests.
func (in *install) clearQueue(t *testing.T) {
	t.Helper()
	for _, sub := range []string{"tmp", "msg", "env", "failed"} {
		des, _ := os.ReadDir(filepath.Join(in.spool, sub))
		for _, de := range des {
			os.Remove(filepath.Join(in.spool, sub, de.Name()))
		}
	}
}

// freePort returns a loopback port nothing listens on (now).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return port(l.Addr().String())
}

// secretForms are the ways a password could show: as itself, and base64
// encoded in an AUTH PLAIN or LOGIN exchange.
func secretForms(user, pw string) []string {
	return []string{
		pw,
		base64.StdEncoding.EncodeToString([]byte(pw)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw)),
	}
}

func assertNoSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s shows a secret (%.12q...):\n%s", what, s, text)
		}
	}
}

func TestAttack(t *testing.T) {
	in := newInstall(t)
	live := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{AuthUser: "alice", AuthPassword: in.password, AllowInsecureAuth: true})
	liveURL := "smtp://alice@127.0.0.1:" + port(live.Addr()) + "?tls=none"
	secrets := secretForms("alice", in.password)
	msg := []byte("Subject: attack\n\nbody\n")

	// An unprivileged user can submit: the message is queued while the
	// smarthost is down, although the user cannot write the spool (or
	// even list it), and a later queue run by another user delivers it
	// with the password that neither user can read.
	t.Run("SubmitQueuedThenDelivered", func(t *testing.T) {
		defer in.clearQueue(t)
		p := freePort(t)
		in.configure(t, "smtp://alice@127.0.0.1:"+p+"?tls=none")
		o := in.sendmail(t, in.alice, userEnv, []string{"-i", "carol@example.org"}, []byte("Subject: queued\n\nbody of alice\n"))
		if o.exit != 0 || !strings.Contains(o.stderr, "queued as") {
			t.Fatalf("exit %d:\n%s", o.exit, o.stderr)
		}
		if ids := in.queued(t); len(ids) != 1 {
			t.Fatalf("queued %v", ids)
		}
		if ok, out := in.shell(t, in.alice, "ls "+in.spool+"/env"); ok {
			t.Errorf("alice can list the spool:\n%s", out)
		}
		for _, f := range []string{in.spool + "/env", in.spool + "/msg"} {
			des, _ := os.ReadDir(f)
			for _, de := range des {
				fi, _ := os.Stat(filepath.Join(f, de.Name()))
				st := fi.Sys().(*syscall.Stat_t)
				if int(st.Gid) != in.gid || fi.Mode().Perm() != 0o640 {
					t.Errorf("%s/%s: mode %v, group %d", f, de.Name(), fi.Mode(), st.Gid)
				}
			}
		}
		// The packaged systemd unit's runner (User=relaymail,
		// NoNewPrivileges=yes: no privileges of its own) tries it while
		// the smarthost is still down; what it writes stays readable by
		// the set-group-ID runs of every user.
		svc := in.service
		svc.noNewPrivs = true
		if o := in.sendmail(t, svc, userEnv, []string{"-q"}, nil); o.exit != 0 {
			t.Fatalf("-q by the relaymail user: exit %d:\n%s", o.exit, o.stderr)
		}
		for _, sub := range []string{"env", "msg"} {
			des, _ := os.ReadDir(filepath.Join(in.spool, sub))
			for _, de := range des {
				if fi, _ := os.Stat(filepath.Join(in.spool, sub, de.Name())); fi.Mode().Perm() != 0o640 {
					t.Errorf("%s/%s: mode %v after the relaymail user's run", sub, de.Name(), fi.Mode())
				}
			}
		}
		srv, err := relaytest.StartSMTPServer("tcp", "127.0.0.1:"+p, relaytest.SMTPOptions{AuthUser: "alice", AuthPassword: in.password, AllowInsecureAuth: true})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		o = in.sendmail(t, in.bob, userEnv, []string{"-q"}, nil)
		if o.exit != 0 {
			t.Fatalf("-q by bob: exit %d:\n%s", o.exit, o.stderr)
		}
		msgs := srv.Messages()
		if len(msgs) != 1 || msgs[0].Auth != "alice" || msgs[0].From != in.alice.name+"@example.com" ||
			!strings.Contains(string(msgs[0].Data), "body of alice") {
			t.Fatalf("server got %+v", msgs)
		}
		if ids := in.queued(t); len(ids) != 0 {
			t.Errorf("still queued: %v", ids)
		}
	})

	in.configure(t, liveURL)

	// The password cannot be read: not from the file, not through -C,
	// -v, -bv or an error message, not from a RELAYMAIL_*_FILE pointing
	// elsewhere.
	t.Run("PasswordStaysSecret", func(t *testing.T) {
		if ok, out := in.shell(t, in.alice, "cat "+in.conf); ok || strings.Contains(out, in.password) {
			t.Errorf("alice can read the configuration:\n%s", out)
		}
		o := in.sendmail(t, in.alice, userEnv, []string{"-C", in.conf, "-bv"}, nil)
		if o.exit != 77 {
			t.Errorf("-C: exit %d, want 77:\n%s", o.exit, o.stderr)
		}
		assertNoSecret(t, "-C", o.stdout+o.stderr, secrets...)

		evil := []string{"RELAYMAIL_CONFIG=/etc/shadow", "RELAYMAIL_PASSWORD_FILE=/etc/shadow", "RELAYMAIL_TLS_CA_FILE=" + in.conf}
		o = in.sendmail(t, in.alice, append(evil, userEnv...), []string{"-v", "-bv"}, nil)
		if o.exit != 0 || !strings.Contains(o.stdout, "auth: PLAIN as alice succeeded") {
			t.Errorf("-bv: exit %d:\n%s%s", o.exit, o.stdout, o.stderr)
		}
		assertNoSecret(t, "-bv", o.stdout+o.stderr, append(secrets, "root:")...)

		before := len(live.Messages())
		o = in.sendmail(t, in.alice, userEnv, []string{"-v", "dave@example.org"}, msg)
		if o.exit != 0 || !strings.Contains(o.stderr, "AUTH PLAIN [redacted]") || len(live.Messages()) != before+1 {
			t.Errorf("-v delivery: exit %d:\n%s", o.exit, o.stderr)
		}
		assertNoSecret(t, "the -v transcript", o.stdout+o.stderr, secrets...)

		// A configuration error does not quote the file to a user who
		// cannot read it, even when the offending line is a stray secret.
		stray := "stray-" + randomTag(8)
		in.configure(t, liveURL, stray)
		defer in.configure(t, liveURL)
		o = in.sendmail(t, in.alice, userEnv, []string{"dave@example.org"}, msg)
		if o.exit != 78 || !strings.Contains(o.stderr, "line 10, cannot be used") {
			t.Errorf("configuration error: exit %d:\n%s", o.exit, o.stderr)
		}
		assertNoSecret(t, "a configuration error", o.stdout+o.stderr, append(secrets, stray)...)
	})

	// -odb: the privileged sendmail queues and starts a detached run of
	// itself (set-group-ID again by exec, with the cleaned environment and
	// no inherited descriptor), which delivers.
	t.Run("BackgroundDelivery", func(t *testing.T) {
		defer in.clearQueue(t)
		before := len(live.Messages())
		o := in.sendmail(t, in.alice, append([]string{"RELAYMAIL_SMARTHOST=qmtp://127.0.0.1:1"}, userEnv...), []string{"-odb", "mia@example.org"}, msg)
		if o.exit != 0 {
			t.Fatalf("exit %d:\n%s", o.exit, o.stderr)
		}
		got, err := live.WaitMessages(before+1, 20*time.Second)
		if err != nil || got[len(got)-1].Rcpts[0].To != "mia@example.org" || got[len(got)-1].Auth != "alice" {
			t.Fatalf("the detached run did not deliver: %v", err)
		}
	})

	// The same for an alias file only the group can read.
	t.Run("AliasFileNotQuoted", func(t *testing.T) {
		aliases := filepath.Join(in.root, "etc", "aliases")
		stray := "stray-" + randomTag(8)
		os.WriteFile(aliases, []byte("root: "+stray+" \x01\n"), 0o600)
		in.own(t, aliases, 0o640)
		in.configure(t, liveURL, "aliases "+aliases)
		defer in.configure(t, liveURL)
		for _, args := range [][]string{{"root"}, {"-bi"}} {
			o := in.sendmail(t, in.alice, userEnv, args, msg)
			if o.exit != 78 || !strings.Contains(o.stderr, "the alias file "+aliases+" cannot be used") {
				t.Errorf("%q: exit %d:\n%s", args, o.exit, o.stderr)
			}
			assertNoSecret(t, "an alias file error", o.stdout+o.stderr, stray)
		}
	})

	// While it runs, the privileged process is closed to its caller: no
	// /proc/<pid>/environ, fd or mem, no core file, its effective group
	// lowered to the caller's outside the privileged steps, and an
	// inherited descriptor marked close-on-exec.
	t.Run("ProcessIsSealed", func(t *testing.T) {
		extra, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		defer extra.Close()
		cmd := in.command(in.alice, in.bin, append([]string{"RELAYMAIL_SMARTHOST=qmtp://127.0.0.1:1", "GODEBUG=tlsrsakex=1"}, userEnv...), []string{"-bs"})
		cmd.ExtraFiles = []*os.File{extra}
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			io.WriteString(stdin, "QUIT\r\n")
			stdin.Close()
			cmd.Wait()
		}()
		greeting, _ := bufio.NewReader(stdout).ReadString('\n')
		if !strings.HasPrefix(greeting, "220 ") {
			t.Fatalf("greeting %q", greeting)
		}
		pid := sendmailPID(t, cmd.Process.Pid)
		proc := "/proc/" + strconv.Itoa(pid)
		for _, script := range []string{"cat " + proc + "/environ", "ls " + proc + "/fd/", "readlink " + proc + "/exe"} {
			if ok, out := in.shell(t, in.alice, script); ok {
				t.Errorf("alice can %s:\n%.200s", script, out)
			}
		}
		status, _ := os.ReadFile(proc + "/status")
		gid := fmt.Sprintf("%d\t%d\t%d\t%d", in.alice.gid, in.alice.gid, in.gid, in.alice.gid)
		if !strings.Contains(string(status), "\nGid:\t"+gid+"\n") {
			t.Errorf("the group IDs (real, effective, saved, fs) are not %q:\n%s", gid, status)
		}
		limits, _ := os.ReadFile(proc + "/limits")
		if !strings.Contains(string(limits), "Max core file size        0                    0 ") {
			t.Errorf("core files are possible:\n%s", limits)
		}
		fdinfo, _ := os.ReadFile(proc + "/fdinfo/3")
		flags := ""
		for _, l := range strings.Split(string(fdinfo), "\n") {
			if v, ok := strings.CutPrefix(l, "flags:"); ok {
				flags = strings.TrimSpace(v)
			}
		}
		if f, err := strconv.ParseUint(flags, 8, 32); err != nil || f&syscall.O_CLOEXEC == 0 {
			t.Errorf("the inherited descriptor 3 is not close-on-exec: flags %q", flags)
		}
	})

	// No variable of the caller's redirects a privileged sendmail: not
	// RELAYMAIL_SMARTHOST, RELAYMAIL_CONFIG or RELAYMAIL_QUEUE_DIR; and -C
	// is refused outright.
	t.Run("RedirectionIgnored", func(t *testing.T) {
		evilSrv := relaytest.NewQMTPServer(t)
		dir := filepath.Join(in.root, "alice")
		os.Mkdir(dir, 0o755)
		os.Chown(dir, in.alice.uid, in.alice.gid)
		evilConf := filepath.Join(dir, "evil.conf")
		os.WriteFile(evilConf, []byte("smarthost "+qmtpURL(evilSrv)+"\nqueue_dir "+dir+"/q\n"), 0o644)
		env := append([]string{
			"RELAYMAIL_SMARTHOST=" + qmtpURL(evilSrv), "RELAYMAIL_CONFIG=" + evilConf,
			"RELAYMAIL_QUEUE_DIR=" + dir + "/q", "RELAYMAIL_PASSWORD=guess", "TMPDIR=" + dir,
		}, userEnv...)
		before := len(live.Messages())
		o := in.sendmail(t, in.alice, env, []string{"erin@example.org"}, msg)
		if o.exit != 0 || len(live.Messages()) != before+1 {
			t.Errorf("exit %d, %d messages at the configured smarthost:\n%s", o.exit, len(live.Messages())-before, o.stderr)
		}
		o = in.sendmail(t, in.alice, userEnv, []string{"-C", evilConf, "erin@example.org"}, msg)
		if o.exit != 77 || !strings.Contains(o.stderr, "-C is not permitted") {
			t.Errorf("-C: exit %d:\n%s", o.exit, o.stderr)
		}
		if n := len(evilSrv.Packages()); n != 0 {
			t.Errorf("the caller's smarthost got %d messages", n)
		}
		if _, err := os.Stat(dir + "/q"); err == nil {
			t.Errorf("the caller's queue_dir was created")
		}
	})

	// SSL_CERT_FILE and SSL_CERT_DIR are the caller's too: pointing them
	// at the caller's own CA does not make a privileged sendmail trust a
	// server that CA vouches for (and send it the password). The same
	// variables do work for a plain, unprivileged sendmail: that is the
	// control that shows the attack is real.
	t.Run("TrustAnchorsIgnored", func(t *testing.T) {
		ca := relaytest.NewTestCA(t, "attacker CA")
		srv := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{TLSConfig: ca.ServerConfig(t, relaytest.CertOptions{}),
			AuthUser: "alice", AuthPassword: in.password})
		caFile := filepath.Join(in.root, "attacker-ca.pem")
		os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644)
		url := "smtp://alice@localhost:" + port(srv.Addr())
		trust := []string{"SSL_CERT_FILE=" + caFile, "SSL_CERT_DIR=" + in.root + "/nonexistent"}

		control := mergeEnv(baseEnv(t, url), append([]string{"RELAYMAIL_PASSWORD=" + in.password, "RELAYMAIL_QUEUE=off"}, trust...))
		if o := runSendmail(t, control, []string{"frank@example.org"}, msg); o.exit != 0 || len(srv.Messages()) != 1 {
			t.Fatalf("control (plain binary): exit %d:\n%s", o.exit, o.stderr)
		}

		in.configure(t, url)
		defer in.configure(t, liveURL)
		defer in.clearQueue(t)
		o := in.sendmail(t, in.alice, append(trust, userEnv...), []string{"frank@example.org"}, msg)
		// 0: deferred and queued (the system roots do not know the CA);
		// 78: a system without CA certificates refuses to send at all.
		if (o.exit != 0 && o.exit != 78) || len(srv.Messages()) != 1 {
			t.Errorf("exit %d, %d messages at the attacker's server:\n%s", o.exit, len(srv.Messages())-1, o.stderr)
		}
	})

	// -X, which PHPMailer's CVE-2016-10033 smuggled in through the sender,
	// is refused (64) wherever it stands, and no file is written; inside
	// one -f argument it is just part of an invalid sender (65).
	t.Run("LogFileFlagRefused", func(t *testing.T) {
		shell := in.www + "/shell.php"
		before, snap := len(live.Messages()), in.spoolSnapshot(t)
		for _, tc := range []struct {
			args []string
			exit int
		}{
			{[]string{"-X", shell, "grace@example.org"}, 64},
			{[]string{"-ti", "-X" + shell}, 64},
			// mail($to, $subject, $body, $headers, '-f"attacker\" -oQ/tmp/ -X/var/www/shell.php some"@email.com')
			// as /bin/sh splits it for sendmail.
			{[]string{"-t", "-i", `-fattacker\`, "-oQ/tmp/", "-X" + shell, `some"@email.com`}, 64},
			{[]string{"-f", "attacker@example.com -X" + shell, "grace@example.org"}, 65},
			{[]string{"-f", `"attacker\" -oQ/tmp/ -X/x.php some"@email.com`, "grace@example.org"}, 0},
		} {
			o := in.sendmail(t, in.alice, userEnv, tc.args, []byte("To: grace@example.org\n\nx\n"))
			if o.exit != tc.exit {
				t.Errorf("%q: exit %d, want %d:\n%s", tc.args, o.exit, tc.exit, o.stderr)
			}
			if _, err := os.Stat(shell); err == nil {
				t.Fatalf("%q wrote %s", tc.args, shell)
			}
		}
		// The last case is a valid quoted local part; it is a sender, and
		// nothing more.
		if got := len(live.Messages()); got != before+1 {
			t.Errorf("%d messages sent, want 1", got-before)
		}
		if m := live.Messages(); len(m) > 0 && !strings.Contains(m[len(m)-1].From, `-oQ/tmp/ -X/x.php some`) {
			t.Errorf("sender %q", m[len(m)-1].From)
		}
		if in.spoolSnapshot(t) != snap {
			t.Errorf("the spool changed")
		}
	})

	// CR, LF, NUL and other control characters, angle brackets and
	// spaces are refused in every address a caller gives, before anything
	// is queued or sent; a display name is made harmless instead.
	t.Run("InjectionRefused", func(t *testing.T) {
		before, snap := len(live.Messages()), in.spoolSnapshot(t)
		for _, tc := range []struct {
			name  string
			args  []string
			stdin string
			exit  int
		}{
			{"sender CRLF", []string{"-f", "a@b.example>\r\nRCPT TO:<x@y.example>", "h@example.org"}, "\nx\n", 65},
			// A NUL cannot be in an argument at all (argv strings end at
			// one); it is tested in a header and in -bs below.
			{"sender SOH", []string{"-f", "a\x01@b.example", "h@example.org"}, "\nx\n", 65},
			{"sender space", []string{"-f", "a@b.example SIZE=1", "h@example.org"}, "\nx\n", 65},
			{"recipient CRLF", []string{"h@example.org>\r\nDATA"}, "\nx\n", 65},
			{"recipient DEL", []string{"h\x7f@example.org"}, "\nx\n", 65},
			{"header recipient NUL", []string{"-t"}, "To: h\x00@example.org\n\nx\n", 65},
			{"recipient escape", []string{"h\x1b]0;pwned\x07@example.org"}, "\nx\n", 65},
			{"header recipient", []string{"-t"}, "To: h\x01@example.org\n\nx\n", 65},
			{"header angle", []string{"-t"}, "To: <h@example.org>>\n\nx\n", 65},
			{"envid", []string{"-V", "id\r\nRCPT TO:<x@y>", "h@example.org"}, "\nx\n", 64},
			{"notify", []string{"-N", "failure\r\n", "h@example.org"}, "\nx\n", 64},
			{"syslog tag", []string{"-L", "tag\nsshd[1]: forged", "h@example.org"}, "\nx\n", 64},
			{"body type", []string{"-B", "8BITMIME\r\n", "h@example.org"}, "\nx\n", 64},
			{"too long", []string{strings.Repeat("l", 65) + "@example.org"}, "\nx\n", 65},
		} {
			o := in.sendmail(t, in.alice, userEnv, tc.args, []byte(tc.stdin))
			if o.exit != tc.exit {
				t.Errorf("%s: exit %d, want %d:\n%s", tc.name, o.exit, tc.exit, o.stderr)
			}
			if strings.ContainsAny(o.stderr, "\x00\x1b\x07") {
				t.Errorf("%s: control characters reach the terminal: %q", tc.name, o.stderr)
			}
		}
		// -bs: the session refuses the address with 553 and sends nothing.
		o := in.sendmail(t, in.alice, userEnv, []string{"-bs"},
			[]byte("EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<h\x00i@example.org>\r\nRCPT TO:<h@example.org> FOO=BAR\r\nQUIT\r\n"))
		if !strings.Contains(o.stdout, "553 ") || strings.Count(o.stdout, "250 ") > 2 {
			t.Errorf("-bs: exit %d:\n%s", o.exit, o.stdout)
		}
		if got := len(live.Messages()); got != before {
			t.Errorf("%d messages were sent", got-before)
		}
		if in.spoolSnapshot(t) != snap {
			t.Errorf("the spool changed")
		}
		// -F is a display name: control characters become spaces, so it
		// cannot add a header field.
		o = in.sendmail(t, in.alice, userEnv, []string{"-F", "Eve\r\nBcc: victim@example.net", "h@example.org"}, []byte("Subject: s\n\nx\n"))
		m := live.Messages()
		if o.exit != 0 || len(m) != before+1 {
			t.Fatalf("-F: exit %d:\n%s", o.exit, o.stderr)
		}
		data := string(m[len(m)-1].Data)
		if strings.Contains(data, "\nBcc:") || len(m[len(m)-1].Rcpts) != 1 {
			t.Errorf("-F injected a field:\n%s", data)
		}
	})

	// A recipient that looks like an option is refused (64); only after
	// -- is it a recipient (and then an ordinary address).
	t.Run("OptionLikeRecipient", func(t *testing.T) {
		snap := in.spoolSnapshot(t)
		for _, args := range [][]string{{"h@example.org", "-oQ/tmp"}, {"-oQ/tmp"}, {"h@example.org", "-X/tmp/x"}} {
			if o := in.sendmail(t, in.alice, userEnv, args, msg); o.exit != 64 {
				t.Errorf("%q: exit %d, want 64:\n%s", args, o.exit, o.stderr)
			}
		}
		if in.spoolSnapshot(t) != snap {
			t.Errorf("the spool changed")
		}
	})

	// A user can neither read, change nor delete another user's queued
	// message, nor change their own after submission: the spool is 2770
	// root:relaymail, so no user can reach a file in it, even one they
	// own. mailq lists envelopes, never contents.
	t.Run("QueueFilesOutOfReach", func(t *testing.T) {
		in.configure(t, "smtp://alice@127.0.0.1:"+freePort(t)+"?tls=none")
		defer in.configure(t, liveURL)
		defer in.clearQueue(t)
		private := "private-" + randomTag(6)
		o := in.sendmail(t, in.alice, userEnv, []string{"ivan@example.org"}, []byte("Subject: "+private+"\n\n"+private+"\n"))
		ids := in.queued(t)
		if o.exit != 0 || len(ids) != 1 {
			t.Fatalf("exit %d, queued %v:\n%s", o.exit, ids, o.stderr)
		}
		id := ids[0]
		snap := in.spoolSnapshot(t)
		for _, who := range []account{in.bob, in.alice} {
			for _, f := range []string{"env/" + id, "msg/" + id} {
				p := in.spool + "/" + f
				for _, script := range []string{
					"cat " + p, "rm -f " + p, "echo 'rcpt pending mallory@example.net' >> " + p, "chmod 666 " + p,
					"mv " + p + " /tmp/" + id, "ln " + p + " /tmp/" + id,
				} {
					if ok, out := in.shell(t, who, script); ok || strings.Contains(out, private) {
						t.Errorf("%s: %q succeeded:\n%s", who.name, script, out)
					}
				}
			}
		}
		if in.spoolSnapshot(t) != snap {
			t.Errorf("the spool changed:\n%s", in.spoolSnapshot(t))
		}
		o = in.sendmail(t, in.bob, userEnv, []string{"-bp"}, nil)
		if o.exit != 0 || !strings.Contains(o.stdout, id) || !strings.Contains(o.stdout, "ivan@example.org") || strings.Contains(o.stdout+o.stderr, private) {
			t.Errorf("mailq as bob: exit %d:\n%s%s", o.exit, o.stdout, o.stderr)
		}
	})

	// Files planted in the spool (by someone who holds the relaymail
	// group, simulated here by root) are not followed: a symbolic link to
	// a file of the user who runs the queue is not sent, a FIFO does not
	// hang the run, and both are left alone; the same when root runs the
	// queue (as the relaymail user).
	t.Run("PlantedSymlink", func(t *testing.T) {
		defer in.clearQueue(t)
		// bob's private file: the runner bob starts could read it, the
		// relaymail group cannot.
		secret := "TOP-SECRET-" + randomTag(8)
		secretFile := filepath.Join(in.root, "secret")
		os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
		os.Chown(secretFile, in.bob.uid, in.bob.gid)
		plant := func(rcpt string, size int) string {
			id := fmt.Sprintf("%016X-%s", time.Now().UnixNano(), randomTag(4))
			env := fmt.Sprintf("relaymail-envelope 1\nid %s\narrival %s\nsender mallory@example.net\nsize %d\nattempts 0\nrcpt pending %s\n",
				id, time.Now().UTC().Format(time.RFC3339), size, rcpt)
			p := filepath.Join(in.spool, "env", id)
			os.WriteFile(p, []byte(env), 0o640)
			in.own(t, p, 0o640)
			return id
		}
		linked := plant("mallory@example.net", len(secret)+1)
		os.Symlink(secretFile, filepath.Join(in.spool, "msg", linked))
		fifo := plant("mallory@example.net", 10)
		syscall.Mkfifo(filepath.Join(in.spool, "msg", fifo), 0o640)
		envLink := fmt.Sprintf("%016X-%s", time.Now().UnixNano(), randomTag(4))
		os.Symlink(secretFile, filepath.Join(in.spool, "env", envLink))

		snap := in.spoolSnapshot(t)
		before := len(live.Messages())
		for _, who := range []account{in.bob, {name: "root"}} {
			start := time.Now()
			o := in.sendmail(t, who, userEnv, []string{"-q"}, nil)
			if o.exit != 75 || !strings.Contains(o.stderr, "is a symbolic link") || !strings.Contains(o.stderr, "is not a regular file") {
				t.Errorf("-q as %s: exit %d:\n%s", who.name, o.exit, o.stderr)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("-q as %s took %v", who.name, d)
			}
			assertNoSecret(t, "-q", o.stdout+o.stderr, secret)
		}
		for _, m := range live.Messages()[before:] {
			if strings.Contains(string(m.Data), secret) {
				t.Fatalf("the secret was sent to %v", m.Rcpts)
			}
		}
		if len(live.Messages()) != before {
			t.Errorf("%d messages sent", len(live.Messages())-before)
		}
		if in.spoolSnapshot(t) != snap {
			t.Errorf("the planted files were touched:\n%s\nwas\n%s", in.spoolSnapshot(t), snap)
		}
	})

	// A header over max_header_size is refused (65) before anything is
	// queued or sent.
	t.Run("HugeHeader", func(t *testing.T) {
		before, snap := len(live.Messages()), in.spoolSnapshot(t)
		var b strings.Builder
		for b.Len() < 2<<20 {
			b.WriteString("X-Filler: " + strings.Repeat("a", 990) + "\n")
		}
		b.WriteString("\nbody\n")
		o := in.sendmail(t, in.alice, userEnv, []string{"judy@example.org"}, []byte(b.String()))
		if o.exit != 65 || !strings.Contains(o.stderr, "header") {
			t.Errorf("exit %d:\n%s", o.exit, o.stderr)
		}
		if len(live.Messages()) != before || in.spoolSnapshot(t) != snap {
			t.Errorf("something was sent or kept")
		}
	})

	// A hostile smarthost that answers with an endless line (SMTP) or an
	// endless netstring length (QMTP) is a deferral within the caps; the
	// message waits in the queue.
	t.Run("EndlessReply", func(t *testing.T) {
		defer in.configure(t, liveURL)
		for _, tc := range []struct {
			scheme string
			serve  func(c net.Conn)
		}{
			{"smtp", func(c net.Conn) {
				io.WriteString(c, "220 ")
				endless(c, 'a')
			}},
			{"qmtp", func(c net.Conn) {
				c.Read(make([]byte, 4096))
				endless(c, '9')
			}},
		} {
			t.Run(tc.scheme, func(t *testing.T) {
				defer in.clearQueue(t)
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				go func() {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						go func() {
							defer c.Close()
							tc.serve(c)
						}()
					}
				}()
				url := tc.scheme + "://127.0.0.1:" + port(l.Addr().String())
				if tc.scheme == "smtp" {
					url += "?tls=none"
				}
				in.configure(t, url)
				start := time.Now()
				o := in.sendmail(t, in.alice, userEnv, []string{"ken@example.org"}, msg)
				if o.exit != 0 || !strings.Contains(o.stderr, "deferred") || len(in.queued(t)) != 1 {
					t.Errorf("exit %d:\n%s", o.exit, o.stderr)
				}
				if d := time.Since(start); d > 30*time.Second {
					t.Errorf("took %v", d)
				}
			})
		}
	})

	// A queue run is refused under a hard limit the caller set on file
	// size or CPU time, with which the run could be stopped after a
	// delivery and before its state is written, again and again.
	t.Run("QueueRunUnderLimits", func(t *testing.T) {
		for _, ulimit := range []string{"ulimit -f 1024", "ulimit -t 600"} {
			ok, out := in.shell(t, in.alice, ulimit+"; exec "+in.bin+" -q")
			if ok || !strings.Contains(out, "not permitted under a hard limit") {
				t.Errorf("%s: %v:\n%s", ulimit, ok, out)
			}
		}
	})

	// qmail-inject is installed the same way: it submits, and it reads
	// QMAILMFTFILE with the caller's own privileges, so that it cannot
	// copy the configuration into a header.
	t.Run("QmailInject", func(t *testing.T) {
		before := len(live.Messages())
		o := in.as(t, in.alice, in.qmailInject, append([]string{"QMAILMFTFILE=" + in.conf}, userEnv...), []string{"leo@example.org"},
			[]byte("To: leo@example.org, list@example.org\nSubject: mft\n\nx\n"))
		if o.exit != 111 || !strings.Contains(o.stderr, "QMAILMFTFILE") {
			t.Errorf("QMAILMFTFILE: exit %d:\n%s", o.exit, o.stderr)
		}
		o = in.as(t, in.alice, in.qmailInject, append([]string{"RELAYMAIL_SMARTHOST=qmtp://127.0.0.1:1"}, userEnv...), []string{"leo@example.org"}, []byte("Subject: qi\n\nx\n"))
		m := live.Messages()
		if o.exit != 0 || len(m) != before+1 || m[len(m)-1].Auth != "alice" {
			t.Fatalf("qmail-inject: exit %d:\n%s", o.exit, o.stderr)
		}
		assertNoSecret(t, "the message", string(m[len(m)-1].Data), secrets...)
	})
}

// endless writes c until the client hangs up.
func endless(c net.Conn, b byte) {
	chunk := bytes.Repeat([]byte{b}, 64<<10)
	c.SetWriteDeadline(time.Now().Add(time.Minute))
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// sendmailPID finds the sendmail that setpriv (pid) became: setpriv execs
// it, so it is the same process.
func sendmailPID(t *testing.T, pid int) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		if strings.HasSuffix(exe, "/usr/sbin/sendmail") {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d is not sendmail", pid)
	return 0
}
