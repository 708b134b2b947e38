package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// target is where a client sends: a server, or the latency proxy in front
// of it.
type target struct {
	proto    string // "smtp", "lmtp", "qmtp", "qmqp"
	network  string // "tcp" or "unix"
	addr     string // host:port, or a socket path
	starttls bool   // SMTP with STARTTLS (the server's CA in caFile)
	caFile   string
}

func (t target) hostPort() (string, string) {
	h, p, _ := net.SplitHostPort(t.addr)
	return h, p
}

// key names the target in file names.
func (t target) key() string {
	k := t.proto + "-" + strings.NewReplacer("/", "_", ":", "_", ".", "_").Replace(t.addr)
	if t.starttls {
		k += "-tls"
	}
	return k
}

// The clients.
const (
	relaymail  = "relaymail"
	msmtp      = "msmtp"
	nullmailer = "nullmailer"
	dma        = "dma"
)

// client is one program under test.
type client struct {
	name    string
	version string
	skip    string // why it cannot run here; "" when it can
	bin     string // the main binary (nullmailer: the directory of its modules)
	size    int64  // the main binary's size in bytes
	static  bool
}

// msgFile is a message on disk, and its nullmailer queue-file twins (the
// envelope lines first), made when first needed.
type msgFile struct {
	name string // "2 KB", "50 MB"
	path string
	size int64

	mu sync.Mutex
	nm map[int]string // by recipient count
}

// entry is one client in one case: what it is called in the tables, the
// server behind it, and for relaymail the delivery mode.
type entry struct {
	client *client
	label  string // "relaymail", "relaymail -odb", "nullmailer (qmqp)"
	server string // "smtp-sink", "Postfix", "Dovecot", "qmtp-sink", "qmqp-sink"
	target target
	mode   string // relaymail: "", "-odb" or "-odq"
}

// invocation builds the process that sends msg to rcpts through t.
func (h *harness) invocation(e entry, t target, rcpts []string, msg *msgFile) (*inv, error) {
	switch e.client.name {
	case relaymail:
		return h.relaymailInv(e, t, rcpts, msg)
	case msmtp:
		return h.msmtpInv(t, rcpts, msg)
	case nullmailer:
		return h.nullmailerInv(t, rcpts, msg)
	case dma:
		return h.dmaInv(t, rcpts, msg)
	}
	return nil, fmt.Errorf("unknown client %q", e.client.name)
}

// relaymailEnv is relaymail's environment: no configuration file, no
// syslog, fixed names; everything else is the default (queue on, -odi,
// flush_after_send yes).
func (h *harness) relaymailEnv(queueDir, url string) []string {
	return benchEnv(h.emptyConf, "RELAYMAIL_QUEUE_DIR="+queueDir, "RELAYMAIL_SMARTHOST="+url)
}

// benchEnv is the environment every relaymail run of the benchmark starts
// from: conf is an empty configuration file, syslog is off and the names
// are fixed; extra follows.
func benchEnv(conf string, extra ...string) []string {
	return append([]string{
		"PATH=/usr/bin:/bin",
		"RELAYMAIL_CONFIG=" + conf,
		"RELAYMAIL_LOG=none",
		"RELAYMAIL_DOMAIN=example.com",
		"RELAYMAIL_HOSTNAME=host.example.com",
		"RELAYMAIL_FROM=alice",
	}, extra...)
}

// flushEnv is benchEnv for the queue flush: a generous timeout, and no
// flush after a send, which would start queue runs of its own.
func flushEnv(conf string) []string {
	return benchEnv(conf, "RELAYMAIL_TIMEOUT=60s", "RELAYMAIL_FLUSH_AFTER_SEND=no")
}

func relaymailURL(t target) string {
	switch {
	case t.proto == "smtp" && t.starttls:
		return "smtp://" + t.addr
	case t.proto == "smtp":
		return "smtp://" + t.addr + "?tls=none"
	case t.network == "unix":
		return t.proto + ":" + t.addr
	}
	return t.proto + "://" + t.addr
}

func (h *harness) relaymailInv(e entry, t target, rcpts []string, msg *msgFile) (*inv, error) {
	queueDir := filepath.Join(h.work, "spool"+e.mode)
	env := h.relaymailEnv(queueDir, relaymailURL(t))
	if t.starttls {
		env = append(env, "RELAYMAIL_TLS_CA_FILE="+t.caFile)
	}
	argv := []string{h.sendmail, "-i"}
	if e.mode != "" {
		argv = append(argv, e.mode)
	}
	in := &inv{argv: append(argv, rcpts...), env: env, stdin: msg.path}
	// With log = none relaymail prints nothing when every recipient was
	// delivered (or queued by -odb/-odq).
	in.check = func(out []byte) error {
		if len(bytes.TrimSpace(out)) > 0 {
			return fmt.Errorf("not delivered: %s", clip(out, 400))
		}
		return nil
	}
	envDir := filepath.Join(queueDir, "env")
	switch e.mode {
	case "-odb":
		// The detached "sendmail -qI<id>" delivers after the caller
		// returned; wait for it, so that it does not run into the next
		// measurement.
		in.settle = func() error {
			if !waitUntil(30*time.Second, func() bool { return countFiles(envDir, "") == 0 }) {
				return errors.New("relaymail -odb: the detached queue run did not deliver within 30s")
			}
			return nil
		}
	case "-odq":
		// Only queued: empty the queue for the next run.
		in.settle = func() error {
			return errors.Join(emptyDir(envDir), emptyDir(filepath.Join(queueDir, "msg")))
		}
	default:
		in.settle = func() error {
			if n := countFiles(envDir, ""); n > 0 {
				// Emptied, so that the next measurement starts clean.
				emptyDir(envDir)
				emptyDir(filepath.Join(queueDir, "msg"))
				return fmt.Errorf("relaymail: %d messages were queued instead of delivered", n)
			}
			return nil
		}
	}
	return in, nil
}

// msmtpInv runs msmtp with a configuration file of its own for t.
func (h *harness) msmtpInv(t target, rcpts []string, msg *msgFile) (*inv, error) {
	conf := filepath.Join(h.work, "msmtprc-"+t.key())
	var c strings.Builder
	c.WriteString("defaults\nsyslog off\naccount default\n")
	if t.network == "unix" {
		// msmtp wants a port even with a socket; it is not used.
		fmt.Fprintf(&c, "socket %s\nport 24\n", t.addr)
	} else {
		host, port := t.hostPort()
		fmt.Fprintf(&c, "host %s\nport %s\n", host, port)
	}
	fmt.Fprintf(&c, "protocol %s\nfrom %s\ndomain host.example.com\nauth off\n", t.proto, sender)
	if t.starttls {
		fmt.Fprintf(&c, "tls on\ntls_starttls on\ntls_trust_file %s\n", t.caFile)
	} else {
		c.WriteString("tls off\n")
	}
	if err := os.WriteFile(conf, []byte(c.String()), 0o600); err != nil {
		return nil, err
	}
	return &inv{
		argv:  append([]string{h.clients[msmtp].bin, "-C", conf}, rcpts...),
		env:   []string{"PATH=/usr/bin:/bin", "HOME=" + h.work},
		stdin: msg.path,
	}, nil
}

// nullmailerInv runs one of nullmailer's protocol modules the way
// nullmailer-send does: the options as lines on standard input, the queue
// file (sender, recipients, an empty line, the message) on descriptor 3.
func (h *harness) nullmailerInv(t target, rcpts []string, msg *msgFile) (*inv, error) {
	if t.network == "unix" {
		return nil, errors.New("nullmailer has no unix socket transport")
	}
	module := "smtp"
	if t.proto == "qmqp" {
		module = "qmqp"
	}
	host, port := t.hostPort()
	opts := filepath.Join(h.work, "nullmailer-"+t.key())
	o := fmt.Sprintf("host=%s\nport=%s\n", host, port)
	if t.starttls {
		o += "starttls\nx509cafile=" + t.caFile + "\n"
	}
	if err := os.WriteFile(opts, []byte(o), 0o600); err != nil {
		return nil, err
	}
	qf, err := msg.nullmailerFile(h.work, rcpts)
	if err != nil {
		return nil, err
	}
	return &inv{
		argv:  []string{filepath.Join(h.clients[nullmailer].bin, module)},
		env:   []string{"PATH=/usr/bin:/bin", "HELOHOST=host.example.com"},
		stdin: opts,
		fd3:   qf,
	}, nil
}

func (m *msgFile) nullmailerFile(dir string, rcpts []string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.nm[len(rcpts)]; ok {
		return p, nil
	}
	p := filepath.Join(dir, fmt.Sprintf("nullmailer-%s-%d", filepath.Base(m.path), len(rcpts)))
	head := sender + "\n" + strings.Join(rcpts, "\n") + "\n\n"
	if err := copyFile(p, m.path, []byte(head)); err != nil {
		return "", err
	}
	if m.nm == nil {
		m.nm = map[int]string{}
	}
	m.nm[len(rcpts)] = p
	return p, nil
}

// dmaInv runs dma -D (deliver in the foreground). dma reads only
// /etc/dma/dma.conf, which exists here only in the benchmark's private
// mount namespace (see setupDMA); prepare writes it for t.
func (h *harness) dmaInv(t target, rcpts []string, msg *msgFile) (*inv, error) {
	if t.network == "unix" {
		return nil, errors.New("dma has no unix socket transport")
	}
	host, port := t.hostPort()
	conf := fmt.Sprintf("SMARTHOST %s\nPORT %s\nSPOOLDIR %s\nMAILNAME host.example.com\nALIASES /dev/null\n", host, port, h.dmaSpool)
	if t.starttls {
		conf += "SECURETRANSFER\nSTARTTLS\n"
	}
	spool := h.dmaSpool
	return &inv{
		argv:  append([]string{h.clients[dma].bin, "-D", "-f", sender}, rcpts...),
		env:   []string{"PATH=/usr/bin:/bin"},
		stdin: msg.path,
		prepare: func() error {
			return os.WriteFile("/etc/dma/dma.conf", []byte(conf), 0o644)
		},
		// dma forks one delivery process per recipient but the last, and
		// does not wait for them: wait until they are done (the spool is
		// empty), so that they do not run into the next measurement.
		settle: func() error {
			if !waitUntil(60*time.Second, func() bool { return countFiles(spool, "") == 0 }) {
				return errors.New("dma: its delivery processes did not finish within 60s")
			}
			return nil
		},
	}, nil
}

// setupDMA gives dma its configuration file. dma reads only the compiled-in
// /etc/dma/dma.conf, and /etc must not be touched, so make bench runs the
// benchmark in a private mount namespace (unshare --mount --propagation
// private) and the benchmark mounts an overlay on /etc there: /etc/dma
// exists for this process and its children only, and vanishes with them.
func (h *harness) setupDMA() string {
	// make bench names the mount namespace it was started in; this
	// process must be in another one, or the overlay would cover the
	// system's /etc. (/proc/1/ns/mnt may not be readable in a sandbox.)
	outer := os.Getenv("RELAYMAIL_BENCH_OUTER_MOUNTNS")
	if os.Getenv("RELAYMAIL_BENCH_MOUNTNS") != "private" || outer == "" {
		return "dma reads only /etc/dma/dma.conf: it runs only in make bench's private mount namespace (RELAYMAIL_BENCH_MOUNTNS=private)"
	}
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil || self == outer {
		return "dma needs a private mount namespace, and this process shares make's"
	}
	if init, err := os.Readlink("/proc/1/ns/mnt"); err == nil && init == self {
		return "dma needs a private mount namespace, and this process shares PID 1's"
	}
	if shared, err := rootShared(); err != nil || shared {
		return "dma needs a private mount namespace, and / propagates mounts (shared)"
	}
	ov := filepath.Join(h.pub, "etc-overlay")
	upper, work := filepath.Join(ov, "upper"), filepath.Join(ov, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err.Error()
		}
	}
	if err := syscall.Mount("overlay", "/etc", "overlay", 0, "lowerdir=/etc,upperdir="+upper+",workdir="+work); err != nil {
		return fmt.Sprintf("mounting an overlay on /etc in the private mount namespace: %v", err)
	}
	h.b.Cleanup(func() { syscall.Unmount("/etc", syscall.MNT_DETACH) })
	if err := os.MkdirAll("/etc/dma", 0o755); err != nil {
		return err.Error()
	}
	// dma drops root for the mail user, whose group writes the spool (as
	// /var/spool/dma is in Debian's package).
	h.dmaSpool = filepath.Join(h.pub, "dma-spool")
	if err := os.MkdirAll(h.dmaSpool, 0o775); err != nil {
		return err.Error()
	}
	gid := 8 // Debian's mail group
	if g, err := lookupGroupID("mail"); err == nil {
		gid = g
	}
	if err := os.Chown(h.dmaSpool, 0, gid); err != nil {
		return err.Error()
	}
	if err := os.Chmod(h.dmaSpool, 0o2775); err != nil {
		return err.Error()
	}
	return ""
}

// rootShared reports whether the mount at / has shared propagation.
func rootShared() (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 6 && f[4] == "/" {
			for _, opt := range f[6:] {
				if opt == "-" {
					break
				}
				if strings.HasPrefix(opt, "shared:") {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

func lookupGroupID(name string) (int, error) {
	data, err := os.ReadFile("/etc/group")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == name {
			var id int
			_, err := fmt.Sscan(f[2], &id)
			return id, err
		}
	}
	return 0, fmt.Errorf("group %s not found", name)
}
