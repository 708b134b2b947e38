package realserver

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// PostfixOptions configure StartPostfix. The zero value is a relay that
// accepts mail for any domain from 127.0.0.1, offers STARTTLS (with a
// certificate for 127.0.0.1 from a throw-away CA, CACert) and records what
// it receives.
type PostfixOptions struct {
	// SASL makes smtpd offer AUTH (after STARTTLS only) through this
	// Dovecot's auth service; the users are Dovecot's, with Password.
	SASL *Dovecot
	// RequireAuth refuses to relay for clients that did not authenticate
	// (needs SASL); by default loopback clients may relay.
	RequireAuth bool
	// RequireTLS makes STARTTLS mandatory (smtpd_tls_security_level =
	// encrypt).
	RequireTLS bool
	// MainCF are extra main.cf lines, e.g. "smtpd_discard_ehlo_keywords =
	// chunking" or "message_size_limit = 10000". They come last, so they
	// override the harness's settings.
	MainCF []string
}

// Postfix is a private Postfix instance on 127.0.0.1. Every message it
// accepts goes, once per recipient, to a pipe(8) recorder that stores the
// envelope and the bytes; see Delivered.
type Postfix struct {
	SMTPAddr string         // 127.0.0.1:port, smtpd with STARTTLS
	CACert   string         // PEM file of the CA that signed the server certificate
	Roots    *x509.CertPool // the same CA, for a Go client's tls.Config
	Dir      string         // config, queue, recorder output, maillog

	tb    testing.TB
	proc  *process
	queue string
	out   string
	log   string
}

// Delivery is one message for one recipient, as Postfix's pipe(8) handed
// it to the recorder.
type Delivery struct {
	Sender    string // envelope sender, "" for <>
	Recipient string // envelope recipient
	// Data is the message as delivered: the Received field smtpd added
	// first, then what the client sent, with LF line endings and without
	// the SMTP dot-stuffing.
	Data []byte
}

// Content is Data without the Received field Postfix added.
func (d Delivery) Content() []byte {
	if _, rest, ok := cutLeadingField(d.Data, "Received"); ok {
		return rest
	}
	return d.Data
}

// Received is the Received field Postfix added, unfolded.
func (d Delivery) Received() string {
	if f, _, ok := cutLeadingField(d.Data, "Received"); ok {
		return fieldValue(f)
	}
	return ""
}

var mainCF = template.Must(template.New("main.cf").Parse(`# relaymail e2e: a private Postfix instance (written by e2e/realserver)
compatibility_level = 3.6
config_directory = {{.Dir}}/conf
queue_directory = {{.Dir}}/queue
data_directory = {{.Dir}}/data
daemon_directory = {{.Root}}/usr/lib/postfix/sbin
command_directory = {{.Root}}/usr/sbin
shlib_directory = {{.Root}}/usr/lib/postfix
meta_directory = {{.Root}}/etc/postfix
mail_owner = postfix
setgid_group = postdrop
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH ` + markerVar + `
maillog_file_prefixes = {{.Dir}}
maillog_file = {{.Dir}}/maillog
syslog_name = relaymail-e2e-postfix
myhostname = ` + ServerName + `
mydomain = ` + Domain + `
myorigin = ` + Domain + `
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
# Leave headers alone: what the client sent is what gets recorded.
local_header_rewrite_clients =
default_transport = recorder
relay_transport = recorder
local_transport = recorder
virtual_transport = recorder
recorder_destination_recipient_limit = 1
biff = no
smtpd_tls_cert_file = {{.Cert}}
smtpd_tls_key_file = {{.Key}}
smtpd_tls_security_level = {{if .RequireTLS}}encrypt{{else}}may{{end}}
smtpd_tls_loglevel = 1
{{- if .SASLPath}}
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:{{.SASLPath}}
smtpd_tls_auth_only = yes
{{- end}}
smtpd_relay_restrictions = {{if not .RequireAuth}}permit_mynetworks, {{end}}{{if .SASLPath}}permit_sasl_authenticated, {{end}}reject
{{range .Extra}}{{.}}
{{end}}`))

var masterCF = template.Must(template.New("master.cf").Parse(`# relaymail e2e: a private Postfix instance (written by e2e/realserver)
# service type  private unpriv  chroot  wakeup  maxproc command + args
{{.Listen}} inet  n       -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
showq     unix  n       -       n       -       -       showq
postlog   unix-dgram n  -       n       -       1       postlogd
recorder  unix  -       n       n       -       -       pipe
  flags= null_sender= user={{.User}} argv={{.Recorder}} ${sender} ${recipient}
`))

// recorder is the pipe(8) command: one file pair per recipient, the
// envelope in NAME.env, the message in NAME.msg (renamed into place last).
// Names sort by delivery time.
const recorder = `#!/bin/sh
# relaymail e2e: record one delivery (written by e2e/realserver)
f="$(dirname "$0")/out/$(date +%s%N).$$"
cat >"$f.tmp" || exit 75
printf '%s\n%s\n' "$1" "$2" >"$f.env" || exit 75
mv "$f.tmp" "$f.msg" || exit 75
`

// StartPostfix starts a private Postfix and stops it at the test's cleanup.
// It skips the test when Postfix is not extracted and cannot be.
func StartPostfix(tb testing.TB, opts PostfixOptions) *Postfix {
	tb.Helper()
	need(tb, "postfix", checkPostfix)
	if opts.RequireAuth && opts.SASL == nil {
		tb.Fatal("realserver: PostfixOptions.RequireAuth needs SASL")
	}
	userName, mail, err := mailUser()
	if err != nil {
		tb.Fatal(err)
	}
	owner, err := lookupUser("postfix")
	if err != nil {
		tb.Fatal(err)
	}
	root := postfixRoot()
	dir := instanceDir(tb, "rmp-")
	p := &Postfix{Dir: dir, tb: tb, queue: filepath.Join(dir, "queue"), out: filepath.Join(dir, "out"), log: filepath.Join(dir, "maillog")}
	pk, err := newPKI(dir)
	if err != nil {
		tb.Fatal(err)
	}
	p.CACert, p.Roots = pk.caFile, pk.roots
	postdrop, err := lookupGroup("postdrop")
	if err != nil {
		tb.Fatal(err)
	}
	// The queue as postfix-files lays it out.
	type qdir struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}
	dirs := []qdir{
		{path: "conf", mode: 0o755},
		{path: "data", mode: 0o700, uid: owner.uid},
		{path: "queue", mode: 0o755},
		{path: "queue/pid", mode: 0o755},
		{path: "queue/maildrop", mode: 0o730, uid: owner.uid, gid: postdrop},
		{path: "queue/public", mode: 0o710, uid: owner.uid, gid: postdrop},
		{path: "out", mode: 0o755, uid: mail.uid, gid: mail.gid},
	}
	for _, q := range []string{"active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved", "trace"} {
		dirs = append(dirs, qdir{path: "queue/" + q, mode: 0o700, uid: owner.uid})
	}
	for _, d := range dirs {
		if err := mkdirOwned(filepath.Join(dir, d.path), d.mode, d.uid, d.gid); err != nil {
			tb.Fatal(err)
		}
	}
	rec := filepath.Join(dir, "recorder")
	if err := os.WriteFile(rec, []byte(recorder), 0o755); err != nil {
		tb.Fatal(err)
	}
	saslPath := ""
	if opts.SASL != nil {
		saslPath = opts.SASL.AuthAddr
	}
	var main strings.Builder
	err = mainCF.Execute(&main, map[string]any{
		"Dir": dir, "Root": root, "Cert": pk.certFile, "Key": pk.keyFile,
		"RequireTLS": opts.RequireTLS, "RequireAuth": opts.RequireAuth, "SASLPath": saslPath, "Extra": opts.MainCF,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "main.cf"), []byte(main.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", "TZ=UTC", "LD_LIBRARY_PATH=" + filepath.Join(root, "usr/lib/postfix")}
	p.proc = startRetrying(tb, "postfix", func() (*process, []func() error) {
		port := freePorts(tb, 1)[0]
		p.SMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var master strings.Builder
		if err := masterCF.Execute(&master, map[string]any{"Listen": p.SMTPAddr, "User": userName, "Recorder": rec}); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "conf", "master.cf"), []byte(master.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		// Postfix waits for a configuration file written in the last
		// second or two to "settle" (300 ms naps); it is written already.
		past := time.Now().Add(-time.Minute)
		for _, f := range []string{"main.cf", "master.cf"} {
			if err := os.Chtimes(filepath.Join(dir, "conf", f), past, past); err != nil {
				tb.Fatal(err)
			}
		}
		// -d: stay in the foreground, in our process group, with stderr
		// kept, so that a configuration error shows in postfix.out.
		proc, err := start("postfix", dir, []string{filepath.Join(root, "usr/lib/postfix/sbin/master"), "-d", "-c", filepath.Join(dir, "conf")}, env)
		if err != nil {
			tb.Fatal(err)
		}
		return proc, []func() error{greets("tcp", p.SMTPAddr)}
	}, p.log)
	return p
}

// Log returns Postfix's maillog so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// queued counts the messages Postfix still holds, by queue.
func (p *Postfix) queued() map[string]int {
	n := map[string]int{}
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		filepath.WalkDir(filepath.Join(p.queue, q), func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				n[q]++
			}
			return nil
		})
	}
	return n
}

// Delivered waits until Postfix has finished with every message it
// accepted (delivery is asynchronous: smtpd answers 250 once the message is
// queued), then returns the deliveries, oldest first. A message that was
// deferred (the recorder failed) fails the test. Errors are reported with
// Errorf, so it may be called from subtests.
func (p *Postfix) Delivered() []Delivery {
	p.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := p.queued()
		if n["deferred"]+n["hold"] > 0 {
			p.tb.Errorf("realserver: postfix deferred or held mail (%v); maillog:\n%s", n, tail(p.log, 20))
			break
		}
		if n["maildrop"]+n["incoming"]+n["active"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			p.tb.Errorf("realserver: postfix still has mail in its queue after 15s (%v); maillog:\n%s", n, tail(p.log, 20))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ents, err := os.ReadDir(p.out)
	if err != nil {
		p.tb.Errorf("realserver: %v", err)
		return nil
	}
	var names []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".msg"); ok {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return recorderLess(names[i], names[j]) })
	var ds []Delivery
	for _, name := range names {
		env, err1 := os.ReadFile(filepath.Join(p.out, name+".env"))
		data, err2 := os.ReadFile(filepath.Join(p.out, name+".msg"))
		if err := errors.Join(err1, err2); err != nil {
			p.tb.Errorf("realserver: %v", err)
			continue
		}
		sender, rcpt, _ := strings.Cut(strings.TrimSuffix(string(env), "\n"), "\n")
		ds = append(ds, Delivery{Sender: sender, Recipient: rcpt, Data: data})
	}
	return ds
}

// recorderLess orders "nanoseconds.pid" names numerically.
func recorderLess(a, b string) bool {
	ta, _, _ := strings.Cut(a, ".")
	tb, _, _ := strings.Cut(b, ".")
	na, _ := strconv.ParseInt(ta, 10, 64)
	nb, _ := strconv.ParseInt(tb, 10, 64)
	if na != nb {
		return na < nb
	}
	return a < b
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
