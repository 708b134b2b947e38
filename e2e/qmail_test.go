package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay/relaytest"
)

// qmailEnv is the whole environment of a qmail-inject run, as `env -i`
// would leave it: only RELAYMAIL_CONFIG, pointing to a configuration with
// domain and hostname (and a smarthost, a private queue and no aliases),
// plus what the case adds.
func qmailEnv(t *testing.T, smarthost string, extra ...string) []string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "relaymail.conf")
	text := "domain example.com\nhostname host.example.com\nlog none\naliases /dev/null\n" +
		"queue_dir " + filepath.Join(dir, "queue") + "\nflush_after_send no\ntimeout 10s\n"
	if smarthost != "" {
		text += "smarthost " + smarthost + "\n"
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return append([]string{"RELAYMAIL_CONFIG=" + conf}, extra...)
}

var (
	qmailDateLine = regexp.MustCompile(`(?m)^((?:Resent-)?Date): (\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}) -0000$`)
	qmailID       = regexp.MustCompile(`<\d{14}\.\d+\.qmail@`)
	qmailVERPm    = regexp.MustCompile(`-\d{9,}\.\d+([-@"])`)
)

// maskQmail replaces what qmail-inject takes from the clock and its process
// ID: the Date and Message-ID it generates and the m letter's sender.
func maskQmail(s string) string {
	s = qmailID.ReplaceAllString(s, "<GENERATED.qmail@")
	s = qmailVERPm.ReplaceAllString(s, "-TIME.PID$1")
	return maskRecentDates(s, qmailDateLine, "2 Jan 2006 15:04:05", "GENERATED -0000")
}

func renderQmail(o outcome, pkgs []relaytest.QMTPPackage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "== stdout\n%s", o.stdout)
	for i, p := range pkgs {
		sender := p.Sender
		if sender == "" {
			sender = "<>"
		}
		fmt.Fprintf(&b, "== package %d\nsender %s\n", i+1, sender)
		for _, r := range p.Recipients {
			fmt.Fprintf(&b, "rcpt %s\n", r)
		}
		fmt.Fprintf(&b, "-- message\n%s", p.Message)
	}
	fmt.Fprintf(&b, "== stderr\n%s", o.stderr)
	return maskQmail(b.String())
}

// TestQmailGolden runs testdata/qmail/NN-name.{in,args,env} through the
// built qmail-inject with nothing else in its environment, and compares
// what it printed (-n), what the QMTP test server received and the exit
// status with NN-name.out and NN-name.exit. In .env, $TESTDATA stands for
// the absolute path of testdata/qmail. `go test ./e2e -run QmailGolden
// -update` rewrites the expected files.
func TestQmailGolden(t *testing.T) {
	argFiles, _ := filepath.Glob("testdata/qmail/*.args")
	if len(argFiles) == 0 {
		t.Fatal("no qmail-inject golden cases")
	}
	abs, err := filepath.Abs("testdata/qmail")
	if err != nil {
		t.Fatal(err)
	}
	for _, af := range argFiles {
		base := strings.TrimSuffix(af, ".args")
		t.Run(filepath.Base(base), func(t *testing.T) {
			srv := relaytest.NewQMTPServer(t)
			args := readArgs(t, af)
			var extra []string
			if e, err := os.ReadFile(base + ".env"); err == nil {
				for _, l := range strings.Split(strings.TrimSuffix(string(e), "\n"), "\n") {
					if l != "" {
						extra = append(extra, strings.ReplaceAll(l, "$TESTDATA", abs))
					}
				}
			}
			in, err := os.ReadFile(base + ".in")
			if err != nil {
				t.Fatal(err)
			}
			o := runSendmailAs(t, qmailInjectBin, qmailEnv(t, qmtpURL(srv), extra...), args, in)
			got := strings.ReplaceAll(renderQmail(o, srv.Packages()), abs, "$TESTDATA")
			checkGolden(t, base, got, o.exit)
		})
	}
}

// The issue's done-when, literally: `echo body | env -i qmail-inject -n
// -fjoe you` prints what qmail-inject would, with defaulthost and
// defaultdomain taken from the configuration (domain example.com).
func TestQmailDoneWhen(t *testing.T) {
	o := runSendmailAs(t, qmailInjectBin, qmailEnv(t, ""), []string{"-n", "-fjoe", "you"}, []byte("body\n"))
	if o.exit != 0 || o.stderr != "" {
		t.Fatalf("exit %d, stderr %q", o.exit, o.stderr)
	}
	want := regexp.MustCompile(`^Return-Path: <joe@example\.com>
Date: \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} -0000
Message-ID: <\d{14}\.\d+\.qmail@host\.example\.com>
From: anonymous@example\.com
Cc: recipient list not shown: ;

body
$`)
	if !want.MatchString(o.stdout) {
		t.Errorf("stdout:\n%s", o.stdout)
	}
}
