// Package callers is the real-caller suite: it builds the .deb with `make
// package`, installs it on this (test) machine with dpkg -i, points the
// installed /etc/relaymail.conf at a real Postfix and a real Dovecot LMTP
// on loopback, and drives the real programs from Debian that send mail
// through /usr/sbin/sendmail: PHP's mail() with its default sendmail_path,
// Debian's cron daemon, GNU mailutils' mail, bsd-mailx and sudo. Each case
// checks the caller's exit status (or, for cron and sudo, which do not
// wait for the mailer, what relaymail and cron logged), the envelope and
// the header that the server received, and that nothing was left in the
// queue (mailq --json). Then it queues a message, removes the package with
// dpkg -r, checks that the queue is still there, and installs it again.
//
// It needs root and Debian. When relaymail was not installed before, it is
// purged at the end; the configuration the package had is restored either
// way. Without root, dpkg or the callers it is skipped, except under
// CI=true (or RELAYMAIL_E2E_REQUIRE=1), where that fails.
package callers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relaymail/e2e/realserver"
)

const (
	confPath = "/etc/relaymail.conf"
	spool    = "/var/spool/relaymail"
	// mailxBin is bsd-mailx as scripts/e2e-deps.sh extracts it.
	mailxRoot = "/var/cache/relaymail-e2e/bsd-mailx/root"
	domain    = "example.com"
)

func required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("RELAYMAIL_E2E_REQUIRE") == "1"
}

func unavailable(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := "real-caller suite: " + fmt.Sprintf(format, a...)
	if required() {
		t.Fatal(msg + " [failing, not skipping: CI=true or RELAYMAIL_E2E_REQUIRE=1]")
	}
	t.Skip(msg)
}

// suite is what every case shares.
type suite struct {
	dir     string // private directory: syslog socket, aliases, cron files
	log     *syslog
	pf      *realserver.Postfix
	dc      *realserver.Dovecot
	aliases string
	www     account // PHP's user
	user    account // an ordinary user for mailx and sudo
}

// deliveries returns what Postfix delivered whose content holds token.
func (s *suite) deliveries(token string) []realserver.Delivery {
	var out []realserver.Delivery
	for _, d := range s.pf.Delivered() {
		if strings.Contains(string(d.Data), token) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Recipient < out[j].Recipient })
	return out
}

// waitDeliveries waits until Postfix delivered n copies holding token
// (cron and sudo mail asynchronously).
func (s *suite) waitDeliveries(token string, n int, timeout time.Duration) []realserver.Delivery {
	deadline := time.Now().Add(timeout)
	for {
		d := s.deliveries(token)
		if len(d) >= n || time.Now().After(deadline) {
			return d
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// conf writes the installed configuration. The file keeps the package's
// mode and owner.
// confMarker starts the configuration the suite writes.
const confMarker = "# written by e2e/callers; restored at the end of the suite"

func (s *suite) conf(t *testing.T, lines ...string) {
	t.Helper()
	base := []string{
		confMarker,
		"domain " + domain,
		"hostname host." + domain,
		"aliases " + s.aliases,
		"timeout 10s",
		"flush_after_send no",
		"log syslog",
	}
	if err := os.WriteFile(confPath, []byte(strings.Join(append(base, lines...), "\n")+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) toPostfix(t *testing.T, extra ...string) {
	t.Helper()
	s.conf(t, append([]string{"smarthost smtp://" + s.pf.SMTPAddr, "tls_ca_file " + s.pf.CACert}, extra...)...)
}

func (s *suite) toDovecot(t *testing.T) {
	t.Helper()
	s.conf(t, "smarthost lmtp://"+s.dc.LMTPAddr)
}

func (s *suite) toNowhere(t *testing.T, extra ...string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.conf(t, append([]string{"smarthost smtp://" + addr}, extra...)...)
}

// queueListing is what mailq --json prints.
type queueListing struct {
	Count    int `json:"count"`
	Messages []struct {
		ID         string `json:"id"`
		Sender     string `json:"sender"`
		Recipients []struct {
			Address string `json:"address"`
			State   string `json:"state"`
		} `json:"recipients"`
	} `json:"messages"`
}

// mailq runs the installed mailq --json as root.
func (s *suite) mailq(t *testing.T) queueListing {
	t.Helper()
	r := s.exec(t, nil, rootEnv, "", "/usr/bin/mailq", "--json")
	if r.exit != 0 {
		t.Fatalf("mailq --json: exit %d: %s", r.exit, r.stderr)
	}
	var l queueListing
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("mailq --json: %v\n%s", err, r.stdout)
	}
	return l
}

// spoolEmpty checks the spool directories themselves.
func (s *suite) spoolEmpty(t *testing.T) {
	t.Helper()
	for _, sub := range []string{"env", "msg", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(spool, sub))
		if err != nil {
			t.Errorf("%s: %v", sub, err)
		}
		for _, e := range ents {
			t.Errorf("the spool holds %s/%s", sub, e.Name())
		}
	}
}

func (s *suite) queueEmpty(t *testing.T) {
	t.Helper()
	if l := s.mailq(t); l.Count != 0 {
		t.Errorf("the queue is not empty: %+v", l.Messages)
	}
}

// sentLogged checks that relaymail logged a delivery to rcpt of the
// message with token in its Message-ID's log line (the log names the
// message by its Message-ID, the caller's or the one relaymail added).
func (s *suite) sentLogged(t *testing.T, rcpt string) {
	t.Helper()
	if l := s.log.WaitFor(5*time.Second, "relaymail", "to=<"+rcpt+">", "status=sent"); len(l) == 0 {
		t.Errorf("relaymail logged no status=sent for %s; the log:\n%s", rcpt, strings.Join(s.log.Lines(), "\n"))
	}
}

// header returns the unfolded value of the first field name in msg, and
// whether there is one; only the header is searched.
func header(msg []byte, name string) (string, bool) {
	head, _, _ := strings.Cut(string(msg), "\n\n")
	lines := strings.Split(head, "\n")
	for i := 0; i < len(lines); i++ {
		k, v, ok := strings.Cut(lines[i], ":")
		if !ok || !strings.EqualFold(k, name) {
			continue
		}
		for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], " ") || strings.HasPrefix(lines[i+1], "\t")) {
			i++
			v += " " + strings.TrimSpace(lines[i])
		}
		return strings.TrimSpace(v), true
	}
	return "", false
}

func body(msg []byte) string {
	_, b, _ := strings.Cut(string(msg), "\n\n")
	return b
}

// expect checks a delivered copy: its envelope and header fields. An empty
// header value means the field must be absent.
func expect(t *testing.T, d realserver.Delivery, sender string, fields map[string]string) {
	t.Helper()
	if d.Sender != sender {
		t.Errorf("to %s: envelope sender %q, want %q", d.Recipient, d.Sender, sender)
	}
	content := d.Content()
	for name, want := range fields {
		got, ok := header(content, name)
		switch {
		case want == "" && ok:
			t.Errorf("to %s: the header has %s: %s, which must not arrive", d.Recipient, name, got)
		case want != "" && !ok:
			t.Errorf("to %s: the header has no %s field:\n%s", d.Recipient, name, content)
		case want != "" && got != want:
			t.Errorf("to %s: %s: %q, want %q", d.Recipient, name, got, want)
		}
	}
	for _, name := range []string{"Date", "Message-ID", "From"} {
		if _, ok := header(content, name); !ok {
			t.Errorf("to %s: no %s field:\n%s", d.Recipient, name, content)
		}
	}
	if strings.Contains(string(content), "\r") {
		t.Errorf("to %s: a CR reached the server as data:\n%q", d.Recipient, content)
	}
}

func recipients(ds []realserver.Delivery) string {
	var r []string
	for _, d := range ds {
		r = append(r, d.Recipient)
	}
	return strings.Join(r, " ")
}

// installed says whether a package is installed.
func installed(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg).Output()
	return err == nil && strings.HasPrefix(string(out), "ii")
}

// otherMTA names an installed package other than relaymail that provides
// mail-transport-agent, which the package would have to replace.
func otherMTA() string {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev} ${Provides}\n").Output()
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] != "relaymail" && f[1] == "ii" && strings.Contains(l, "mail-transport-agent") {
			return f[0]
		}
	}
	return ""
}

var dpkgEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LANG=C"}

// dpkgInstall installs the .deb, keeping a configuration file that was
// changed (the suite's) without asking.
func dpkgInstall(t *testing.T, deb string) {
	t.Helper()
	r := plain(t, dpkgEnv, "dpkg", "--force-confdef", "--force-confold", "-i", deb)
	if r.exit != 0 {
		t.Fatalf("dpkg -i %s: exit %d\n%s%s", filepath.Base(deb), r.exit, r.stdout, r.stderr)
	}
}

// lockSuite takes a lock that another run of the suite on this machine
// (another go test) holds while it runs: both would install the package
// and write /etc/relaymail.conf. It waits at most 5 minutes.
func lockSuite(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/run/lock/relaymail-e2e-callers.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f, err = os.OpenFile("/tmp/relaymail-e2e-callers.lock", os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	waited := time.Now()
	for i := 0; ; i++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("another run of the real-caller suite holds %s: %v", f.Name(), err)
		}
		if i == 0 {
			t.Logf("another run of the suite holds %s; waiting", f.Name())
		}
		time.Sleep(time.Second)
	}
	if d := time.Since(waited); d > time.Second {
		t.Logf("waited %v for the lock", d.Round(time.Second))
	}
	t.Cleanup(func() { f.Close() })
}

// TestRealCallers is the suite; its subtests share the install and the
// servers and run in order.
func TestRealCallers(t *testing.T) {
	if os.Geteuid() != 0 {
		unavailable(t, "needs root: it installs the .deb with dpkg")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "unshare", "setpriv", "make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s is not installed", tool)
		}
	}
	if mta := otherMTA(); mta != "" {
		unavailable(t, "%s is installed; relaymail conflicts with it, and the suite does not replace another MTA", mta)
	}
	realserver.NeedPHP(t) // runs scripts/e2e-deps.sh when needed, which installs the callers too
	for _, p := range []string{"php-cli", "cron", "mailutils", "sudo"} {
		if !installed(p) {
			unavailable(t, "the Debian package %s is not installed (scripts/e2e-deps.sh installs it)", p)
		}
	}
	if _, err := os.Stat(filepath.Join(mailxRoot, "usr/bin/bsd-mailx")); err != nil {
		unavailable(t, "bsd-mailx is not extracted in %s (scripts/e2e-deps.sh does it)", mailxRoot)
	}

	lockSuite(t)
	start := time.Now()
	s := &suite{}
	dir, err := os.MkdirTemp("/tmp", "rmc-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.dir = dir
	s.log = startSyslog(t, filepath.Join(dir, "syslog.sock"))
	s.www = lookup(t, "www-data")
	s.user = lookup(t, realserver.MailUser)
	s.aliases = filepath.Join(dir, "aliases")
	// Where root's mail goes, as on a real host.
	if err := os.WriteFile(s.aliases, []byte("postmaster: root\nwww-data: root\nroot: "+realserver.User1+"@"+domain+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// --- the package ---------------------------------------------------
	wasInstalled := installed("relaymail")
	var savedConf []byte
	if wasInstalled {
		savedConf, _ = os.ReadFile(confPath)
		if strings.HasPrefix(string(savedConf), confMarker) {
			// A run that was killed before its cleanup left its
			// configuration, and the package it installed.
			t.Logf("a killed run of the suite left %s; it will be purged at the end", confPath)
			wasInstalled, savedConf = false, nil
		}
	}
	deb := buildDeb(t)
	t.Logf("built %s in %v", filepath.Base(deb), time.Since(start).Round(time.Millisecond))
	dpkgInstall(t, deb)
	if savedConf == nil {
		savedConf, _ = os.ReadFile(confPath) // the packaged file
	}
	t.Cleanup(func() {
		if !installed("relaymail") {
			return
		}
		if wasInstalled {
			if err := os.WriteFile(confPath, savedConf, 0o640); err != nil {
				t.Errorf("restoring %s: %v", confPath, err)
			}
			return
		}
		// Purge, as it was not installed before: the packaged
		// configuration goes too, and the spool when it is empty.
		os.WriteFile(confPath, savedConf, 0o640)
		purge := time.Now()
		if r := plain(t, dpkgEnv, "dpkg", "--purge", "relaymail"); r.exit != 0 {
			t.Errorf("dpkg --purge relaymail: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
		}
		t.Logf("dpkg --purge relaymail: %v", time.Since(purge).Round(time.Millisecond))
	})

	t.Run("installed", func(t *testing.T) { s.checkInstall(t) })

	s.dc = realserver.StartDovecot(t)
	s.pf = realserver.StartPostfix(t, realserver.PostfixOptions{RequireTLS: true})
	s.toPostfix(t)

	// cron runs its jobs at the start of the next minute; it starts first
	// and the other callers run while it waits.
	cron := s.startCron(t)

	t.Run("php mail()", func(t *testing.T) { s.phpToPostfix(t) })
	t.Run("mailutils mail", func(t *testing.T) { s.mailutils(t, "postfix") })
	t.Run("bsd-mailx", func(t *testing.T) { s.bsdMailx(t, "postfix") })
	t.Run("sudo mail_badpass", func(t *testing.T) { s.sudo(t) })
	t.Run("cron", func(t *testing.T) { s.checkCron(t, cron) })

	s.toDovecot(t)
	t.Run("dovecot", func(t *testing.T) {
		t.Run("php mail()", func(t *testing.T) { s.phpToDovecot(t) })
		t.Run("mailutils mail", func(t *testing.T) { s.mailutils(t, "dovecot") })
		t.Run("bsd-mailx", func(t *testing.T) { s.bsdMailx(t, "dovecot") })
	})

	t.Run("php mail() smarthost down", func(t *testing.T) { s.phpSmarthostDown(t) })
	t.Run("packaged cron job", func(t *testing.T) { s.packagedCronJob(t) })
	t.Run("dpkg -r keeps the queue", func(t *testing.T) { s.removeKeepsQueue(t, deb) })
	t.Logf("the suite took %v", time.Since(start).Round(time.Second))
}

// checkInstall: the files have the modes of the security model, the
// account exists, and man finds complete pages.
func (s *suite) checkInstall(t *testing.T) {
	for path, want := range map[string]string{
		"/usr/sbin/sendmail":    "2755 root relaymail",
		"/usr/bin/qmail-inject": "2755 root relaymail",
		confPath:                "0640 root relaymail",
		spool:                   "2770 root relaymail",
		spool + "/env":          "2770 root relaymail",
		spool + "/msg":          "2770 root relaymail",
		spool + "/tmp":          "2770 root relaymail",
		spool + "/failed":       "2770 root relaymail",
	} {
		r := plain(t, rootEnv, "stat", "-c", "%04a %U %G", path)
		if got := strings.TrimSpace(r.stdout); r.exit != 0 || got != want {
			t.Errorf("%s: %q (exit %d), want %q", path, got, r.exit, want)
		}
	}
	for link, target := range map[string]string{
		"/usr/bin/mailq":              "/usr/sbin/sendmail",
		"/usr/sbin/newaliases":        "/usr/sbin/sendmail",
		"/usr/lib/sendmail":           "/usr/sbin/sendmail",
		"/var/qmail/bin/qmail-inject": "/usr/bin/qmail-inject",
	} {
		if got, err := filepath.EvalSymlinks(link); err != nil || got != target {
			t.Errorf("%s resolves to %q (%v), want %s", link, got, err, target)
		}
	}
	// The unit is valid for systemd (its command exists, its man pages
	// too), whether or not systemd runs here.
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if r := plain(t, rootEnv, "systemd-analyze", "verify", "/usr/lib/systemd/system/relaymail.service"); r.exit != 0 {
			t.Errorf("systemd-analyze verify relaymail.service: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
		}
	}
	relaymail := lookup(t, "relaymail")
	if relaymail.uid == 0 || relaymail.home != spool {
		t.Errorf("the relaymail user: %+v", relaymail)
	}
	// man sendmail shows the whole page: every section, rendered by
	// Debian's man-db.
	r := plain(t, append(rootEnv, "MANPAGER=cat", "MANWIDTH=80"), "man", "sendmail")
	if r.exit != 0 {
		t.Fatalf("man sendmail: exit %d: %s", r.exit, r.stderr)
	}
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SECURITY", "SEE ALSO", "STANDARDS"} {
		if !regexp.MustCompile(`(?m)^` + sec + `$`).MatchString(r.stdout) {
			t.Errorf("man sendmail has no %s section", sec)
		}
	}
	for _, page := range [][]string{{"8", "mailq"}, {"8", "newaliases"}, {"8", "qmail-inject"}, {"5", "relaymail.conf"}, {"5", "relaymail-queue"}} {
		if r := plain(t, rootEnv, "man", "-w", page[0], page[1]); r.exit != 0 {
			t.Errorf("man -w %s %s: exit %d: %s", page[0], page[1], r.exit, r.stderr)
		}
	}
}

// --- PHP ---------------------------------------------------------------

type phpCase struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Message string `json:"message"`
	Headers string `json:"headers"`
	Params  string `json:"params,omitempty"`
}

type phpResult struct {
	OK           bool   `json:"ok"`
	SendmailPath string `json:"sendmail_path"`
}

// php runs testdata/mail.php as www-data, the user of PHP-FPM's workers.
func (s *suite) php(t *testing.T, c phpCase) (phpResult, run) {
	t.Helper()
	script, err := os.ReadFile("testdata/mail.php")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, "mail.php")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	arg, _ := json.Marshal(c)
	r := s.exec(t, &s.www, userEnv(&s.www), "", "php", path, string(arg))
	var res phpResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &res); err != nil {
		t.Fatalf("php: exit %d, %v\nstdout: %s\nstderr: %s", r.exit, err, r.stdout, r.stderr)
	}
	if res.SendmailPath != "/usr/sbin/sendmail -t -i" {
		t.Errorf("PHP's sendmail_path is %q, not the default", res.SendmailPath)
	}
	return res, r
}

func (s *suite) phpToPostfix(t *testing.T) {
	www := s.www.name + "@" + domain
	cases := []struct {
		name   string
		c      phpCase
		sender string
		rcpts  string
		fields map[string]string
		body   string
	}{
		{
			name: "additional headers",
			c: phpCase{To: "Ann Example <ann@example.org>", Subject: "PHP headers TOKEN-PHP-HEADERS",
				Message: "Hello Ann,\nthe order shipped.\n",
				Headers: "From: Web Shop <shop@example.com>\r\nReply-To: help@example.com\r\nX-Mailer: PHP/" + "8\r\nContent-Type: text/plain; charset=UTF-8"},
			sender: www, rcpts: "ann@example.org",
			fields: map[string]string{"To": "Ann Example <ann@example.org>", "From": "Web Shop <shop@example.com>",
				"Reply-To": "help@example.com", "Subject": "PHP headers TOKEN-PHP-HEADERS", "Content-Type": "text/plain; charset=UTF-8", "Bcc": ""},
			body: "Hello Ann,\nthe order shipped.\n",
		},
		{
			name: "fifth parameter -f",
			c: phpCase{To: "bob@example.org", Subject: "PHP -f TOKEN-PHP-F", Message: "with a sender\n",
				Headers: "From: shop@example.com", Params: "-fbounces@example.com"},
			sender: "bounces@example.com", rcpts: "bob@example.org",
			fields: map[string]string{"To": "bob@example.org", "From": "shop@example.com", "Return-Path": ""},
			body:   "with a sender\n",
		},
		{
			name: "Bcc",
			c: phpCase{To: "ann@example.org", Subject: "PHP Bcc TOKEN-PHP-BCC", Message: "hidden copy\n",
				Headers: "From: shop@example.com\r\nCc: Carl <carl@example.org>\r\nBcc: audit@example.net, Dee <dee@example.net>"},
			sender: www, rcpts: "ann@example.org audit@example.net carl@example.org dee@example.net",
			fields: map[string]string{"To": "ann@example.org", "Cc": "Carl <carl@example.org>", "Bcc": ""},
			body:   "hidden copy\n",
		},
		{
			name: "CRLF and LF mixed",
			c: phpCase{To: "eve@example.org", Subject: "PHP line endings TOKEN-PHP-CRLF",
				Message: "crlf line\r\nlf line\nlone dot next\r\n.\r\nafter the dot\r\n\r\nlast\n",
				Headers: "From: shop@example.com\nX-Mixed: lf then crlf\r\nX-Last: crlf"},
			sender: www, rcpts: "eve@example.org",
			fields: map[string]string{"X-Mixed": "lf then crlf", "X-Last": "crlf", "From": "shop@example.com"},
			body:   "crlf line\nlf line\nlone dot next\n.\nafter the dot\n\nlast\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, r := s.php(t, c.c)
			if !res.OK {
				t.Fatalf("mail() returned false (sendmail did not exit 0); php's stderr:\n%s", r.stderr)
			}
			token := c.c.Subject[strings.LastIndex(c.c.Subject, " ")+1:]
			ds := s.deliveries(token)
			if got := recipients(ds); got != c.rcpts {
				t.Fatalf("Postfix delivered to %q, want %q", got, c.rcpts)
			}
			for _, d := range ds {
				expect(t, d, c.sender, c.fields)
				// mail() ends the message with a line break of its own.
				if b := body(d.Content()); b != c.body+"\n" {
					t.Errorf("to %s: body %q, want %q", d.Recipient, b, c.body+"\n")
				}
				s.sentLogged(t, d.Recipient)
			}
			s.queueEmpty(t)
		})
	}
}

func (s *suite) phpToDovecot(t *testing.T) {
	res, r := s.php(t, phpCase{To: realserver.User1 + "@" + domain, Subject: "PHP to LMTP TOKEN-PHP-LMTP",
		Message: "to dovecot\r\n", Headers: "From: shop@example.com", Params: "-fshop@example.com"})
	if !res.OK {
		t.Fatalf("mail() returned false; php's stderr:\n%s", r.stderr)
	}
	m := s.dovecotMessage(t, "TOKEN-PHP-LMTP")
	if m.ReturnPath != "shop@example.com" {
		t.Errorf("Return-Path %q, want shop@example.com", m.ReturnPath)
	}
	if to, _ := header(m.Content, "To"); to != realserver.User1+"@"+domain {
		t.Errorf("To: %q", to)
	}
	s.sentLogged(t, realserver.User1+"@"+domain)
	s.queueEmpty(t)
}

// dovecotMessage finds the one message in user1's maildir with token.
func (s *suite) dovecotMessage(t *testing.T, token string) realserver.Message {
	t.Helper()
	var found []realserver.Message
	for _, m := range s.dc.Maildir(realserver.User1) {
		if strings.Contains(string(m.Content), token) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("user1's maildir has %d messages with %s", len(found), token)
	}
	return found[0]
}

// phpSmarthostDown: mail() returns true when the message is queued (queue
// on) and false when it is not (queue off).
func (s *suite) phpSmarthostDown(t *testing.T) {
	t.Run("queue on", func(t *testing.T) {
		s.toNowhere(t)
		res, r := s.php(t, phpCase{To: "queued@example.org", Subject: "PHP queued TOKEN-PHP-QUEUED", Message: "later\n", Headers: "From: shop@example.com"})
		if !res.OK {
			t.Fatalf("mail() returned false with the queue on; php's stderr:\n%s", r.stderr)
		}
		l := s.mailq(t)
		if l.Count != 1 || len(l.Messages[0].Recipients) != 1 || l.Messages[0].Recipients[0].Address != "queued@example.org" ||
			l.Messages[0].Recipients[0].State != "pending" || l.Messages[0].Sender != s.www.name+"@"+domain {
			t.Fatalf("mailq --json: %+v", l)
		}
		if len(s.log.Grep("to=<queued@example.org>", "status=deferred")) == 0 {
			t.Errorf("no status=deferred log line; the log:\n%s", strings.Join(s.log.Lines(), "\n"))
		}
		// The smarthost is back: a queue run delivers it.
		s.toPostfix(t)
		if r := s.exec(t, nil, rootEnv, "", "/usr/sbin/sendmail", "-q"); r.exit != 0 {
			t.Fatalf("sendmail -q: exit %d: %s", r.exit, r.stderr)
		}
		ds := s.deliveries("TOKEN-PHP-QUEUED")
		if recipients(ds) != "queued@example.org" {
			t.Fatalf("after sendmail -q Postfix delivered to %q", recipients(ds))
		}
		expect(t, ds[0], s.www.name+"@"+domain, map[string]string{"To": "queued@example.org"})
		s.queueEmpty(t)
	})
	t.Run("queue off", func(t *testing.T) {
		s.toNowhere(t, "queue off")
		res, r := s.php(t, phpCase{To: "lost@example.org", Subject: "PHP not queued TOKEN-PHP-OFF", Message: "now or never\n", Headers: "From: shop@example.com"})
		if res.OK {
			t.Fatal("mail() returned true with the smarthost down and the queue off")
		}
		if !strings.Contains(r.stderr, "nothing was kept") {
			t.Errorf("sendmail's stderr through PHP does not say that nothing was kept:\n%s", r.stderr)
		}
		// mailq has no queue to list with the queue off: the spool
		// itself must hold nothing.
		s.spoolEmpty(t)
		s.toPostfix(t)
		if ds := s.deliveries("TOKEN-PHP-OFF"); len(ds) != 0 {
			t.Errorf("delivered anyway: %v", recipients(ds))
		}
	})
}

// --- mailx -------------------------------------------------------------

// mailutils: GNU mailutils' mail -s, as an ordinary user.
func (s *suite) mailutils(t *testing.T, server string) {
	token := "TOKEN-MAILUTILS-" + strings.ToUpper(server)
	to := "mu@example.org"
	if server == "dovecot" {
		to = realserver.User1 + "@" + domain
	}
	r := s.exec(t, &s.user, userEnv(&s.user), "report from mailutils\n.\nafter a dot line\n",
		"mail.mailutils", "-s", "mailutils "+token, "-a", "X-Report: nightly", to)
	if r.exit != 0 {
		t.Fatalf("mail.mailutils: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
	// mailutils passes -f with the user at the name it finds for the
	// host, and writes the same address into From.
	s.checkMailx(t, server, token, to, "", map[string]string{"Subject": "mailutils " + token, "X-Report": "nightly"},
		"report from mailutils\n.\nafter a dot line\n")
}

// bsdMailx: bsd-mailx's real binary, told to wait for sendmail so that its
// exit status is sendmail's.
func (s *suite) bsdMailx(t *testing.T, server string) {
	token := "TOKEN-BSDMAILX-" + strings.ToUpper(server)
	to := "bx@example.org"
	if server == "dovecot" {
		to = realserver.User1 + "@" + domain
	}
	rc := filepath.Join(s.dir, "mailrc")
	if err := os.WriteFile(rc, []byte("set sendwait\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(mailxRoot, "usr/bin/bsd-mailx"), "-s", "bsd-mailx " + token}
	fields := map[string]string{"Subject": "bsd-mailx " + token, "To": to}
	if server == "postfix" { // Dovecot has no mailbox for a Cc
		args = append(args, "-c", "cc-bx@example.org")
		fields["Cc"] = "cc-bx@example.org"
	}
	r := s.exec(t, &s.user, userEnv(&s.user, "MAILRC="+rc), "report from bsd-mailx\n", append(args, to)...)
	if r.exit != 0 {
		t.Fatalf("bsd-mailx: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
	s.checkMailx(t, server, token, to, s.user.name+"@"+domain, fields, "report from bsd-mailx\n")
}

// checkMailx checks a mailx's message; sender "" is the address of its
// From field, which must be the user's.
func (s *suite) checkMailx(t *testing.T, server, token, to, sender string, fields map[string]string, wantBody string) {
	t.Helper()
	senderOf := func(content []byte) string {
		if sender != "" {
			return sender
		}
		from, _ := header(content, "From")
		if i := strings.LastIndex(from, "<"); i >= 0 {
			from = strings.TrimSuffix(from[i+1:], ">")
		}
		if !strings.HasPrefix(from, s.user.name+"@") {
			t.Errorf("From: %q is not the user's address", from)
		}
		return from
	}
	if server == "dovecot" {
		m := s.dovecotMessage(t, token)
		if sender := senderOf(m.Content); m.ReturnPath != sender {
			t.Errorf("Return-Path %q, want %s", m.ReturnPath, sender)
		}
		for name, want := range fields {
			if name == "Cc" {
				continue // not Dovecot's mailbox
			}
			if got, _ := header(m.Content, name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
		if b := body(m.Content); b != wantBody {
			t.Errorf("body %q, want %q", b, wantBody)
		}
	} else {
		ds := s.deliveries(token)
		var want []string
		want = append(want, to)
		if _, ok := fields["Cc"]; ok {
			want = append(want, fields["Cc"])
		}
		sort.Strings(want)
		if got := recipients(ds); got != strings.Join(want, " ") {
			t.Fatalf("Postfix delivered to %q, want %q", got, strings.Join(want, " "))
		}
		for _, d := range ds {
			expect(t, d, senderOf(d.Content()), fields)
			if b := body(d.Content()); b != wantBody {
				t.Errorf("to %s: body %q, want %q", d.Recipient, b, wantBody)
			}
		}
	}
	s.sentLogged(t, to)
	s.queueEmpty(t)
}

// --- sudo --------------------------------------------------------------

// sudo: with mail_badpass, a failed authentication makes sudo mail root
// through /usr/sbin/sendmail -t. The user has no usable password (a locked
// passwd entry), so any password fails; sudo -S reads it from stdin.
func (s *suite) sudo(t *testing.T) {
	dropIn := "/etc/sudoers.d/relaymail-e2e"
	writeRootFile(t, dropIn, "# written by e2e/callers for the duration of the suite\n"+
		"Defaults mail_badpass\nDefaults mailto=\"root\"\nDefaults passwd_tries=1\n"+
		s.user.name+" ALL=(root) /usr/bin/true\n", 0o440)
	t.Cleanup(func() { os.Remove(dropIn) })
	if r := plain(t, rootEnv, "visudo", "-c", "-q"); r.exit != 0 {
		t.Fatalf("visudo -c: %s%s", r.stdout, r.stderr)
	}
	r := s.exec(t, &s.user, userEnv(&s.user), "not-the-password\n", "sudo", "-S", "-k", "-p", "", "/usr/bin/true")
	if r.exit != 1 {
		t.Errorf("sudo with a wrong password: exit %d, want 1\n%s", r.exit, r.stderr)
	}
	// sudo's mailer runs detached: wait for the copy.
	ds := s.waitDeliveries("incorrect password attempt", 1, 30*time.Second)
	if len(ds) != 1 {
		t.Fatalf("Postfix got %d copies of sudo's mail; the log:\n%s", len(ds), strings.Join(s.log.Lines(), "\n"))
	}
	d := ds[0]
	root := realserver.User1 + "@" + domain
	if d.Recipient != root {
		t.Errorf("sudo's mail went to %s, want root's alias %s", d.Recipient, root)
	}
	// sudo runs its mailer as the user who failed, so the envelope
	// sender is that user's login name at domain.
	expect(t, d, s.user.name+"@"+domain, map[string]string{"To": root})
	if subj, _ := header(d.Content(), "Subject"); !strings.Contains(subj, "SECURITY information") {
		t.Errorf("Subject: %q", subj)
	}
	if !strings.Contains(body(d.Content()), s.user.name) {
		t.Errorf("the report does not name the user:\n%s", d.Content())
	}
	s.sentLogged(t, root)
	s.queueEmpty(t)
}

// --- cron --------------------------------------------------------------

type cronRun struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{} // closed when cron has exited
}

// startCron starts Debian's cron in the foreground in a namespace where
// /etc/cron.d holds one file with three jobs: one whose mail goes to root
// (MAILTO unset), one with MAILTO="a@x,b@y" and one with MAILTO="a@x,
// b@y". Each job prints only the first time it runs, so cron mails once
// per job however long it runs.
func (s *suite) startCron(t *testing.T) *cronRun {
	t.Helper()
	cd := filepath.Join(s.dir, "cron")
	for _, d := range []string{"cron.d", "crontabs"} {
		if err := os.MkdirAll(filepath.Join(cd, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(cd, "crontabs"), 0o1730)
	writeRootFile(t, filepath.Join(cd, "crontab"), "# empty: the suite's cron runs only its own jobs\n", 0o644)
	done := filepath.Join(cd, "ran")
	if err := os.MkdirAll(done, 0o755); err != nil {
		t.Fatal(err)
	}
	job := func(name, text string) string {
		return fmt.Sprintf("* * * * * root test -e %[1]s/%[2]s || { touch %[1]s/%[2]s; echo '%[3]s'; }\n", done, name, text)
	}
	writeRootFile(t, filepath.Join(cd, "cron.d", "relaymail-e2e"),
		"# written by e2e/callers\nSHELL=/bin/sh\nPATH=/usr/bin:/bin\n"+
			job("root", "cron output for root TOKEN-CRON-ROOT")+
			"MAILTO=\"cron-a@example.org,cron-b@example.org\"\n"+
			job("list", "cron output for a list TOKEN-CRON-LIST")+
			"MAILTO=\"cron-c@example.org, cron-d@example.org\"\n"+
			job("spaced", "cron output for a spaced list TOKEN-CRON-SPACED"), 0o644)

	c := &cronRun{dir: cd, done: make(chan struct{})}
	c.cmd = s.nsCommand(nil, cd, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, "cron", "-f", "-L", "15")
	out, err := os.Create(filepath.Join(cd, "cron.out"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.stop() })
	t.Logf("cron started (pid %d) at %s; its jobs run at the next minute", c.cmd.Process.Pid, time.Now().Format("15:04:05"))
	return c
}

// stop ends cron by its PID (unshare execs the setup shell, which execs
// cron: one process).
func (c *cronRun) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func (s *suite) checkCron(t *testing.T, c *cronRun) {
	root := realserver.User1 + "@" + domain
	rootMail := s.waitDeliveries("TOKEN-CRON-ROOT", 1, 100*time.Second)
	listMail := s.waitDeliveries("TOKEN-CRON-LIST", 2, 30*time.Second)
	// Give cron a moment to log the mailer's exit, then stop it.
	time.Sleep(time.Second)
	c.stop()
	out, _ := os.ReadFile(filepath.Join(c.dir, "cron.out"))
	t.Logf("cron's output: %q; what it logged:\n%s", out, strings.Join(s.log.Grep("cron["), "\n"))

	if recipients(rootMail) != root {
		t.Fatalf("cron's mail for root went to %q, want root's alias %s; the log:\n%s", recipients(rootMail), root, strings.Join(s.log.Lines(), "\n"))
	}
	host, _ := os.Hostname()
	expect(t, rootMail[0], "root@"+domain, map[string]string{
		"To":      root,
		"From":    "root@" + domain + " (Cron Daemon)",
		"Subject": fmt.Sprintf("Cron <root@%s> test -e %s/ran/root || { touch %s/ran/root; echo 'cron output for root TOKEN-CRON-ROOT'; }", host, c.dir, c.dir),
	})
	if b := body(rootMail[0].Content()); b != "cron output for root TOKEN-CRON-ROOT\n" {
		t.Errorf("cron's mail body %q", b)
	}
	if got := recipients(listMail); got != "cron-a@example.org cron-b@example.org" {
		t.Fatalf("cron's MAILTO list mail went to %q; the log:\n%s", got, strings.Join(s.log.Lines(), "\n"))
	}
	for _, d := range listMail {
		expect(t, d, "root@"+domain, map[string]string{"To": "cron-a@example.org,cron-b@example.org"})
	}
	// Debian's cron refuses a MAILTO with a space (its safe_p allows
	// letters, digits and @!:%-., only): it logs "UNSAFE MAIL" and runs no
	// mailer at all, so relaymail never sees that message.
	if got := s.deliveries("TOKEN-CRON-SPACED"); len(got) != 0 {
		t.Errorf("the job with MAILTO=\"a@x, b@y\" was mailed to %q; Debian's cron should refuse it", recipients(got))
	}
	if len(s.log.Grep("UNSAFE MAIL (cron-c@example.org, cron-d@example.org)")) != 1 {
		t.Errorf("cron did not log UNSAFE MAIL for MAILTO=\"a@x, b@y\"; the log:\n%s", strings.Join(s.log.Grep("CRON"), "\n"))
	}
	// cron logs a mailer that did not exit 0 ("... but got status 0x...").
	if bad := s.log.Grep("got status"); len(bad) > 0 {
		t.Errorf("cron reports a mailer failure: %q", bad)
	}
	if cmds := s.log.Grep("CRON", "CMD"); len(cmds) < 3 {
		t.Errorf("cron logged %d job starts, want 3: %q", len(cmds), s.log.Lines())
	}
	for _, r := range []string{root, "cron-a@example.org", "cron-b@example.org"} {
		s.sentLogged(t, r)
	}
	s.queueEmpty(t)
}

// packagedCronJob: the job of the installed /etc/cron.d/relaymail, where
// no relaymail.service is active, runs the queue.
func (s *suite) packagedCronJob(t *testing.T) {
	raw, err := os.ReadFile("/etc/cron.d/relaymail")
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) > 6 && f[0] == "*/5" && f[5] == "root" {
			command = strings.Join(f[6:], " ")
		}
	}
	if command == "" {
		t.Fatalf("no */5 root job in /etc/cron.d/relaymail:\n%s", raw)
	}
	s.toNowhere(t)
	if r := s.exec(t, &s.user, userEnv(&s.user), "Subject: for the cron job TOKEN-PKG-CRON\n\nx\n", "/usr/sbin/sendmail", "-i", "pkgcron@example.org"); r.exit != 0 {
		t.Fatalf("sendmail: exit %d: %s", r.exit, r.stderr)
	}
	if l := s.mailq(t); l.Count != 1 {
		t.Fatalf("mailq lists %d messages, want 1", l.Count)
	}
	s.toPostfix(t)
	r := s.exec(t, nil, []string{"SHELL=/bin/sh", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, "", "/bin/sh", "-c", command)
	if r.exit != 0 {
		t.Fatalf("the packaged cron job %q: exit %d\n%s%s", command, r.exit, r.stdout, r.stderr)
	}
	if ds := s.deliveries("TOKEN-PKG-CRON"); recipients(ds) != "pkgcron@example.org" {
		t.Fatalf("the cron job's queue run delivered to %q", recipients(ds))
	}
	s.queueEmpty(t)
}

// removeKeepsQueue: dpkg -r leaves queued mail, and the configuration, in
// place; installing again delivers it.
func (s *suite) removeKeepsQueue(t *testing.T, deb string) {
	s.toNowhere(t)
	if r := s.exec(t, &s.user, userEnv(&s.user), "Subject: survives removal TOKEN-DPKG-R\n\nx\n", "/usr/sbin/sendmail", "-i", "kept@example.org"); r.exit != 0 {
		t.Fatalf("sendmail: exit %d: %s", r.exit, r.stderr)
	}
	l := s.mailq(t)
	if l.Count != 1 {
		t.Fatalf("mailq lists %d messages, want 1", l.Count)
	}
	id := l.Messages[0].ID
	r := plain(t, dpkgEnv, "dpkg", "-r", "relaymail")
	if r.exit != 0 {
		t.Fatalf("dpkg -r relaymail: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
	t.Logf("dpkg -r: %s", strings.TrimSpace(r.stdout+r.stderr))
	if _, err := os.Stat("/usr/sbin/sendmail"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/usr/sbin/sendmail after dpkg -r: %v", err)
	}
	for _, p := range []string{spool + "/env/" + id, spool + "/msg/" + id, confPath} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("dpkg -r removed %s: %v", p, err)
		}
	}
	dpkgInstall(t, deb)
	if l := s.mailq(t); l.Count != 1 || l.Messages[0].ID != id {
		t.Fatalf("after reinstalling, mailq lists %+v, want %s", l.Messages, id)
	}
	s.toPostfix(t)
	if r := s.exec(t, nil, rootEnv, "", "/usr/sbin/sendmail", "-q"); r.exit != 0 {
		t.Fatalf("sendmail -q: exit %d: %s", r.exit, r.stderr)
	}
	if ds := s.deliveries("TOKEN-DPKG-R"); recipients(ds) != "kept@example.org" {
		t.Fatalf("the kept message went to %q", recipients(ds))
	}
	s.queueEmpty(t)
}
