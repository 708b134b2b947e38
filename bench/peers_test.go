package bench

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/bench/latency"
	"github.com/relaymail/relaymail/e2e/realserver"
)

// harness is one run of BenchmarkPeers: the binaries, the servers, the
// messages and what was measured.
type harness struct {
	b         *testing.B
	work      string // private scratch space (b.TempDir)
	pub       string // under /tmp, reachable by the servers' users (dma's spool)
	sendmail  string
	qmtpSink  string
	qmqpSink  string
	tlsSink   string
	emptyConf string
	dmaSpool  string
	clients   map[string]*client
	run       runner
	msgs      map[string]*msgFile // by size name: "2K", "50M", "500M"

	sink     *realserver.Sink
	postfix  *realserver.Postfix
	dovecot  *realserver.Dovecot
	qmtpAddr string
	qmtpDir  string
	qmqpAddr string
	qmqpDir  string
	tlsAddr  string
	tlsCA    string

	res results
	rng *rand.Rand // the order of the clients in each round
}

// lcase is a latency case: one server (or pair of comparable servers), the
// clients that can speak to it, and relaymail's round-trip target.
type lcase struct {
	id       string
	proto    string // "SMTP", "LMTP", "QMTP"
	title    string
	entries  []entry
	rt       bool    // count round trips through the latency proxy
	rtTarget float64 // relaymail's target (at most), 0: none
	rtWhy    string  // how the target is made up
}

// BenchmarkPeers is `make bench`: relaymail against msmtp, nullmailer and
// dma, alternating in one run, on loopback against smtp-sink, a private
// Postfix, Dovecot LMTP, bin/qmtp-sink and bench/cmd/qmqp-sink. It measures
// the caller's latency (a whole process), round trips at 20 ms RTT through
// bench/latency, peak RSS for 2 KB to 500 MB messages, 1,000 messages one
// process each, a queue flush of 1,000 messages, the binary's size and its
// start-up, and judges the targets of bench/README.md. It writes
// results/latest.{json,md,svg} and results/queue-flush.md, and fails when a
// target is missed (after writing them).
func BenchmarkPeers(b *testing.B) {
	h := newHarness(b)
	h.startServers()
	cases := h.cases()

	start := time.Now()
	h.phase("latency", "caller latency", func() { h.latency(cases) })
	h.phase("rtt", "round trips at 20 ms RTT", func() { h.roundTrips(cases) })
	h.phase("memory", "memory", func() { h.memory() })
	h.phase("throughput", "throughput: one process per message", func() { h.throughput() })
	h.phase("flush", "throughput: queue flush", func() { h.flush() })
	h.phase("size", "size and start-up", func() { h.sizeAndStartup() })
	h.phase("profile", "profile", func() { h.profile() })
	h.res.DurationS = time.Since(start).Seconds()

	h.judge()
	md := h.markdown()
	fmt.Print("\n" + md + "\n") // b.Log of a passing benchmark is not shown
	js, err := json.MarshalIndent(&h.res, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll("results", 0o755); err != nil {
		b.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"results/latest.json":    append(js, '\n'),
		"results/latest.md":      []byte(md),
		"results/latest.svg":     []byte(h.chart()),
		"results/queue-flush.md": []byte(h.queueFlushReport()),
	} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var failed []string
	for _, t := range h.res.Targets {
		if t.Verdict == "FAIL" {
			failed = append(failed, t.Name+" ("+t.Measured+")")
		}
	}
	if len(failed) > 0 {
		b.Errorf("targets missed (see bench/results/latest.md):\n  %s", strings.Join(failed, "\n  "))
	}
}

// phase runs one part of the benchmark, unless RELAYMAIL_BENCH_PHASES (a
// development knob) leaves it out.
func (h *harness) phase(id, name string, f func()) {
	if !slices.Contains(phases, id) {
		fmt.Fprintf(os.Stderr, "bench: %s: left out (RELAYMAIL_BENCH_PHASES)\n", name)
		return
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "bench: %s...\n", name)
	f()
	fmt.Fprintf(os.Stderr, "bench: %s took %.1fs\n", name, time.Since(start).Seconds())
}

func newHarness(b *testing.B) *harness {
	h := &harness{b: b, work: b.TempDir(), clients: map[string]*client{}, msgs: map[string]*msgFile{},
		rng: rand.New(rand.NewPCG(1, 2))}
	h.run = runner{out: filepath.Join(h.work, "output"), rssFile: filepath.Join(h.work, "rss")}
	var err error
	h.pub, err = os.MkdirTemp("/tmp", "rmbench-")
	if err != nil {
		b.Fatal(err)
	}
	os.Chmod(h.pub, 0o755)
	b.Cleanup(func() { os.RemoveAll(h.pub) })
	for _, p := range []struct {
		dst  *string
		path string
	}{{&h.sendmail, "../bin/sendmail"}, {&h.qmtpSink, "../bin/qmtp-sink"}, {&h.qmqpSink, "../bin/qmqp-sink"}, {&h.tlsSink, "../bin/smtp-tls-sink"}} {
		abs, _ := filepath.Abs(p.path)
		if _, err := os.Stat(abs); err != nil {
			b.Fatalf("%v: run `make bench`, which builds it", err)
		}
		*p.dst = abs
	}
	h.emptyConf = filepath.Join(h.work, "relaymail.conf")
	if err := os.WriteFile(h.emptyConf, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, s := range []string{"2K"} {
		h.message(s)
	}

	// The clients.
	rm := &client{name: relaymail, bin: h.sendmail, version: sendmailVersion(h.sendmail)}
	rm.size, rm.static = binaryInfo(h.sendmail)
	h.clients[relaymail] = rm
	cache := peerCache()
	for _, p := range []struct{ name, bin string }{
		{msmtp, "usr/bin/msmtp"},
		{nullmailer, "usr/lib/nullmailer"},
		{dma, "usr/sbin/dma"},
	} {
		c := &client{name: p.name, bin: filepath.Join(cache, p.name, "root", p.bin)}
		h.clients[p.name] = c
		v, err := os.ReadFile(filepath.Join(cache, p.name, "version"))
		if err != nil {
			c.skip = fmt.Sprintf("not extracted in %s (scripts/bench-deps.sh, run by make bench)", cache)
			continue
		}
		c.version = strings.TrimSpace(string(v))
		if !slices.Contains(onlyClients, p.name) {
			c.skip = "left out (RELAYMAIL_BENCH_CLIENTS)"
			continue
		}
		main := c.bin
		if p.name == nullmailer {
			main = filepath.Join(c.bin, "smtp")
		}
		c.size, c.static = binaryInfo(main)
	}
	if c := h.clients[dma]; c.skip == "" {
		c.skip = h.setupDMA()
	}
	h.res = results{
		Command:  benchCommandPeers,
		Date:     time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Machine:  machine(),
		Defaults: defaultKnobs(),
		Settings: map[string]string{
			"latency_rounds":  strconv.Itoa(latencyRuns),
			"rtt_rounds":      strconv.Itoa(rtRuns),
			"rtt":             rtt.String(),
			"messages":        strconv.Itoa(throughputN),
			"sizes":           "2K," + strings.Join(bigSizes, ","),
			"message_2k_size": strconv.FormatInt(h.msgs["2K"].size, 10),
		},
	}
	for _, name := range clientOrder {
		c := h.clients[name]
		h.res.Clients = append(h.res.Clients, clientInfo{Name: c.name, Version: c.version, Skipped: c.skip, Binary: c.bin, Size: c.size, Static: c.static})
	}
	return h
}

var clientOrder = []string{relaymail, msmtp, nullmailer, dma}

// benchCommandPeers is the command that produces results/latest.*.
const benchCommandPeers = "make bench"

// message returns the message of the named size, writing it once.
func (h *harness) message(name string) *msgFile {
	if m, ok := h.msgs[name]; ok {
		return m
	}
	size, err := parseSize(name)
	if err != nil {
		h.b.Fatal(err)
	}
	m := &msgFile{name: name, path: filepath.Join(h.work, "message-"+name), size: size}
	if err := writeMessage(m.path, size); err != nil {
		h.b.Fatal(err)
	}
	h.msgs[name] = m
	return m
}

func sendmailVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// binaryInfo returns a file's size and whether it is a static executable
// (no ELF interpreter).
func binaryInfo(path string) (int64, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	f, err := elf.Open(path)
	if err != nil {
		return fi.Size(), false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fi.Size(), false
		}
	}
	return fi.Size(), true
}

// stripped reports whether an ELF file has no symbol table.
func stripped(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Section(".symtab") == nil
}

func (h *harness) startServers() {
	b := h.b
	h.sink = realserver.StartSMTPSink(b)
	// Postfix discards what it accepts: the harness's recorder would fork
	// a shell per recipient behind every measurement.
	h.postfix = realserver.StartPostfix(b, realserver.PostfixOptions{MainCF: []string{
		"default_transport = discard:", "relay_transport = discard:", "local_transport = discard:", "virtual_transport = discard:"}})
	h.dovecot = realserver.StartDovecot(b)
	h.qmtpDir = filepath.Join(h.work, "qmtp-sink")
	h.qmqpDir = filepath.Join(h.work, "qmqp-sink")
	for _, d := range []string{h.qmtpDir, h.qmqpDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	h.qmtpAddr = startSink(b, h.qmtpSink, "-listen", "127.0.0.1:0", "-dir", h.qmtpDir, "-max-message", "1073741824")
	h.qmqpAddr = startSink(b, h.qmqpSink, "-listen", "127.0.0.1:0", "-dir", h.qmqpDir)
	tlsDir := filepath.Join(h.pub, "smtp-tls-sink")
	if err := os.Mkdir(tlsDir, 0o755); err != nil {
		b.Fatal(err)
	}
	h.tlsAddr = startSink(b, h.tlsSink, "-listen", "127.0.0.1:0", "-dir", tlsDir)
	h.tlsCA = filepath.Join(tlsDir, "ca.pem")
	h.res.Servers = map[string]string{
		"smtp-sink":     "Postfix smtp-sink " + postfixVersion() + " (PIPELINING, no CHUNKING, no STARTTLS)",
		"Postfix":       "Postfix smtpd " + postfixVersion() + " (PIPELINING, CHUNKING, STARTTLS with OpenSSL's TLS 1.3 session tickets; the mail is discarded)",
		"smtp-tls-sink": "bench/cmd/smtp-tls-sink (relay/relaytest's server on go-smtp: PIPELINING, CHUNKING, STARTTLS with Go's TLS 1.3, Nagle off)",
		"Dovecot":       "Dovecot " + dovecotVersion() + " LMTP (PIPELINING, CHUNKING), Maildir with fsync",
		"qmtp-sink":     "bin/qmtp-sink (relay/relaytest's QMTP server, stores each package)",
		"qmqp-sink":     "bench/cmd/qmqp-sink (stores each message)",
	}
}

func postfixVersion() string {
	cache := os.Getenv("RELAYMAIL_E2E_CACHE")
	if cache == "" {
		cache = "/var/cache/relaymail-e2e"
	}
	v, _ := os.ReadFile(filepath.Join(cache, "postfix", "version"))
	return strings.TrimSpace(string(v))
}

func dovecotVersion() string {
	out, _ := exec.Command("/usr/sbin/dovecot", "--version").Output()
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// sinkDump is where smtp-sink stores what it receives.
func (h *harness) sinkDump() string { return filepath.Join(h.sink.Dir, "dump") }

// maildir is user1's Maildir at Dovecot.
func (h *harness) maildir() string {
	return filepath.Join(h.dovecot.Dir, "mail", realserver.User1, "Maildir")
}

// clearStores removes what the servers stored so far (the big messages).
func (h *harness) clearStores() {
	for _, d := range []string{h.sinkDump(), h.qmtpDir, h.qmqpDir,
		filepath.Join(h.maildir(), "new"), filepath.Join(h.maildir(), "cur")} {
		if err := emptyDir(d); err != nil {
			h.b.Logf("clearing %s: %v", d, err)
		}
	}
}

func (h *harness) cases() []*lcase {
	sinkT := target{proto: "smtp", network: "tcp", addr: h.sink.Addr}
	pfT := target{proto: "smtp", network: "tcp", addr: h.postfix.SMTPAddr}
	tlsT := pfT
	tlsT.starttls, tlsT.caFile = true, h.postfix.CACert
	goT := target{proto: "smtp", network: "tcp", addr: h.tlsAddr, starttls: true, caFile: h.tlsCA}
	dcT := target{proto: "lmtp", network: "tcp", addr: h.dovecot.LMTPAddr}
	dcU := target{proto: "lmtp", network: "unix", addr: h.dovecot.LMTPSocket}
	qmT := target{proto: "qmtp", network: "tcp", addr: h.qmtpAddr}
	qqT := target{proto: "qmqp", network: "tcp", addr: h.qmqpAddr}
	all := func(server string, t target) []entry {
		var es []entry
		for _, name := range clientOrder {
			es = append(es, entry{client: h.clients[name], label: name, server: server, target: t})
		}
		return es
	}
	lmtp := func(t target) []entry {
		return []entry{
			{client: h.clients[relaymail], label: relaymail, server: "Dovecot", target: t},
			{client: h.clients[msmtp], label: msmtp, server: "Dovecot", target: t},
		}
	}
	return []*lcase{
		{id: "smtp-sink", proto: "SMTP", title: "SMTP, smtp-sink (PIPELINING, no CHUNKING)", entries: all("smtp-sink", sinkT),
			rt: true, rtTarget: 5, rtWhy: "connect, greeting, EHLO, MAIL+RCPT+DATA, message"},
		{id: "postfix", proto: "SMTP", title: "SMTP, Postfix (PIPELINING, CHUNKING)", entries: all("Postfix", pfT),
			rt: true, rtTarget: 4, rtWhy: "connect, greeting, EHLO, MAIL+RCPT+BDAT LAST"},
		{id: "starttls", proto: "SMTP", title: "SMTP with STARTTLS, smtp-tls-sink (PIPELINING, CHUNKING, TLS 1.3, certificate verified)", entries: all("smtp-tls-sink", goT),
			rt: true, rtTarget: 7, rtWhy: "4, plus STARTTLS, the TLS 1.3 handshake and EHLO again"},
		{id: "postfix-starttls", proto: "SMTP", title: "SMTP with STARTTLS, Postfix (TLS 1.3 with a session ticket, certificate verified)", entries: all("Postfix", tlsT),
			rt: true},
		{id: "dovecot", proto: "LMTP", title: "LMTP, Dovecot over TCP (PIPELINING, CHUNKING)", entries: lmtp(dcT),
			rt: true, rtTarget: 4, rtWhy: "connect, greeting, LHLO, MAIL+RCPT+BDAT LAST"},
		{id: "dovecot-unix", proto: "LMTP", title: "LMTP, Dovecot over a unix socket", entries: lmtp(dcU)},
		{id: "qmtp", proto: "QMTP", title: "QMTP (relaymail, qmtp-sink) and QMQP (nullmailer, qmqp-sink)", entries: []entry{
			{client: h.clients[relaymail], label: relaymail, server: "qmtp-sink", target: qmT},
			{client: h.clients[nullmailer], label: "nullmailer (qmqp)", server: "qmqp-sink", target: qqT},
		}, rt: true, rtTarget: 2, rtWhy: "connect, one package and its replies"},
		{id: "deferred", proto: "SMTP", title: "relaymail -odb and -odq (return before delivery), smtp-sink", entries: []entry{
			{client: h.clients[relaymail], label: "relaymail -odb", server: "smtp-sink", target: sinkT, mode: "-odb"},
			{client: h.clients[relaymail], label: "relaymail -odq", server: "smtp-sink", target: sinkT, mode: "-odq"},
		}},
	}
}

// measured is one entry's invocation in a measurement, and its samples.
type measured struct {
	e       entry
	in      *inv
	samples []sample
	err     error
}

// alternate runs the entries' invocations in rounds, each running every
// entry once in an order shuffled anew for each round (from a fixed seed,
// so a run can be repeated), after warmup runs of each. A plain rotation
// would give every client the same predecessor in every round, and the
// predecessor matters: a peer run just before warms the CPU caches with
// the shared libraries (libc, libgnutls) that the next peer uses too. An
// entry that fails is dropped with its error.
func (h *harness) alternate(set []*measured, warmup, rounds int) {
	for _, m := range set {
		for range warmup {
			if m.err != nil {
				break
			}
			if _, err := h.run.run(m.in); err != nil {
				m.err = err
			}
		}
	}
	for range rounds {
		for _, k := range h.rng.Perm(len(set)) {
			m := set[k]
			if m.err != nil {
				continue
			}
			s, err := h.run.run(m.in)
			if err != nil {
				m.err = err
				continue
			}
			m.samples = append(m.samples, s)
		}
	}
	for _, m := range set {
		if m.err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", m.e.label, m.err)
		}
	}
}

// throughputBlock is how many messages a client sends in a row in the
// throughput measurement.
const throughputBlock = 50

// alternateBlocks is alternate for throughput: in each of rounds rounds
// every entry sends block messages in a row, one process each, the way an
// application sends a batch; the order of the entries is shuffled for each
// round. Sending one message per client in turn instead would time every
// process just after another client's, with the CPU caches full of that
// client's code: the caller latency measures that case.
func (h *harness) alternateBlocks(set []*measured, block, rounds int) {
	for range rounds {
		for _, k := range h.rng.Perm(len(set)) {
			m := set[k]
			for range block {
				if m.err != nil {
					break
				}
				s, err := h.run.run(m.in)
				if err != nil {
					m.err = err
					break
				}
				m.samples = append(m.samples, s)
			}
		}
	}
	for _, m := range set {
		if m.err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", m.e.label, m.err)
		}
	}
}

// prepared builds the invocations of entries for rcpts and msg, through
// targets mapped by via (nil: direct). Entries whose client is skipped or
// that cannot reach the target come back with their reason.
func (h *harness) prepared(entries []entry, rcpts []string, msg *msgFile, via func(target) target) []*measured {
	var ms []*measured
	for _, e := range entries {
		m := &measured{e: e}
		if e.client.skip != "" {
			m.err = fmt.Errorf("skipped: %s", e.client.skip)
		} else {
			t := e.target
			if via != nil {
				t = via(t)
			}
			m.in, m.err = h.invocation(e, t, rcpts, msg)
		}
		ms = append(ms, m)
	}
	return ms
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimPrefix(err.Error(), "skipped: ")
}

func (h *harness) latency(cases []*lcase) {
	msg := h.message("2K")
	for _, c := range cases {
		for _, n := range []int{1, 10} {
			set := h.prepared(c.entries, recipients(n), msg, nil)
			h.alternate(set, 2, latencyRuns)
			for _, m := range set {
				h.res.Latency = append(h.res.Latency, latencyResult{
					Case: c.id, Proto: c.proto, Title: c.title, Rcpts: n, Client: m.e.label, Server: m.e.server,
					Stat: summarize(m.samples), Error: errText(m.err)})
			}
		}
	}
}

// lookup finds a latency result.
func (h *harness) lookup(caseID string, rcpts int, client string) *latencyResult {
	for i := range h.res.Latency {
		l := &h.res.Latency[i]
		if l.Case == caseID && l.Rcpts == rcpts && l.Client == client {
			return l
		}
	}
	return nil
}

func (h *harness) roundTrips(cases []*lcase) {
	msg := h.message("2K")
	for _, c := range cases {
		if !c.rt {
			continue
		}
		proxies := map[string]*latency.Proxy{}
		via := func(t target) target {
			p, ok := proxies[t.addr]
			if !ok {
				var err error
				p, err = latency.Start("tcp", "127.0.0.1:0", t.network, t.addr, rtt)
				if err != nil {
					h.b.Fatal(err)
				}
				proxies[t.addr] = p
			}
			t.addr = p.Addr()
			return t
		}
		for _, n := range []int{1, 10} {
			// Each client through the proxy and directly, all in one
			// alternation: t and t_loopback see the same state of the
			// machine (a server's fsyncs vary with the disk's load).
			set := h.prepared(c.entries, recipients(n), msg, via)
			direct := h.prepared(c.entries, recipients(n), msg, nil)
			h.alternate(append(append([]*measured{}, set...), direct...), 1, rtRuns)
			for i, m := range set {
				d := direct[i]
				r := rtResult{Case: c.id, Proto: c.proto, Title: c.title, Rcpts: n, Client: m.e.label, Server: m.e.server,
					Stat: summarize(m.samples), Error: errText(m.err)}
				if m.err == nil && d.err == nil {
					r.LoopbackMS = summarize(d.samples).MedianMS
					r.RoundTrips = (r.Stat.MedianMS - r.LoopbackMS) / ms(rtt)
				}
				if m.e.client.name == relaymail && c.rtTarget > 0 {
					r.Target, r.TargetWhy = c.rtTarget, c.rtWhy
				}
				h.res.RoundTrips = append(h.res.RoundTrips, r)
			}
		}
		for _, p := range proxies {
			p.Close()
		}
	}
}

// memEntries are the clients and servers of the memory and throughput
// measurements, one group per protocol.
func (h *harness) memEntries() map[string][]entry {
	sinkT := target{proto: "smtp", network: "tcp", addr: h.sink.Addr}
	dcT := target{proto: "lmtp", network: "tcp", addr: h.dovecot.LMTPAddr}
	qmT := target{proto: "qmtp", network: "tcp", addr: h.qmtpAddr}
	qqT := target{proto: "qmqp", network: "tcp", addr: h.qmqpAddr}
	var smtp []entry
	for _, name := range clientOrder {
		smtp = append(smtp, entry{client: h.clients[name], label: name, server: "smtp-sink", target: sinkT})
	}
	return map[string][]entry{
		"SMTP": smtp,
		"LMTP": {
			{client: h.clients[relaymail], label: relaymail, server: "Dovecot", target: dcT},
			{client: h.clients[msmtp], label: msmtp, server: "Dovecot", target: dcT},
		},
		"QMTP": {
			{client: h.clients[relaymail], label: relaymail, server: "qmtp-sink", target: qmT},
			{client: h.clients[nullmailer], label: "nullmailer (qmqp)", server: "qmqp-sink", target: qqT},
		},
	}
}

var protoOrder = []string{"SMTP", "LMTP", "QMTP"}

// memSizes are the message sizes of the memory runs.
func memSizes() []string { return append([]string{"2K"}, bigSizes...) }

func (h *harness) memory() {
	if _, err := os.Stat(gnuTime); err != nil {
		h.res.MemoryNote = "GNU time (" + gnuTime + ", Debian's package time) is not installed: no RSS figures"
		return
	}
	groups := h.memEntries()
	for _, proto := range protoOrder {
		for _, e := range groups[proto] {
			h.res.Memory = append(h.res.Memory, memResult{Proto: proto, Client: e.label, Server: e.server, RSSKB: map[string]int64{}, TimeMS: map[string]float64{}})
		}
	}
	for _, size := range memSizes() {
		msg := h.message(size)
		rounds := 3
		switch {
		case msg.size < 1<<20:
			rounds = 5
		case msg.size > 100<<20:
			rounds = 1
		}
		for _, proto := range protoOrder {
			set := h.prepared(groups[proto], recipients(1), msg, nil)
			for _, m := range set {
				if m.in != nil {
					m.in.rss = true
				}
			}
			h.alternate(set, 0, rounds)
			for _, m := range set {
				for i := range h.res.Memory {
					r := &h.res.Memory[i]
					if r.Proto != proto || r.Client != m.e.label {
						continue
					}
					if m.err != nil {
						if r.Error == "" {
							r.Error = size + ": " + errText(m.err)
						}
						continue
					}
					st := summarize(m.samples)
					r.RSSKB[size] = st.MaxRSSKB
					r.TimeMS[size] = st.MedianMS
				}
			}
			h.clearStores()
		}
		if size != "2K" {
			os.Remove(msg.path)
			for _, p := range msg.nm {
				os.Remove(p)
			}
		}
	}
}

func (h *harness) throughput() {
	groups := h.memEntries()
	msg := h.message("2K")
	for _, proto := range protoOrder {
		set := h.prepared(groups[proto], recipients(1), msg, nil)
		before := h.received(proto)
		block := min(throughputBlock, throughputN)
		h.alternateBlocks(set, block, max(1, throughputN/block))
		for _, m := range set {
			r := tputResult{Proto: proto, Client: m.e.label, Server: m.e.server, Messages: throughputN, Error: errText(m.err)}
			if m.err == nil {
				var sum time.Duration
				for _, s := range m.samples {
					sum += s.wall
				}
				r.TotalS = sum.Seconds()
			}
			h.res.Throughput = append(h.res.Throughput, r)
		}
		h.res.ThroughputReceived = append(h.res.ThroughputReceived, fmt.Sprintf("%s: %d stored", proto, h.received(proto)-before))
		h.clearStores()
	}
}

// received counts what a protocol's servers stored.
func (h *harness) received(proto string) int {
	switch proto {
	case "SMTP":
		return countFiles(h.sinkDump(), "")
	case "LMTP":
		return countFiles(filepath.Join(h.maildir(), "new"), "")
	}
	return countFiles(h.qmtpDir, ".env") + countFiles(h.qmqpDir, ".env")
}

// peersFlushRuns is how often make bench measures each flush; the median
// counts. (A flush is fsync-bound: one slow disk moment is an outlier.)
const peersFlushRuns = 5

func (h *harness) flush() {
	n := throughputN
	env := flushEnv(h.emptyConf)
	rcpt := realserver.Address(realserver.User1)
	template := makeTemplate(h.b, h.sendmail, env, filepath.Join(h.work, "template"), rcpt, n)
	for _, host := range []struct {
		name, proto, url string
	}{
		{"smtp-sink (Postfix)", "SMTP", "smtp://" + h.sink.Addr + "?tls=none"},
		{"Dovecot LMTP", "LMTP", "lmtp://" + h.dovecot.LMTPAddr},
		{"qmtp-sink", "QMTP", "qmtp://" + h.qmtpAddr},
	} {
		proto := host.proto
		received := func() int { return h.received(proto) }
		e := append(env[:len(env):len(env)], "RELAYMAIL_SMARTHOST="+host.url)
		flushes, conns := measureFlush(h.b, host.name, h.sendmail, e, template, received, n, peersFlushRuns)
		r := flushResult{Server: host.name, Proto: proto, Messages: n, Connections: conns}
		for _, f := range flushes {
			r.RunsS = append(r.RunsS, f.Seconds())
		}
		r.MedianS = r.RunsS[len(r.RunsS)/2]
		h.res.Flush = append(h.res.Flush, r)
		h.clearStores()
	}
}

func (h *harness) sizeAndStartup() {
	h.res.Size = sizeResult{
		Binary: "bin/sendmail", Bytes: h.clients[relaymail].size,
		Static: h.clients[relaymail].static, Stripped: stripped(h.sendmail),
	}
	// sendmail -bp on an empty queue: with no configuration file, and with
	// a typical one and an aliases file of 200 entries (which -bp reads,
	// as every mode does), to see what reading them costs.
	dir := filepath.Join(h.work, "startup")
	os.MkdirAll(dir, 0o755)
	aliases := filepath.Join(dir, "aliases")
	var a strings.Builder
	a.WriteString("# aliases for the benchmark\npostmaster: root\nroot: admin@example.com\n")
	for i := range 198 {
		fmt.Fprintf(&a, "user%03d: person%03d@example.com, backup%03d@example.org\n", i, i, i)
	}
	os.WriteFile(aliases, []byte(a.String()), 0o644)
	conf := filepath.Join(dir, "relaymail.conf")
	os.WriteFile(conf, []byte(`# a typical configuration
smarthost smtp://127.0.0.1:25?tls=none
smarthost qmtp://127.0.0.1:209
domain example.com
hostname host.example.com
from alice
timeout 30s
queue_dir `+filepath.Join(dir, "spool-conf")+`
retry_min 2m
retry_max 2h
queue_lifetime 3d
aliases `+aliases+`
log none
`), 0o644)
	plain := &inv{argv: []string{h.sendmail, "-bp"}, env: h.relaymailEnv(filepath.Join(dir, "spool"), "smtp://127.0.0.1:25?tls=none"), stdin: os.DevNull}
	withConf := &inv{argv: []string{h.sendmail, "-bp"}, env: []string{"PATH=/usr/bin:/bin", "RELAYMAIL_CONFIG=" + conf}, stdin: os.DevNull}
	check := func(out []byte) error {
		if !bytes.Contains(out, []byte("empty")) {
			return fmt.Errorf("unexpected output: %s", clip(out, 200))
		}
		return nil
	}
	plain.check, withConf.check = check, check
	set := []*measured{
		{e: entry{label: "sendmail -bp, no configuration file"}, in: plain},
		{e: entry{label: "sendmail -bp, configuration file and 200 aliases"}, in: withConf},
	}
	h.alternate(set, 2, latencyRuns)
	for _, m := range set {
		h.res.Startup = append(h.res.Startup, startupResult{What: m.e.label, Stat: summarize(m.samples), Error: errText(m.err)})
	}
}

// profile records the system calls of one relaymail delivery and one
// nullmailer delivery (strace -c -f), and cross-checks the headline
// latencies with hyperfine when it is installed.
func (h *harness) profile() {
	msg := h.message("2K")
	sinkT := target{proto: "smtp", network: "tcp", addr: h.sink.Addr}
	if strace, err := exec.LookPath("strace"); err == nil {
		for _, name := range []string{relaymail, nullmailer, msmtp} {
			c := h.clients[name]
			if c.skip != "" {
				continue
			}
			in, err := h.invocation(entry{client: c, label: name}, sinkT, recipients(1), msg)
			if err != nil {
				continue
			}
			out := filepath.Join(h.work, "strace-"+name)
			traced := *in
			traced.argv = append([]string{strace, "-c", "-f", "-o", out}, in.argv...)
			traced.check = nil
			if _, err := h.run.run(&traced); err != nil {
				h.b.Logf("strace %s: %v", name, err)
				continue
			}
			data, _ := os.ReadFile(out)
			h.res.Syscalls = append(h.res.Syscalls, parseStrace(name, string(data)))
		}
	}
	h.hyperfine(sinkT, msg)
}

// parseStrace reads the total and the most frequent calls of strace -c.
func parseStrace(name, out string) syscallResult {
	r := syscallResult{Client: name}
	type call struct {
		name  string
		count int
	}
	var calls []call
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] == "%" || strings.HasPrefix(f[0], "-") {
			continue
		}
		last := f[len(f)-1]
		if last == "total" {
			r.Total, _ = strconv.Atoi(f[3])
			continue
		}
		// % time, seconds, usecs/call, calls, [errors], syscall
		n, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		calls = append(calls, call{last, n})
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].count > calls[j].count })
	for i, c := range calls {
		if i == 6 {
			break
		}
		r.Top = append(r.Top, fmt.Sprintf("%s %d", c.name, c.count))
	}
	return r
}

// hyperfine runs the SMTP 1-recipient case once more under hyperfine
// (sequentially, not alternating, with its shell-spawn correction), as a
// cross-check of the harness's own clock.
func (h *harness) hyperfine(t target, msg *msgFile) {
	hf, err := exec.LookPath("hyperfine")
	if err != nil {
		h.res.HyperfineNote = "hyperfine is not installed"
		return
	}
	env := map[string]string{}
	var cmds, names []string
	for _, name := range clientOrder {
		c := h.clients[name]
		if c.skip != "" {
			continue
		}
		in, err := h.invocation(entry{client: c, label: name}, t, recipients(1), msg)
		if err != nil {
			continue
		}
		if in.prepare != nil {
			if err := in.prepare(); err != nil {
				continue
			}
		}
		for _, kv := range in.env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		cmd := shellQuote(in.argv) + " < " + in.stdin
		if in.fd3 != "" {
			cmd += " 3< " + in.fd3
		}
		if name == dma {
			// Wait for dma's delivery processes, as the harness does.
			cmd += " && while [ -n \"$(ls -A " + h.dmaSpool + ")\" ]; do sleep 0.001; done"
		}
		cmds = append(cmds, cmd+" >/dev/null 2>&1")
		names = append(names, name)
	}
	out := filepath.Join(h.work, "hyperfine.json")
	args := []string{"--warmup", "3", "--runs", strconv.Itoa(latencyRuns), "--shell", "sh", "--style", "none", "--export-json", out}
	for i, c := range cmds {
		args = append(args, "--command-name", names[i], c)
	}
	cmd := exec.Command(hf, args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		h.res.HyperfineNote = fmt.Sprintf("hyperfine failed: %v: %s", err, clip(o, 300))
		return
	}
	data, err := os.ReadFile(out)
	if err != nil {
		h.res.HyperfineNote = err.Error()
		return
	}
	var hr struct {
		Results []struct {
			Command string  `json:"command"`
			Median  float64 `json:"median"`
			Mean    float64 `json:"mean"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &hr); err != nil {
		h.res.HyperfineNote = err.Error()
		return
	}
	v, _ := exec.Command(hf, "--version").Output()
	h.res.HyperfineNote = strings.TrimSpace(string(v))
	for _, r := range hr.Results {
		h.res.Hyperfine = append(h.res.Hyperfine, hyperfineResult{Client: r.Command, MedianMS: r.Median * 1000, MeanMS: r.Mean * 1000})
	}
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if shellSafe.MatchString(a) {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// cpus is for the report.
var cpus = runtime.NumCPU()
