// Package e2e runs the built sendmail binary (never `go run`, which hides
// exit codes) against in-process relaytest servers on loopback.
package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/relaytest"
)

var sendmailBin, qmailInjectBin string

var update = flag.Bool("update", false, "rewrite the golden .out and .exit files")

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "relaymail-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sendmailBin = filepath.Join(dir, "sendmail")
	build := exec.Command("go", "build", "-trimpath", "-o", sendmailBin, "../cmd/sendmail")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building sendmail: %v\n%s", err, out)
		os.Exit(1)
	}
	qmailInjectBin = filepath.Join(dir, "qmail-inject")
	build = exec.Command("go", "build", "-trimpath", "-o", qmailInjectBin, "../cmd/qmail-inject")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building qmail-inject: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type outcome struct {
	exit           int
	stdout, stderr string
}

// baseEnv is a clean environment: nothing from the machine running the tests
// leaks in, and /etc/relaymail.conf is never read.
func baseEnv(t *testing.T, smarthost string) []string {
	conf := filepath.Join(t.TempDir(), "relaymail.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=/usr/bin:/bin",
		"RELAYMAIL_CONFIG=" + conf,
		"RELAYMAIL_LOG=none",
		"RELAYMAIL_DOMAIN=example.com",
		"RELAYMAIL_HOSTNAME=host.example.com",
		"RELAYMAIL_FROM=alice",
		"RELAYMAIL_TIMEOUT=10s",
		// Every test gets its own spool, and no detached queue runs that
		// could outlive it.
		"RELAYMAIL_QUEUE_DIR=" + filepath.Join(t.TempDir(), "queue"),
		"RELAYMAIL_FLUSH_AFTER_SEND=no",
		// The machine's /etc/aliases must not change what the tests
		// see; /dev/null is an empty alias file every uid can read.
		"RELAYMAIL_ALIASES=/dev/null",
		"NAME=",
	}
	if smarthost != "" {
		env = append(env, "RELAYMAIL_SMARTHOST="+smarthost)
	}
	return env
}

// mergeEnv lets later entries replace earlier ones with the same name, and
// "NAME" alone (no "=") remove one.
func mergeEnv(base, extra []string) []string {
	var out []string
	for _, e := range mergeKeyed(base, extra, "=") {
		if strings.Contains(e, "=") {
			out = append(out, e)
		}
	}
	return out
}

// mergeKeyed appends each entry of extra to base in turn, first removing
// the entries with the same key: the text before sep.
func mergeKeyed(base, extra []string, sep string) []string {
	out := append([]string(nil), base...)
	for _, e := range extra {
		key, _, _ := strings.Cut(e, sep)
		kept := out[:0]
		for _, o := range out {
			if k, _, _ := strings.Cut(o, sep); k != key {
				kept = append(kept, o)
			}
		}
		out = append(kept, e)
	}
	return out
}

func runSendmail(t *testing.T, env, args []string, stdin []byte) outcome {
	t.Helper()
	return runSendmailAs(t, sendmailBin, env, args, stdin)
}

func runSendmailAs(t *testing.T, bin string, env, args []string, stdin []byte) outcome {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("sendmail %q did not finish", args)
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

func qmtpURL(s *relaytest.QMTPServer) string {
	if s.Network() == "unix" {
		return "qmtp:" + s.Addr()
	}
	return "qmtp://" + s.Addr()
}

var (
	generatedID = regexp.MustCompile(`<\d{14}\.[0-9a-f]{16}@host\.example\.com>`)
	dateLine    = regexp.MustCompile(`(?m)^((?:Resent-)?Date): ([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4})$`)
)

// mask replaces what intake generates from the clock and randomness, so the
// rest can be compared byte for byte. Dates taken from the input are old and
// stay.
func mask(s string) string {
	s = generatedID.ReplaceAllString(s, "<GENERATED@host.example.com>")
	return maskRecentDates(s, dateLine, "Mon, 02 Jan 2006 15:04:05 -0700", "GENERATED")
}

// maskRecentDates replaces each line that re matches and whose date (re's
// second group, in layout) lies within two days of now by re's first group
// (the field name), ": " and generated. Older dates came from the input.
func maskRecentDates(s string, re *regexp.Regexp, layout, generated string) string {
	return re.ReplaceAllStringFunc(s, func(l string) string {
		m := re.FindStringSubmatch(l)
		d, err := time.Parse(layout, m[2])
		if err == nil && time.Since(d).Abs() < 48*time.Hour {
			return m[1] + ": " + generated
		}
		return l
	})
}

func render(pkgs []relaytest.QMTPPackage, o outcome) string {
	var b strings.Builder
	for i, p := range pkgs {
		sender := p.Sender
		if sender == "" {
			sender = "<>"
		}
		fmt.Fprintf(&b, "== package %d\nsender %s\n", i+1, sender)
		for _, r := range p.Recipients {
			fmt.Fprintf(&b, "rcpt %s\n", r)
		}
		fmt.Fprintf(&b, "-- message (encoding %q)\n%s", p.Encoding, p.Message)
	}
	fmt.Fprintf(&b, "== stderr\n%s", o.stderr)
	return mask(b.String())
}

// readArgs reads a golden case's arguments: one a line, with \r, \n and
// \\ escaped; empty lines are skipped.
func readArgs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if l != "" {
			args = append(args, unescapeArg(l))
		}
	}
	return args
}

func unescapeArg(s string) string {
	return strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\\`, `\`).Replace(s)
}

// TestGolden runs testdata/NN-name.{in,args,env} through the binary and the
// QMTP test server, and compares what the server stored (envelope and bytes)
// and what sendmail printed with NN-name.out, and the exit status with
// NN-name.exit. Run `go test ./e2e -run Golden -update` to rewrite them.
func TestGolden(t *testing.T) {
	argFiles, _ := filepath.Glob("testdata/*.args")
	if len(argFiles) == 0 {
		t.Fatal("no golden cases")
	}
	for _, af := range argFiles {
		base := strings.TrimSuffix(af, ".args")
		t.Run(filepath.Base(base), func(t *testing.T) {
			srv := relaytest.NewQMTPServer(t)
			args := readArgs(t, af)
			env := baseEnv(t, qmtpURL(srv))
			if extra, err := os.ReadFile(base + ".env"); err == nil {
				env = mergeEnv(env, strings.Split(strings.TrimSpace(string(extra)), "\n"))
			}
			in, err := os.ReadFile(base + ".in")
			if err != nil {
				t.Fatal(err)
			}
			o := runSendmail(t, env, args, in)
			got := render(srv.Packages(), o)
			checkGolden(t, base, got, o.exit)
		})
	}
}

// checkGolden compares a case's output and exit status with base.out and
// base.exit, or rewrites them with -update. A mismatch leaves the actual
// output in base.out.actual.
func checkGolden(t *testing.T, base, got string, exit int) {
	t.Helper()
	gotExit := fmt.Sprintf("%d\n", exit)
	if *update {
		os.WriteFile(base+".out", []byte(got), 0o644)
		os.WriteFile(base+".exit", []byte(gotExit), 0o644)
		return
	}
	want, err := os.ReadFile(base + ".out")
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	wantExit, _ := os.ReadFile(base + ".exit")
	if got != string(want) {
		os.WriteFile(base+".out.actual", []byte(got), 0o644)
		t.Errorf("output differs from %s.out (actual in %s.out.actual)\n%s", base, base, got)
	}
	if gotExit != string(wantExit) {
		t.Errorf("exit %s, want %s", strings.TrimSpace(gotExit), strings.TrimSpace(string(wantExit)))
	}
}
