package realserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
)

// The Dovecot users. All have the password Password and live in Domain.
const (
	// User1 is an ordinary mailbox.
	User1 = "user1"
	// QuotaUser has a 1-byte quota: LMTP accepts RCPT and then answers
	// 552 5.2.2 for this recipient after DATA.
	QuotaUser = "quota"
	// TempfailUser has a 1-byte quota and quota_full_tempfail = yes: it
	// gets 452 4.2.2 after DATA.
	TempfailUser = "tempfail"
	// Password is every test user's password (Dovecot passdb, for SASL).
	Password = "secret"
	// Domain is the domain of the test addresses; Dovecot ignores it.
	Domain = "example.com"
)

// Dovecot is a private Dovecot instance that speaks LMTP on a TCP port and
// a unix socket, and offers its auth service (for Postfix SASL) on a TCP
// port. Users are User1, QuotaUser and TempfailUser; any other recipient
// gets 550 5.1.1 at RCPT.
type Dovecot struct {
	LMTPAddr   string // 127.0.0.1:port
	LMTPSocket string // unix socket path
	AuthAddr   string // 127.0.0.1:port of the auth service (client protocol)
	Dir        string // everything of this instance: config, run, mail, log

	tb   testing.TB
	proc *process
	log  string
}

// Address returns user@Domain.
func Address(user string) string { return user + "@" + Domain }

var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`# relaymail e2e: a private Dovecot instance (written by e2e/realserver)
protocols = lmtp
listen = 127.0.0.1
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
instance_name = {{.Instance}}
log_path = {{.Dir}}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = {{.UID}}
first_valid_gid = {{.GID}}
mail_plugins = quota
lmtp_save_to_detail_mailbox = no
postmaster_address = postmaster@{{.Domain}}
hostname = lmtp.test
import_environment = TZ ` + markerVar + `
passdb {
  driver = passwd-file
  args = scheme=PLAIN {{.Dir}}/users
}
userdb {
  driver = passwd-file
  args = {{.Dir}}/users
}
plugin {
  quota = maildir:User quota
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{.LMTPPort}}
  }
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = {{.AuthPort}}
  }
}
`))

// StartDovecot starts a private Dovecot and stops it at the test's cleanup.
// It skips the test when Dovecot is not installed and cannot be.
func StartDovecot(tb testing.TB) *Dovecot {
	tb.Helper()
	need(tb, "dovecot", checkDovecot)
	_, mail, err := mailUser()
	if err != nil {
		tb.Fatal(err)
	}
	dir := instanceDir(tb, "rmd-")
	d := &Dovecot{Dir: dir, tb: tb, LMTPSocket: filepath.Join(dir, "run", "lmtp"), log: filepath.Join(dir, "dovecot.log")}
	for _, sub := range []string{"run", "state"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := mkdirOwned(filepath.Join(dir, "mail"), 0o755, mail.uid, mail.gid); err != nil {
		tb.Fatal(err)
	}
	var users strings.Builder
	for _, u := range []struct{ name, extra string }{
		{User1, ""},
		{QuotaUser, "userdb_quota_rule=*:storage=1B"},
		{TempfailUser, "userdb_quota_rule=*:storage=1B userdb_quota_full_tempfail=yes"},
	} {
		// user:password:uid:gid:(gecos):home:(shell):extra fields
		fmt.Fprintf(&users, "%s:{PLAIN}%s:%d:%d::%s::%s\n", u.name, Password, mail.uid, mail.gid, d.home(u.name), u.extra)
	}
	// Dovecot's auth process reads it as the dovecot user; the passwords
	// are the published test password.
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(dir, "dovecot.conf")
	d.proc = startRetrying(tb, "dovecot", func() (*process, []func() error) {
		ports := freePorts(tb, 2)
		d.LMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		d.AuthAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		var b strings.Builder
		err := dovecotConf.Execute(&b, map[string]any{
			"Dir": dir, "Instance": "relaymail-" + filepath.Base(dir), "UID": mail.uid, "GID": mail.gid,
			"Domain": Domain, "LMTPPort": ports[0], "AuthPort": ports[1],
		})
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		p, err := start("dovecot", dir, []string{dovecotBin, "-F", "-c", conf}, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC"})
		if err != nil {
			tb.Fatal(err)
		}
		return p, []func() error{greets("tcp", d.LMTPAddr), greets("unix", d.LMTPSocket), listens("tcp", d.AuthAddr)}
	}, d.log)
	return d
}

func (d *Dovecot) home(user string) string { return filepath.Join(d.Dir, "mail", user) }

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// Message is a message Dovecot stored in a maildir.
type Message struct {
	File       string // path of the maildir file
	Raw        []byte // the file as stored (LF line endings)
	ReturnPath string // the envelope sender, from the Return-Path Dovecot added ("" for <>)
	// Content is Raw without the Return-Path and Received fields that
	// Dovecot added: the bytes the client sent, with LF line endings.
	Content []byte
}

// Maildir returns the messages delivered to user, oldest first. LMTP
// delivery is synchronous: a message is there once its 250 was sent.
// Errors are reported with Errorf, so it may be called from subtests.
func (d *Dovecot) Maildir(user string) []Message {
	d.tb.Helper()
	var msgs []Message
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(d.home(user), "Maildir", sub)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			d.tb.Errorf("realserver: %v", err)
			continue
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			path := filepath.Join(dir, e.Name())
			raw, err := os.ReadFile(path)
			if err != nil {
				d.tb.Errorf("realserver: %v", err)
				continue
			}
			m := Message{File: path, Raw: raw, Content: raw}
			if f, rest, ok := cutLeadingField(m.Content, "Return-Path"); ok {
				m.ReturnPath = strings.Trim(fieldValue(f), "<>")
				m.Content = rest
			}
			if _, rest, ok := cutLeadingField(m.Content, "Received"); ok {
				m.Content = rest
			}
			msgs = append(msgs, m)
		}
	}
	sort.Slice(msgs, func(i, j int) bool { return maildirLess(msgs[i].File, msgs[j].File) })
	return msgs
}

// maildirLess orders maildir names "secs.Musecs P pid.host..." by time.
func maildirLess(a, b string) bool {
	ka, kb := maildirKey(filepath.Base(a)), maildirKey(filepath.Base(b))
	if ka != kb {
		return ka < kb
	}
	return a < b
}

func maildirKey(name string) int64 {
	secs, rest, _ := strings.Cut(name, ".")
	s, _ := strconv.ParseInt(secs, 10, 64)
	var us int64
	if strings.HasPrefix(rest, "M") {
		end := strings.IndexFunc(rest[1:], func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(rest) - 1
		}
		us, _ = strconv.ParseInt(rest[1:1+end], 10, 64)
	}
	return s*1_000_000 + us
}
