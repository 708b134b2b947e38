// Package container tests the container image of packaging/container
// without a Docker engine: it builds the static binaries as the Dockerfile
// does, lays out the image's file tree with rootfs.sh (the script the
// Dockerfile runs) under a temporary directory, and runs relaymail there in
// a chroot as uid 4242, which has no passwd entry, with an
// environment-only configuration and the password in a secret file, against
// a real Postfix with STARTTLS and SASL on loopback.
package container

import (
	"bytes"
	"debug/elf"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relaymail/e2e/realserver"
)

// The uid and gid the test runs relaymail as: an arbitrary uid without a
// passwd entry, in group 0, as OpenShift runs containers.
const (
	runUID = 4242
	runGID = 0
)

// buildStatic builds the two programs with the Dockerfile's command.
func buildStatic(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"sendmail", "qmail-inject"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=container-test",
			"-o", filepath.Join(dir, p), "../../cmd/"+p)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p, err, out)
		}
	}
	return dir
}

// TestStaticBinary: the binaries the image holds need no libc: ELF without
// an interpreter or needed libraries, and file(1) and ldd(1) agree.
func TestStaticBinary(t *testing.T) {
	bin := buildStatic(t)
	for _, p := range []string{"sendmail", "qmail-inject"} {
		path := filepath.Join(bin, p)
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
				t.Errorf("%s has a %v program header: it is dynamically linked", p, prog.Type)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("%s needs libraries %v (%v)", p, libs, err)
		}
		f.Close()
		if file, err := exec.LookPath("file"); err == nil {
			out, _ := exec.Command(file, "-b", path).Output()
			if !strings.Contains(string(out), "statically linked") {
				t.Errorf("file %s: %s", p, out)
			}
		}
		if ldd, err := exec.LookPath("ldd"); err == nil {
			out, _ := exec.Command(ldd, path).CombinedOutput()
			if !strings.Contains(string(out), "not a dynamic executable") {
				t.Errorf("ldd %s: %s", p, out)
			}
		}
	}
}

// rootfs lays the image out under a new directory with rootfs.sh.
func rootfs(t *testing.T, bin string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("sh", "rootfs.sh", bin, root).CombinedOutput(); err != nil {
		t.Fatalf("rootfs.sh: %v\n%s", err, out)
	}
	// Only what rootfs.sh put there: no libc, no passwd, no configuration.
	for _, p := range []string{"lib", "lib64", "usr/lib/x86_64-linux-gnu", "etc/passwd", "etc/group", "etc/relaymail.conf", "bin/sh"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the image has /%s (%v)", p, err)
		}
	}
	return root
}

type result struct {
	exit           int
	stdout, stderr string
}

// inChroot runs argv in root as runUID:runGID with exactly env.
func inChroot(t *testing.T, root string, env []string, stdin string, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	// Go resolves argv[0] before the chroot; the path is the image's.
	cmd.Path = argv[0]
	cmd.Dir = "/"
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: runUID, Gid: runGID, Groups: []uint32{}},
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not finish in 60s", argv)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestImageInChroot: the image's file tree, run in a chroot as uid 4242,
// configured only by the environment with the password in a secret file,
// relays to a Postfix that requires STARTTLS and AUTH; with the smarthost
// down it queues, mailq lists the message, and a queue run delivers it.
func TestImageInChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the chroot test needs root")
		}
		t.Skip("the chroot test needs root")
	}
	root := rootfs(t, buildStatic(t))
	dc := realserver.StartDovecot(t)
	pf := realserver.StartPostfix(t, realserver.PostfixOptions{SASL: dc, RequireAuth: true, RequireTLS: true})

	// The secrets, as a platform mounts them: readable by the container's
	// user only.
	secrets := filepath.Join(root, "run", "secrets")
	if err := os.MkdirAll(secrets, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pf.CACert)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"relaymail_password": []byte(realserver.Password + "\n"), "smarthost-ca.pem": ca} {
		p := filepath.Join(secrets, name)
		if err := os.WriteFile(p, data, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, runUID, runGID); err != nil {
			t.Fatal(err)
		}
	}

	env := func(smarthost string, extra ...string) []string {
		return append([]string{
			"PATH=/usr/sbin:/usr/bin",
			"RELAYMAIL_SMARTHOST=" + smarthost,
			"RELAYMAIL_PASSWORD_FILE=/run/secrets/relaymail_password",
			"RELAYMAIL_TLS_CA_FILE=/run/secrets/smarthost-ca.pem",
			"RELAYMAIL_DOMAIN=example.com",
			"RELAYMAIL_HOSTNAME=app.example.com",
			"RELAYMAIL_LOG=stderr",
			"RELAYMAIL_FLUSH_AFTER_SEND=no",
		}, extra...)
	}
	good := "smtp://" + realserver.User1 + "@" + pf.SMTPAddr

	msg := "To: Ann <ann@example.org>\nBcc: hidden@example.net\nSubject: from the container\n\nhello from uid 4242\n"
	r := inChroot(t, root, env(good), msg, "/usr/sbin/sendmail", "-t", "-i")
	if r.exit != 0 {
		t.Fatalf("sendmail -t -i in the chroot: exit %d\n%s", r.exit, r.stderr)
	}
	// LOGNAME names the sender of a uid without a passwd entry.
	r = inChroot(t, root, env(good, "LOGNAME=app"), "Subject: as app\n\nbody\n", "/usr/sbin/sendmail", "-i", "ops@example.org")
	if r.exit != 0 {
		t.Fatalf("sendmail with LOGNAME=app: exit %d\n%s", r.exit, r.stderr)
	}
	// PHPMailer's isQmail(): /var/qmail/bin/qmail-inject.
	r = inChroot(t, root, env(good, "QMAILUSER=web"), "To: q@example.org\nSubject: qmail\n\nbody\n", "/var/qmail/bin/qmail-inject")
	if r.exit != 0 {
		t.Fatalf("qmail-inject in the chroot: exit %d\n%s", r.exit, r.stderr)
	}

	got := map[string]realserver.Delivery{}
	for _, d := range pf.Delivered() {
		got[d.Recipient] = d
	}
	want := map[string]string{ // recipient: sender
		"ann@example.org":    "uid4242@example.com",
		"hidden@example.net": "uid4242@example.com",
		"ops@example.org":    "app@example.com",
		"q@example.org":      "web@example.com",
	}
	if len(got) != len(want) {
		t.Errorf("postfix got %d deliveries, want %d: %v", len(got), len(want), got)
	}
	for rcpt, sender := range want {
		d, ok := got[rcpt]
		if !ok {
			t.Errorf("nothing delivered to %s", rcpt)
			continue
		}
		if d.Sender != sender {
			t.Errorf("%s: envelope sender %q, want %q", rcpt, d.Sender, sender)
		}
		content := string(d.Content())
		if strings.Contains(strings.ToLower(content), "\nbcc:") || strings.HasPrefix(strings.ToLower(content), "bcc:") {
			t.Errorf("%s: a Bcc field reached the smarthost:\n%s", rcpt, content)
		}
		// Postfix's Received field says the client authenticated over TLS.
		if rec := d.Received(); !strings.Contains(rec, "ESMTPSA") {
			t.Errorf("%s: not sent with TLS and AUTH: Received: %s", rcpt, rec)
		}
	}
	if d := got["ann@example.org"]; !strings.Contains(string(d.Content()), "From: uid4242@example.com\n") {
		t.Errorf("the added From field does not name uid4242:\n%s", d.Content())
	}

	// The smarthost is down: the message is queued in the image's spool,
	// owned by the uid that wrote it, and a queue run delivers it.
	closed := closedPort(t)
	r = inChroot(t, root, env("smtp://"+realserver.User1+"@"+closed), "To: later@example.org\nSubject: queued\n\nbody\n", "/usr/sbin/sendmail", "-t", "-i")
	if r.exit != 0 {
		t.Fatalf("sendmail with the smarthost down: exit %d, want 0 (queued)\n%s", r.exit, r.stderr)
	}
	r = inChroot(t, root, env(good), "", "/usr/bin/mailq")
	if r.exit != 0 || !strings.Contains(r.stdout, "later@example.org") {
		t.Fatalf("mailq: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
	envs, _ := filepath.Glob(filepath.Join(root, "var/spool/relaymail/env/*"))
	if len(envs) != 1 {
		t.Fatalf("the spool holds %d envelopes, want 1", len(envs))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(envs[0], &st); err != nil || st.Uid != runUID {
		t.Errorf("the queued envelope belongs to uid %d (%v), want %d", st.Uid, err, runUID)
	}
	r = inChroot(t, root, env(good), "", "/usr/sbin/sendmail", "-q")
	if r.exit != 0 {
		t.Fatalf("sendmail -q: exit %d\n%s", r.exit, r.stderr)
	}
	r = inChroot(t, root, env(good), "", "/usr/bin/mailq")
	if r.exit != 0 || !strings.Contains(r.stdout, "empty") {
		t.Errorf("mailq after the queue run: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
	found := false
	for _, d := range pf.Delivered() {
		found = found || d.Recipient == "later@example.org"
	}
	if !found {
		t.Error("the queued message was not delivered by sendmail -q")
	}
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
