package e2e

import (
	"bytes"
	"crypto/sha256"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay/relaytest"
)

const simple = "Subject: hi\n\nbody\n"

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func scripted(t *testing.T, replies ...relaytest.QMTPAction) *relaytest.QMTPServer {
	srv := relaytest.NewQMTPServer(t)
	srv.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
		if i < len(replies) {
			return replies[i]
		}
		return relaytest.QMTPAction{}
	}
	return srv
}

// Exit codes and stderr for mixed per-recipient results: exactly one line per
// recipient that was not delivered, in envelope order.
func TestPartialResults(t *testing.T) {
	cases := []struct {
		name    string
		replies []relaytest.QMTPAction
		exit    int
		stderr  []string
	}{
		{name: "all K", replies: []relaytest.QMTPAction{relaytest.Reply("K", "ok"), relaytest.Reply("K", "ok"), relaytest.Reply("K", "ok")}, exit: 0},
		{name: "K Z D", replies: []relaytest.QMTPAction{relaytest.Reply("K", "ok"), relaytest.Reply("Z", "mailbox busy (#4.2.1)"), relaytest.Reply("D", "no such user (#5.1.1)")},
			exit: 67, stderr: []string{"sendmail: b@example.org: deferred: mailbox busy (#4.2.1)", "sendmail: c@example.org: failed: no such user (#5.1.1)"}},
		{name: "K Z K", replies: []relaytest.QMTPAction{relaytest.Reply("K", "ok"), relaytest.Reply("Z", "try later"), relaytest.Reply("K", "ok")},
			exit: 75, stderr: []string{"sendmail: b@example.org: deferred: try later"}},
		{name: "message too big for all", replies: []relaytest.QMTPAction{
			relaytest.Reply("D", "sorry, that message size exceeds my databytes limit (#5.3.4)"),
			relaytest.Reply("D", "sorry, that message size exceeds my databytes limit (#5.3.4)"),
			relaytest.Reply("D", "sorry, that message size exceeds my databytes limit (#5.3.4)")},
			exit: 69},
		{name: "close after first reply", replies: []relaytest.QMTPAction{relaytest.Reply("K", "ok"), relaytest.CloseConn()},
			exit: 75, stderr: []string{"sendmail: b@example.org: deferred:", "sendmail: c@example.org: deferred:"}},
		{name: "garbled reply", replies: []relaytest.QMTPAction{relaytest.Reply("X", "what")},
			exit: 75, stderr: []string{"sendmail: a@example.org: deferred: qmtp: protocol error", "sendmail: b@example.org: deferred:", "sendmail: c@example.org: deferred:"}},
	}
	for _, c := range cases {
		for _, queue := range []string{"off", "on"} {
			t.Run(c.name+"/queue "+queue, func(t *testing.T) {
				srv := scripted(t, c.replies...)
				env := mergeEnv(baseEnv(t, qmtpURL(srv)), []string{"RELAYMAIL_QUEUE=" + queue})
				o := runSendmail(t, env, []string{"a@example.org", "b@example.org", "c@example.org"}, []byte(simple))
				want := c.exit
				if queue == "on" && want == 75 {
					want = 0 // the deferred recipients were queued
				}
				if o.exit != want {
					t.Errorf("exit %d, want %d; stderr:\n%s", o.exit, want, o.stderr)
				}
				for _, want := range c.stderr {
					if !strings.Contains(o.stderr, want) {
						t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
					}
				}
				if c.exit == 0 && o.stderr != "" {
					t.Errorf("unexpected stderr: %s", o.stderr)
				}
				if queue == "on" && c.exit == 75 && !strings.Contains(o.stderr, "(queued as ") {
					t.Errorf("no queued note on stderr:\n%s", o.stderr)
				}
				lines := 0
				for _, l := range strings.Split(o.stderr, "\n") {
					if strings.HasPrefix(l, "sendmail: ") && strings.Contains(l, "@example.org: ") {
						lines++
					}
				}
				if lines != len(c.stderr) && c.exit != 69 {
					t.Errorf("%d recipient lines on stderr, want %d:\n%s", lines, len(c.stderr), o.stderr)
				}
				pkgs := srv.Packages()
				if len(pkgs) != 1 {
					t.Fatalf("%d packages, want 1", len(pkgs))
				}
				if got := strings.Join(pkgs[0].Recipients, " "); got != "a@example.org b@example.org c@example.org" {
					t.Errorf("recipients %q", got)
				}
			})
		}
	}
}

// Failover: an unreachable first smarthost, then a working one; and a
// partial first attempt whose deferred recipients go to the second one only.
func TestFailover(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		good := relaytest.NewQMTPServer(t)
		env := baseEnv(t, "qmtp://"+closedPort(t)+" "+qmtpURL(good))
		o := runSendmail(t, env, []string{"a@example.org"}, []byte(simple))
		if o.exit != 0 {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		if n := len(good.Packages()); n != 1 {
			t.Errorf("second smarthost got %d packages", n)
		}
	})
	t.Run("deferred recipients move on, final ones do not", func(t *testing.T) {
		first := scripted(t, relaytest.Reply("K", "ok"), relaytest.Reply("D", "no (#5.1.1)"), relaytest.CloseConn())
		second := relaytest.NewQMTPServer(t)
		env := baseEnv(t, qmtpURL(first)+","+qmtpURL(second))
		o := runSendmail(t, env, []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org"}, []byte(simple))
		if o.exit != 67 {
			t.Errorf("exit %d, want 67: %s", o.exit, o.stderr)
		}
		pkgs := second.Packages()
		if len(pkgs) != 1 || strings.Join(pkgs[0].Recipients, " ") != "c@example.org d@example.org" {
			t.Errorf("second smarthost got %+v", pkgs)
		}
	})
	t.Run("all down", func(t *testing.T) {
		env := mergeEnv(baseEnv(t, "qmtp://"+closedPort(t)+" qmtp://"+closedPort(t)), []string{"RELAYMAIL_QUEUE=off"})
		o := runSendmail(t, env, []string{"a@example.org"}, []byte(simple))
		if o.exit != 75 || !strings.Contains(o.stderr, "sendmail: a@example.org: deferred:") || !strings.Contains(o.stderr, "refused") {
			t.Errorf("exit %d, stderr:\n%s", o.exit, o.stderr)
		}
	})
}

func TestUnixSocketSmarthost(t *testing.T) {
	srv := relaytest.NewUnixQMTPServer(t)
	o := runSendmail(t, baseEnv(t, qmtpURL(srv)), []string{"a@example.org"}, []byte(simple))
	if o.exit != 0 || len(srv.Packages()) != 1 {
		t.Fatalf("exit %d, %d packages: %s", o.exit, len(srv.Packages()), o.stderr)
	}
}

// A large message crosses intake and QMTP unchanged apart from line endings.
func TestLargeMessage(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	var in bytes.Buffer
	in.WriteString("Subject: big\r\nMessage-ID: <big@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: a@example.com\r\n\r\n")
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	for in.Len() < 20<<20 {
		in.WriteString(line)
	}
	o := runSendmail(t, baseEnv(t, qmtpURL(srv)), []string{"-i", "a@example.org"}, in.Bytes())
	if o.exit != 0 {
		t.Fatalf("exit %d: %s", o.exit, o.stderr)
	}
	want := bytes.ReplaceAll(in.Bytes(), []byte("\r\n"), []byte("\n"))
	got := srv.Packages()[0].Message
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Errorf("message changed in transit: got %d bytes, want %d", len(got), len(want))
	}
}

// Without RELAYMAIL_FROM the sender is the login name of the real uid, not
// $USER, which the caller controls.
func TestDefaultSenderIsLoginName(t *testing.T) {
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Skip("no passwd entry for this uid")
	}
	srv := relaytest.NewQMTPServer(t)
	env := mergeEnv(baseEnv(t, qmtpURL(srv)), []string{"RELAYMAIL_FROM", "USER=mallory", "LOGNAME=mallory"})
	o := runSendmail(t, env, []string{"a@example.org"}, []byte(simple))
	if o.exit != 0 {
		t.Fatalf("exit %d: %s", o.exit, o.stderr)
	}
	if got, want := srv.Packages()[0].Sender, u.Username+"@example.com"; got != want {
		t.Errorf("sender %q, want %q", got, want)
	}
}

func TestRefusals(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	dir := t.TempDir()
	badConf := filepath.Join(dir, "bad.conf")
	os.WriteFile(badConf, []byte("# relay\nsmarhost qmtp://127.0.0.1\n"), 0o644)
	pipeAliases := filepath.Join(dir, "aliases")
	os.WriteFile(pipeAliases, []byte("root: admin@example.com\nbob: \"|/usr/bin/procmail\"\n"), 0o644)
	smtpConf := filepath.Join(dir, "smtp.conf")
	os.WriteFile(smtpConf, []byte("smarthost smtp://user@mail.example.com\n"), 0o644)
	cases := []struct {
		name   string
		env    []string
		args   []string
		exit   int
		stderr string
	}{
		{name: "no smarthost, no queue", env: []string{"RELAYMAIL_SMARTHOST", "RELAYMAIL_QUEUE=off"}, args: []string{"a@example.org"}, exit: 78, stderr: "no smarthost is configured, the queue is off, so the message cannot be sent"},
		{name: "-q without smarthost", env: []string{"RELAYMAIL_SMARTHOST"}, args: []string{"-q"}, exit: 78, stderr: "the queue cannot be delivered"},
		{name: "-qS", args: []string{"-qSalice"}, exit: 64, stderr: "-qS (select by sender) is not supported"},
		{name: "-qI unknown", args: []string{"-qInosuch"}, exit: 64, stderr: "no queued message has the ID \"nosuch\""},
		{name: "-q bad interval", args: []string{"-q5x"}, exit: 64, stderr: "is not an interval"},
		{name: "-q with the queue off", env: []string{"RELAYMAIL_QUEUE=off"}, args: []string{"-q"}, exit: 64, stderr: "the queue is off"},
		{name: "bad config key", env: []string{"RELAYMAIL_CONFIG=" + badConf}, args: []string{"a@example.org"}, exit: 78, stderr: badConf + `:2: unknown key "smarhost" (did you mean "smarthost"?)`},
		{name: "-C bad config", args: []string{"-C", badConf, "a@example.org"}, exit: 78, stderr: badConf + ":2:"},
		{name: "bad smarthost env", env: []string{"RELAYMAIL_SMARTHOST=ftp://x"}, args: []string{"a@example.org"}, exit: 78, stderr: "RELAYMAIL_SMARTHOST"},
		{name: "smtp user without password", env: []string{"RELAYMAIL_SMARTHOST", "RELAYMAIL_CONFIG=" + smtpConf}, args: []string{"a@example.org"}, exit: 78, stderr: "no password is configured"},
		{name: "-bi with a pipe alias", env: []string{"RELAYMAIL_ALIASES=" + pipeAliases}, args: []string{"-bi"}, exit: 78, stderr: pipeAliases + `:2: alias bob: the pipe "|/usr/bin/procmail" is not supported by a relay`},
		{name: "delivery with a pipe alias", env: []string{"RELAYMAIL_ALIASES=" + pipeAliases}, args: []string{"root"}, exit: 78, stderr: pipeAliases + ":2:"},
		{name: "-bv with -t", args: []string{"-bv", "-t"}, exit: 64, stderr: "-t cannot be combined with -bv"},
		{name: "-bt unsupported", args: []string{"-bt"}, exit: 64, stderr: "-bt (test the address rewriting rules (sendmail 8)) is not supported: relaymail has no rewriting rules to test"},
		{name: "-bd refused", args: []string{"-bd"}, exit: 64, stderr: "relaymail does not listen on the network"},
		{name: "-X", args: []string{"-X", "/tmp/relaymail-e2e-x", "a@example.org"}, exit: 64, stderr: "CVE-2016-10033"},
		{name: "bad -N", args: []string{"-N", "sometimes", "a@example.org"}, exit: 64, stderr: "-N"},
		{name: "missing -f value", args: []string{"-f"}, exit: 64, stderr: "-f"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := mergeEnv(baseEnv(t, qmtpURL(srv)), c.env)
			o := runSendmail(t, env, c.args, []byte(simple))
			if o.exit != c.exit || !strings.Contains(o.stderr, c.stderr) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", o.exit, c.exit, o.stderr, c.stderr)
			}
		})
	}
	if n := len(srv.Packages()); n != 0 {
		t.Errorf("refused runs delivered %d packages", n)
	}
	if _, err := os.Stat("/tmp/relaymail-e2e-x"); err == nil {
		t.Error("-X wrote a file")
	}
}

// argv[0] mailq lists the queue; newaliases checks the alias file.
func TestArgv0Modes(t *testing.T) {
	dir := t.TempDir()
	for name, want := range map[string]struct {
		exit           int
		stdout, stderr string
	}{"mailq": {0, "Mail queue is empty\n", ""}, "newaliases": {0, "0 aliases, valid", ""}} {
		link := filepath.Join(dir, name)
		if err := os.Symlink(sendmailBin, link); err != nil {
			t.Fatal(err)
		}
		o := runSendmailAs(t, link, baseEnv(t, ""), nil, nil)
		if o.exit != want.exit || !strings.Contains(o.stdout, want.stdout) || !strings.Contains(o.stderr, want.stderr) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, o.exit, o.stdout, o.stderr)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	o := runSendmail(t, baseEnv(t, ""), []string{"--help"}, nil)
	if o.exit != 0 || !strings.Contains(o.stdout, "-f") || !strings.Contains(o.stdout, "-X") {
		t.Errorf("--help: exit %d, stdout %q", o.exit, o.stdout)
	}
	o = runSendmail(t, baseEnv(t, ""), []string{"--version"}, nil)
	if o.exit != 0 || !strings.HasPrefix(o.stdout, "relaymail sendmail ") {
		t.Errorf("--version: exit %d, stdout %q", o.exit, o.stdout)
	}
}

// The log line per message and per recipient, with log = stderr. A message
// delivered at once never had a queue ID; a queued one is tied to its ID.
func TestLogLines(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	env := mergeEnv(baseEnv(t, qmtpURL(srv)), []string{"RELAYMAIL_LOG=stderr"})
	o := runSendmail(t, env, []string{"-L", "cronmail", "a@example.org", "b@example.org"}, []byte("Message-ID: <m1@example.com>\n\nx\n"))
	if o.exit != 0 {
		t.Fatal(o.stderr)
	}
	for _, want := range []string{
		"cronmail[", "<m1@example.com>: from=<alice@example.com>, size=",
		"nrcpt=2", "<m1@example.com>: to=<a@example.org>, relay=qmtp://", "status=sent",
		"<m1@example.com>: to=<b@example.org>",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "queue") {
		t.Errorf("a message delivered at once was logged as queued:\n%s", o.stderr)
	}

	deferring := scripted(t, relaytest.Reply("K", "ok 1 qp 2"), relaytest.Reply("Z", "busy"))
	env = mergeEnv(baseEnv(t, qmtpURL(deferring)), []string{"RELAYMAIL_LOG=stderr"})
	o = runSendmail(t, env, []string{"a@example.org", "b@example.org"}, []byte("Message-ID: <m2@example.com>\n\nx\n"))
	id := regexp.MustCompile(`<m2@example\.com>: queued as ([0-9A-F]{16}-[0-9a-f]{8})\n`).FindStringSubmatch(o.stderr)
	if o.exit != 0 || id == nil {
		t.Fatalf("exit %d, log lacks \"<m2@example.com>: queued as ID\":\n%s", o.exit, o.stderr)
	}
	if want := id[1] + ": queued, from=<alice@example.com>"; !strings.Contains(o.stderr, want) {
		t.Errorf("log lacks %q:\n%s", want, o.stderr)
	}
}

// -v reports delivered recipients too; without it, success is silent.
func TestVerbose(t *testing.T) {
	srv := scripted(t, relaytest.Reply("K", "ok 1 qp 2"), relaytest.Reply("Z", "busy"))
	o := runSendmail(t, baseEnv(t, qmtpURL(srv)), []string{"-v", "a@example.org", "b@example.org"}, []byte(simple))
	want := "sendmail: a@example.org: delivered via " + qmtpURL(srv) + ": ok 1 qp 2\nsendmail: b@example.org: deferred: busy (queued as "
	if o.exit != 0 || !strings.HasPrefix(o.stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant prefix:\n%s", o.exit, o.stderr, want)
	}
}

func TestMaxHeaderSize(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	env := mergeEnv(baseEnv(t, qmtpURL(srv)), []string{"RELAYMAIL_MAX_HEADER_SIZE=2k"})
	big := "Subject: " + strings.Repeat("x", 3000) + "\n\nbody\n"
	o := runSendmail(t, env, []string{"a@example.org"}, []byte(big))
	if o.exit != 65 || !strings.Contains(o.stderr, "larger than 2048 bytes") || len(srv.Packages()) != 0 {
		t.Errorf("exit %d, %d packages, stderr %q", o.exit, len(srv.Packages()), o.stderr)
	}
	o = runSendmail(t, env, []string{"a@example.org"}, []byte("Subject: small\n\nbody\n"))
	if o.exit != 0 {
		t.Errorf("small header: exit %d, %s", o.exit, o.stderr)
	}
}
