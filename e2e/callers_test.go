package e2e

import (
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay/relaytest"
)

// realisticAliases is what a Debian host's /etc/aliases looks like once the
// administrator has sent root's mail somewhere a person reads it.
const realisticAliases = `# See man 5 aliases for format
mailer-daemon: postmaster
postmaster:    root
nobody:        root
hostmaster:    root
usenet:        root
news:          root
webmaster:     root
www:           root
ftp:           root
abuse:         root
noc:           root
security:      root
www-data:      root
root:          admin@example.com
`

func aliasesFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "aliases")
	if err := os.WriteFile(p, []byte(realisticAliases), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loginAt is the envelope sender sendmail uses without -f and without a
// configured from: the real uid's login name, whatever $USER says.
func loginAt(t *testing.T) string {
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Skip("no passwd entry for this uid")
	}
	return u.Username + "@example.com"
}

// TestRealCallersWithAliases sends what the real callers of spec.md §6 send,
// with their exact argv and headers, through the built sendmail and a
// realistic alias file, and checks the envelope and the header that the
// smarthost received: the same address in both.
func TestRealCallersWithAliases(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		env    []string
		in     string
		sender string // "login" for the real uid's login name
		rcpts  []string
		header []string // lines the received header must hold
	}{
		{
			name: "Debian cron",
			args: []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			env:  []string{"RELAYMAIL_FROM=root", "LOGNAME=root", "HOME=/root", "SHELL=/bin/sh"},
			in: "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@web1> /usr/local/bin/backup\n" +
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n" +
				"X-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <HOME=/root>\n\nbackup done\n",
			sender: "root@example.com",
			rcpts:  []string{"admin@example.com"},
			header: []string{"From: root@example.com (Cron Daemon)", "To: admin@example.com", "Subject: Cron <root@web1> /usr/local/bin/backup"},
		},
		{
			name: "cronie with -f root",
			args: []string{"-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"},
			in: "From: \"(Cron Daemon)\" <root>\nTo: root\nSubject: Cron <root@web1> run-parts /etc/cron.hourly\n" +
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=\"UTF-8\"\nAuto-Submitted: auto-generated\nPrecedence: bulk\n" +
				"X-Cron-Env: <LANG=C>\n\nhourly output\n",
			sender: "root@example.com",
			rcpts:  []string{"admin@example.com"},
			header: []string{"From: \"(Cron Daemon)\" <root@example.com>", "To: admin@example.com", "Auto-Submitted: auto-generated"},
		},
		{
			name: "fail2ban, no -i, bare names",
			args: []string{"-f", "fail2ban", "root"},
			in: "Subject: [Fail2Ban] sshd: banned 192.0.2.7 from web1\nDate: Sat, 21 Nov 2026 11:58:00 +0000\n" +
				"From: Fail2Ban <fail2ban>\nTo: root\n\nHi,\n\nThe IP 192.0.2.7 has just been banned by Fail2Ban.\n\nRegards,\n\nFail2Ban\n",
			sender: "fail2ban@example.com",
			rcpts:  []string{"admin@example.com"},
			header: []string{"From: Fail2Ban <fail2ban@example.com>", "To: admin@example.com", "Date: Sat, 21 Nov 2026 11:58:00 +0000"},
		},
		{
			name: "sudo with USER=root and HOME=/",
			args: []string{"-t"},
			env:  []string{"RELAYMAIL_FROM", "HOME=/", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LOGNAME=root", "USER=root"},
			in: "To: root\nFrom: root\nAuto-Submitted: auto-generated\nSubject: *** SECURITY information for web1 ***\n\n" +
				"web1 : Nov 21 12:00:00 : mallory : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/mallory ; USER=root ; COMMAND=/bin/sh\n",
			sender: "login",
			rcpts:  []string{"admin@example.com"},
			header: []string{"To: admin@example.com", "From: root@example.com", "Subject: *** SECURITY information for web1 ***"},
		},
		{
			name: "unattended-upgrades with From: root",
			args: []string{"-oi", "-t"},
			in: "Subject: [reboot required] unattended-upgrades result for web1.example.com: SUCCESS\n" +
				"From: root\nTo: root\nAuto-Submitted: auto-generated\nContent-Type: text/plain; charset=\"utf-8\"\n" +
				"Content-Transfer-Encoding: quoted-printable\nMIME-Version: 1.0\n\nUnattended upgrade result: All upgrades installed\n",
			sender: "alice@example.com",
			rcpts:  []string{"admin@example.com"},
			header: []string{"From: root@example.com", "To: admin@example.com"},
		},
		{
			name:   "a web application to webmaster and www-data",
			args:   []string{"-t", "-i"},
			in:     "To: Webmaster <webmaster@example.com>, www-data@host.example.com\nCc: abuse\nSubject: contact form\n\nhello\n",
			sender: "alice@example.com",
			rcpts:  []string{"admin@example.com"},
			header: []string{"To: Webmaster <admin@example.com>, admin@example.com", "Cc: admin@example.com"},
		},
		{
			name:   "-n turns the aliases off",
			args:   []string{"-n", "-i", "root"},
			in:     "To: root\n\nbody\n",
			sender: "alice@example.com",
			rcpts:  []string{"root@example.com"},
			header: []string{"To: root@example.com"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := relaytest.NewQMTPServer(t)
			env := mergeEnv(baseEnv(t, qmtpURL(srv)), append([]string{"RELAYMAIL_ALIASES=" + aliasesFile(t)}, c.env...))
			o := runSendmail(t, env, c.args, []byte(c.in))
			if o.exit != 0 || o.stderr != "" {
				t.Fatalf("exit %d, stderr %q", o.exit, o.stderr)
			}
			pkgs := srv.Packages()
			if len(pkgs) != 1 {
				t.Fatalf("%d packages", len(pkgs))
			}
			p := pkgs[0]
			want := c.sender
			if want == "login" {
				want = loginAt(t)
			}
			if p.Sender != want || strings.Join(p.Recipients, " ") != strings.Join(c.rcpts, " ") {
				t.Errorf("envelope: sender %q rcpts %q, want %q %q", p.Sender, p.Recipients, want, c.rcpts)
			}
			head, _, _ := strings.Cut(string(p.Message), "\n\n")
			lines := strings.Split(head, "\n")
			for _, w := range c.header {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("the received header lacks %q:\n%s", w, head)
				}
			}
		})
	}
}

// The done-when, literally: a cron job's mail to root arrives at the
// smarthost as admin@example.com, in the envelope and in the header, when
// the aliases say root: admin@example.com.
func TestCronMailToRootArrivesAsAdmin(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	dir := t.TempDir()
	aliases := filepath.Join(dir, "aliases")
	os.WriteFile(aliases, []byte("root: admin@example.com\n"), 0o644)
	env := mergeEnv(baseEnv(t, qmtpURL(srv)), []string{"RELAYMAIL_ALIASES=" + aliases})
	in := "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@web1> date\n\nSat Nov 21 12:00:00 UTC 2026\n"
	o := runSendmail(t, env, []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"}, []byte(in))
	if o.exit != 0 {
		t.Fatalf("exit %d: %s", o.exit, o.stderr)
	}
	p := srv.Packages()[0]
	if strings.Join(p.Recipients, " ") != "admin@example.com" {
		t.Errorf("envelope recipients %q, want admin@example.com", p.Recipients)
	}
	if !strings.Contains(string(p.Message), "\nTo: admin@example.com\n") {
		t.Errorf("header To is not admin@example.com:\n%s", p.Message)
	}
}

// rewrite_from and allow_from_override, end to end, and what -bv shows.
func TestSenderRewriting(t *testing.T) {
	cases := []struct {
		name   string
		env    []string
		args   []string
		in     string
		sender string
		from   string
	}{
		{name: "allow_from_override yes", args: []string{"-f", "app@example.net", "x@example.org"},
			in: "Subject: s\n\nb\n", sender: "app@example.net", from: "From: app@example.net"},
		{name: "allow_from_override no", env: []string{"RELAYMAIL_ALLOW_FROM_OVERRIDE=no"}, args: []string{"-f", "app@example.net", "x@example.org"},
			in: "Subject: s\n\nb\n", sender: "alice@example.com", from: "From: alice@example.com"},
		{name: "allow_from_override no with -r", env: []string{"RELAYMAIL_ALLOW_FROM_OVERRIDE=no"}, args: []string{"-r", "app@example.net", "x@example.org"},
			in: "Subject: s\n\nb\n", sender: "alice@example.com", from: "From: alice@example.com"},
		{name: "rewrite_from always", env: []string{"RELAYMAIL_REWRITE_FROM=always", "RELAYMAIL_FROM=noreply@example.com"}, args: []string{"-f", "www-data", "-t"},
			in: "From: \"Shop\" <www-data@host.example.com>\nTo: x@example.org\n\nb\n", sender: "noreply@example.com", from: "From: \"Shop\" <noreply@example.com>"},
		{name: "rewrite_from never", env: []string{"RELAYMAIL_REWRITE_FROM=never"}, args: []string{"-t"},
			in: "From: root (Cron Daemon)\nTo: x@example.org\n\nb\n", sender: "alice@example.com", from: "From: root (Cron Daemon)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := relaytest.NewQMTPServer(t)
			o := runSendmail(t, mergeEnv(baseEnv(t, qmtpURL(srv)), c.env), c.args, []byte(c.in))
			if o.exit != 0 {
				t.Fatalf("exit %d: %s", o.exit, o.stderr)
			}
			p := srv.Packages()[0]
			if p.Sender != c.sender || !strings.Contains(string(p.Message), "\n"+c.from+"\n") && !strings.HasPrefix(string(p.Message), c.from+"\n") {
				t.Errorf("sender %q (want %q), message:\n%s(want %q)", p.Sender, c.sender, p.Message, c.from)
			}
		})
	}

	// -bv shows every rewrite, even without a smarthost.
	env := mergeEnv(baseEnv(t, ""), []string{"RELAYMAIL_ALIASES=" + aliasesFile(t), "RELAYMAIL_REWRITE_FROM=always", "RELAYMAIL_FROM=noreply", "RELAYMAIL_ALLOW_FROM_OVERRIDE=no"})
	o := runSendmail(t, env, []string{"-bv", "-f", "x@evil.example", "www-data", "bob"}, nil)
	want := "sender \"x@evil.example\" ignored (allow_from_override no)\n" +
		"www-data -> admin@example.com (alias, " + "ALIASES lines 14, 15)\n" +
		"bob -> bob@example.com (qualified)\n" +
		"sender noreply@example.com\n"
	got := regexpAliases.ReplaceAllString(o.stdout, "ALIASES")
	if !strings.HasPrefix(got, want[:strings.Index(want, "sender noreply")]) || !strings.Contains(got, "sender <noreply@example.com>\nrecipient <admin@example.com>\nrecipient <bob@example.com>\n") {
		t.Errorf("-bv:\n%s", o.stdout)
	}
	if o.exit != 78 {
		t.Errorf("-bv without a smarthost: exit %d, want 78", o.exit)
	}
}

var regexpAliases = regexp.MustCompile(`/\S+/aliases`)
