// Package bench holds relaymail's benchmarks (bench/README.md). They run
// the built binaries (bin/sendmail, bin/qmtp-sink) against real servers on
// loopback, through `make bench`; `make check` compiles them but never
// runs them (go test runs no Benchmark without -bench).
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relaymail/e2e/realserver"
)

// flushMessages is how many messages each measurement sends.
const flushMessages = 1000

// flushRuns is how often the flush is measured; the median counts.
const flushRuns = 3

// flushTarget is the goal for a flush into smtp-sink (the target).
const flushTarget = time.Second

// resultsFile is where BenchmarkQueueFlush writes its figures.
const resultsFile = "results/queue-flush.md"

// benchCommand is the command that produces the results (make bench).
const benchCommand = "make bench` (`go test -count=1 -run '^$' -bench . -benchtime 1x ./bench/`)"

// smarthost is one server to measure against.
type smarthost struct {
	name  string
	start func(b *testing.B) (url string, received func() int)
}

// measurement is what one smarthost got.
type measurement struct {
	name    string
	skipped string

	flush      time.Duration   // the median of flushes
	flushes    []time.Duration // sorted
	flushConns int             // the most any flush used, as sendmail -v -q counts them
	perProc    time.Duration
}

// BenchmarkQueueFlush queues 1,000 messages with -odq (the smarthost down,
// as far as sendmail knows), then delivers them with one "sendmail -q" into
// each smarthost, and compares that with sending the same 1,000 messages
// with one sendmail process each. It writes results/queue-flush.md.
func BenchmarkQueueFlush(b *testing.B) {
	sendmail, err := filepath.Abs("../bin/sendmail")
	if err != nil {
		b.Fatal(err)
	}
	qmtpSink, _ := filepath.Abs("../bin/qmtp-sink")
	for _, p := range []string{sendmail, qmtpSink} {
		if _, err := os.Stat(p); err != nil {
			b.Fatalf("%v: run `make build` first (`make bench` does)", err)
		}
	}
	work := b.TempDir()
	conf := filepath.Join(work, "relaymail.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	env := flushEnv(conf)
	rcpt := realserver.Address(realserver.User1)

	template := makeTemplate(b, sendmail, env, filepath.Join(work, "template"), rcpt, flushMessages)

	hosts := []smarthost{
		{"smtp-sink (Postfix)", func(b *testing.B) (string, func() int) {
			s := realserver.StartSMTPSink(b)
			return "smtp://" + s.Addr + "?tls=none", func() int { return len(s.Messages()) }
		}},
		{"Dovecot LMTP", func(b *testing.B) (string, func() int) {
			dc := realserver.StartDovecot(b)
			return "lmtp://" + dc.LMTPAddr, func() int { return len(dc.Maildir(realserver.User1)) }
		}},
		{"qmtp-sink", func(b *testing.B) (string, func() int) {
			addr, dir := startQMTPSink(b, qmtpSink)
			return "qmtp://" + addr, func() int {
				m, _ := filepath.Glob(filepath.Join(dir, "*.env"))
				return len(m)
			}
		}},
	}
	var results []measurement
	for i, h := range hosts {
		m := measurement{name: h.name, skipped: "the server is not available (see the log)"}
		if !b.Run(fmt.Sprintf("%d-%s", i+1, strings.Fields(h.name)[0]), func(b *testing.B) {
			m = measure(b, h, sendmail, env, template, rcpt)
		}) {
			m.skipped = "failed (see the log)"
		}
		results = append(results, m)
	}

	verdict := "FAIL"
	for _, m := range results {
		if strings.HasPrefix(m.name, "smtp-sink") && m.skipped == "" && m.flush < flushTarget && m.flushConns == 1 {
			verdict = "PASS"
		}
	}
	report := render(results, verdict)
	fmt.Print("\n" + report + "\n") // b.Log of a passing parent benchmark is not shown
	if err := os.MkdirAll(filepath.Dir(resultsFile), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(resultsFile, []byte(report), 0o644); err != nil {
		b.Fatal(err)
	}
	if verdict != "PASS" {
		b.Errorf("target missed: a flush of %d messages into smtp-sink must take under %v on one connection (see %s)", flushMessages, flushTarget, resultsFile)
	}
}

// makeTemplate queues n messages to rcpt in dir with -odq, as when the
// smarthost is down: the queue every flush starts from, copied. -odq never
// connects, so the smarthost named here is never used.
func makeTemplate(b *testing.B, sendmail string, env []string, dir, rcpt string, n int) string {
	queueEnv := append(env[:len(env):len(env)], "RELAYMAIL_QUEUE_DIR="+dir, "RELAYMAIL_SMARTHOST=qmtp://127.0.0.1:9")
	if err := parallel(n, 2*runtime.NumCPU(), func(i int) error {
		return runSendmail(sendmail, queueEnv, []string{"-i", "-odq", rcpt}, message(i))
	}); err != nil {
		b.Fatal(err)
	}
	if got, err := queued(sendmail, queueEnv); err != nil || got != n {
		b.Fatalf("the template queue has %d messages (%v), want %d", got, err, n)
	}
	return dir
}

// measure runs both ways of sending against one smarthost.
func measure(b *testing.B, h smarthost, sendmail string, env []string, template, rcpt string) measurement {
	m := measurement{name: h.name}
	url, received := h.start(b)
	env = append(env[:len(env):len(env)], "RELAYMAIL_SMARTHOST="+url)
	m.flushes, m.flushConns = measureFlush(b, h.name, sendmail, env, template, received, flushMessages, flushRuns)
	m.flush = m.flushes[len(m.flushes)/2]

	// 2. One sendmail process per message, one after the other, as a web
	// application sends them; the default mode (-odi) with a queue.
	penv := append(env[:len(env):len(env)], "RELAYMAIL_QUEUE_DIR="+filepath.Join(b.TempDir(), "spool"))
	before := received()
	start := time.Now()
	for i := range flushMessages {
		if err := runSendmail(sendmail, penv, []string{"-i", rcpt}, message(i)); err != nil {
			b.Fatal(err)
		}
	}
	m.perProc = time.Since(start)
	if got := waitCount(received, before+flushMessages); got != before+flushMessages {
		b.Fatalf("%s received %d messages from the single processes, want %d", h.name, got-before, flushMessages)
	}
	b.ReportMetric(m.flush.Seconds(), "s/flush")
	b.ReportMetric(m.perProc.Seconds(), "s/1000-processes")
	return m
}

// measureFlush runs one queue run ("sendmail -v -q", env naming the
// smarthost) runs times over, each from a fresh copy of template (n
// messages), and checks that all were delivered. It returns the times,
// sorted, and the most connections a run used.
func measureFlush(b *testing.B, name, sendmail string, env []string, template string, received func() int, n, runs int) (flushes []time.Duration, conns int) {
	stats := regexp.MustCompile(`queue run: (\d+) messages, (\d+) recipients delivered, (\d+) deferred, (\d+) failed, (\d+) connections`)
	for range runs {
		spool := filepath.Join(b.TempDir(), "spool")
		if err := copyDir(template, spool); err != nil {
			b.Fatal(err)
		}
		qenv := append(env[:len(env):len(env)], "RELAYMAIL_QUEUE_DIR="+spool)
		before := received()
		start := time.Now()
		cmd := exec.Command(sendmail, "-v", "-q")
		cmd.Env = qenv
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		took := time.Since(start)
		if err != nil {
			b.Fatalf("sendmail -v -q: %v: %s", err, stderr.String())
		}
		st := stats.FindStringSubmatch(stderr.String())
		if st == nil || st[2] != strconv.Itoa(n) {
			b.Fatalf("the queue run did not deliver %d messages: %s", n, stderr.String())
		}
		c, _ := strconv.Atoi(st[5])
		conns = max(conns, c)
		flushes = append(flushes, took)
		if left, err := queued(sendmail, qenv); err != nil || left != 0 {
			b.Fatalf("%d messages still queued after the run (%v)", left, err)
		}
		if got := waitCount(received, before+n); got != before+n {
			b.Fatalf("%s received %d messages from the queue run, want %d", name, got-before, n)
		}
	}
	slices.Sort(flushes)
	return flushes, conns
}

// message is message i: a complete header and about 1.6 kB of text.
func message(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Alice <alice@example.com>\nTo: User One <user1@example.com>\nSubject: benchmark message %d\nMessage-ID: <bench-%06d@example.com>\nDate: Mon, 01 Jan 2024 00:00:00 +0000\nContent-Type: text/plain; charset=us-ascii\n\n", i, i)
	for l := range 20 {
		fmt.Fprintf(&b, "Line %02d of message %06d: Lorem ipsum dolor sit amet, consectetur adipiscing.\n", l+1, i)
	}
	return b.Bytes()
}

func runSendmail(bin string, env, args []string, stdin []byte) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("sendmail %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// queued counts the messages mailq --json lists.
func queued(bin string, env []string) (int, error) {
	cmd := exec.Command(bin, "--json", "-bp")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return -1, err
	}
	var l struct {
		Count int `json:"count"`
	}
	err = json.Unmarshal(out, &l)
	return l.Count, err
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// waitCount waits, bounded, until received reports want: a server may
// store a message just after it answered for it.
func waitCount(received func() int, want int) int {
	got := received()
	for deadline := time.Now().Add(10 * time.Second); got < want && time.Now().Before(deadline); got = received() {
		time.Sleep(20 * time.Millisecond)
	}
	return got
}

// copyDir copies a spool (directories and regular files).
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	})
}

// startQMTPSink runs bin/qmtp-sink on a free port, storing into a
// directory of its own, and stops it by PID at cleanup.
func startQMTPSink(b *testing.B, bin string) (addr, dir string) {
	dir = b.TempDir()
	return startSink(b, bin, "-listen", "127.0.0.1:0", "-dir", dir), dir
}

// render writes the results as Markdown.
func render(results []measurement, verdict string) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# Queue flush: %d messages\n\n", flushMessages)
	fmt.Fprintf(&w, "Produced by `%s` on %s.\n\n", benchCommand, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&w, "Machine: %s.\n\n", machine())
	fmt.Fprintf(&w, "Each message is about %d bytes, to one recipient. **Flush**: the %d messages were queued with `sendmail -odq`, then one `sendmail -q` delivers them: the median of %d runs, each from a fresh copy of the queue, with the fastest and the slowest in brackets. **One process per message**: the same %d messages, each sent by its own `sendmail` (default mode -odi, queue on), one after the other. Connections: as `sendmail -v -q` counts them; one per process otherwise.\n\n", len(message(0)), flushMessages, flushRuns, flushMessages)
	w.WriteString("| smarthost | flush: one `sendmail -q` | connections | one process per message | connections | flush speed-up |\n")
	w.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, m := range results {
		if m.skipped != "" {
			fmt.Fprintf(&w, "| %s | skipped: %s | | | | |\n", m.name, m.skipped)
			continue
		}
		fmt.Fprintf(&w, "| %s | %.3f s [%.3f–%.3f] (%.0f msg/s) | %d | %.2f s (%.0f msg/s) | %d | %.1f× |\n",
			m.name,
			m.flush.Seconds(), m.flushes[0].Seconds(), m.flushes[len(m.flushes)-1].Seconds(), float64(flushMessages)/m.flush.Seconds(), m.flushConns,
			m.perProc.Seconds(), float64(flushMessages)/m.perProc.Seconds(), flushMessages,
			m.perProc.Seconds()/m.flush.Seconds())
	}
	fmt.Fprintf(&w, "\nTarget: a flush of %d messages into smtp-sink takes under %v on one connection (median of %d runs): **%s**", flushMessages, flushTarget, flushRuns, verdict)
	for _, m := range results {
		if strings.HasPrefix(m.name, "smtp-sink") && m.skipped == "" {
			fmt.Fprintf(&w, " (%.3f s, %d connection", m.flush.Seconds(), m.flushConns)
			if m.flushConns != 1 {
				w.WriteString("s")
			}
			w.WriteString(")")
		}
	}
	w.WriteString(".\n")
	return w.String()
}

// machine describes where the benchmark ran: CPUs, kernel, Go, and the file
// system of the spool (its fsyncs are part of every delivery).
func machine() string {
	parts := []string{fmt.Sprintf("nproc %d", runtime.NumCPU())}
	if cpu := cpuModel(); cpu != "" {
		parts = append(parts, cpu)
	}
	if out, err := exec.Command("uname", "-srvmo").Output(); err == nil {
		parts = append(parts, "`"+strings.TrimSpace(string(out))+"`")
	}
	parts = append(parts, runtime.Version())
	if avg, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other work on the machine shows in the figures.
		parts = append(parts, "load average "+strings.Join(strings.Fields(string(avg))[:3], " ")+" when the benchmark ended")
	}
	parts = append(parts, "spool on "+fsType(os.TempDir())+" ("+os.TempDir()+")")
	return strings.Join(parts, ", ")
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "an unknown file system"
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x794C7630: "overlayfs", 0x2FC12FC1: "zfs"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("file system 0x%X", st.Type)
}
