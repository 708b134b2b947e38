package bench

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/relaymail/relaymail/bench/svgchart"
)

// results is everything BenchmarkPeers measured: results/latest.json.
type results struct {
	Command   string            `json:"command"`
	Date      string            `json:"date"`
	Machine   string            `json:"machine"`
	Defaults  bool              `json:"defaults"` // run with make bench's settings
	Settings  map[string]string `json:"settings"`
	DurationS float64           `json:"duration_s"`
	Clients   []clientInfo      `json:"clients"`
	Servers   map[string]string `json:"servers"`

	Targets            []targetResult    `json:"targets"`
	Latency            []latencyResult   `json:"latency"`
	RoundTrips         []rtResult        `json:"round_trips"`
	Memory             []memResult       `json:"memory"`
	MemoryNote         string            `json:"memory_note,omitempty"`
	Throughput         []tputResult      `json:"throughput"`
	ThroughputReceived []string          `json:"throughput_received"`
	Flush              []flushResult     `json:"flush"`
	Size               sizeResult        `json:"size"`
	Startup            []startupResult   `json:"startup"`
	Syscalls           []syscallResult   `json:"syscalls"`
	Hyperfine          []hyperfineResult `json:"hyperfine"`
	HyperfineNote      string            `json:"hyperfine_note"`
}

type clientInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Skipped string `json:"skipped,omitempty"`
	Binary  string `json:"binary"`
	Size    int64  `json:"size"`
	Static  bool   `json:"static"`
}

type targetResult struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Verdict  string `json:"verdict"` // PASS, FAIL, or n/a (not measured in this run)
}

type latencyResult struct {
	Case   string `json:"case"`
	Proto  string `json:"proto"`
	Title  string `json:"title"`
	Rcpts  int    `json:"rcpts"`
	Client string `json:"client"`
	Server string `json:"server"`
	Stat   stat   `json:"stat"`
	Error  string `json:"error,omitempty"`
}

type rtResult struct {
	Case       string  `json:"case"`
	Proto      string  `json:"proto"`
	Title      string  `json:"title"`
	Rcpts      int     `json:"rcpts"`
	Client     string  `json:"client"`
	Server     string  `json:"server"`
	Stat       stat    `json:"stat"` // at 20 ms RTT
	LoopbackMS float64 `json:"loopback_ms"`
	RoundTrips float64 `json:"round_trips"` // (t − t_loopback) / RTT
	Target     float64 `json:"target,omitempty"`
	TargetWhy  string  `json:"target_why,omitempty"`
	Error      string  `json:"error,omitempty"`
}

type memResult struct {
	Proto  string             `json:"proto"`
	Client string             `json:"client"`
	Server string             `json:"server"`
	RSSKB  map[string]int64   `json:"rss_kb"`  // by message size
	TimeMS map[string]float64 `json:"time_ms"` // by message size
	Error  string             `json:"error,omitempty"`
}

type tputResult struct {
	Proto    string  `json:"proto"`
	Client   string  `json:"client"`
	Server   string  `json:"server"`
	Messages int     `json:"messages"`
	TotalS   float64 `json:"total_s"` // the sum of the processes' wall times
	Error    string  `json:"error,omitempty"`
}

type flushResult struct {
	Server      string    `json:"server"`
	Proto       string    `json:"proto"`
	Messages    int       `json:"messages"`
	MedianS     float64   `json:"median_s"`
	RunsS       []float64 `json:"runs_s"`
	Connections int       `json:"connections"`
}

type sizeResult struct {
	Binary   string `json:"binary"`
	Bytes    int64  `json:"bytes"`
	Static   bool   `json:"static"`
	Stripped bool   `json:"stripped"`
}

type startupResult struct {
	What  string `json:"what"`
	Stat  stat   `json:"stat"`
	Error string `json:"error,omitempty"`
}

type syscallResult struct {
	Client string   `json:"client"`
	Total  int      `json:"total"`
	Top    []string `json:"top"`
}

type hyperfineResult struct {
	Client   string  `json:"client"`
	MedianMS float64 `json:"median_ms"`
	MeanMS   float64 `json:"mean_ms"`
}

func (h *harness) rt(caseID string, rcpts int, client string) *rtResult {
	for i := range h.res.RoundTrips {
		r := &h.res.RoundTrips[i]
		if r.Case == caseID && r.Rcpts == rcpts && r.Client == client {
			return r
		}
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// judge works out the targets of bench/README.md.
func (h *harness) judge() {
	add := func(name, target, measured, v string) {
		h.res.Targets = append(h.res.Targets, targetResult{name, target, measured, v})
	}
	// Caller latency over SMTP, a whole sendmail process.
	for _, n := range []int{1, 10} {
		ours := h.lookup("smtp-sink", n, relaymail)
		for _, p := range []struct {
			peer  string
			limit float64
		}{{msmtp, 0.1}, {nullmailer, 1.0}} {
			name := fmt.Sprintf("SMTP caller latency, %d rcpt, relaymail / %s", n, p.peer)
			target := fmt.Sprintf("≤ %.1f×", p.limit)
			theirs := h.lookup("smtp-sink", n, p.peer)
			if ours == nil || theirs == nil || ours.Error != "" || theirs.Error != "" {
				add(name, target, "not measured", "n/a")
				continue
			}
			ratio := ours.Stat.MedianMS / theirs.Stat.MedianMS
			add(name, target, fmt.Sprintf("%.2f× (%.2f ms / %.2f ms)", ratio, ours.Stat.MedianMS, theirs.Stat.MedianMS), verdict(ratio <= p.limit))
		}
	}
	// Round trips: a measured count rounds to the target or below.
	for _, r := range h.res.RoundTrips {
		if r.Client != relaymail || r.Target == 0 {
			continue
		}
		name := fmt.Sprintf("Round trips, %s, %d rcpt", r.Title, r.Rcpts)
		target := fmt.Sprintf("%g (%s)", r.Target, r.TargetWhy)
		if r.Error != "" || r.LoopbackMS == 0 {
			add(name, target, "not measured", "n/a")
			continue
		}
		add(name, target, fmt.Sprintf("%.2f", r.RoundTrips), verdict(r.RoundTrips < r.Target+0.5))
	}
	// Memory: the biggest message against the 2 KB one.
	big := ""
	if len(bigSizes) > 0 {
		big = bigSizes[len(bigSizes)-1]
	}
	for _, m := range h.res.Memory {
		if m.Client != relaymail {
			continue
		}
		name := fmt.Sprintf("Peak RSS flat in message size, %s", m.Proto)
		target := fmt.Sprintf("%s < 1.2 × 2K, and < 12 MB", big)
		small, okS := m.RSSKB["2K"]
		large, okL := m.RSSKB[big]
		if !okS || !okL || big == "" {
			add(name, target, "not measured", "n/a")
			continue
		}
		ratio := float64(large) / float64(small)
		add(name, target, fmt.Sprintf("%.1f MB at %s, %.1f MB at 2K (%.2f×)", mb(large), big, mb(small), ratio),
			verdict(ratio < 1.2 && large < 12*1024))
	}
	// Throughput.
	for _, f := range h.res.Flush {
		if f.Proto != "SMTP" {
			continue
		}
		name := fmt.Sprintf("Queue flush, %d messages to smtp-sink, one sendmail -q", f.Messages)
		if f.Messages != 1000 {
			add(name, "< 1 s for 1,000", fmt.Sprintf("%.3f s", f.MedianS), "n/a")
			continue
		}
		add(name, fmt.Sprintf("< 1 s (median of %d)", peersFlushRuns), fmt.Sprintf("%.3f s, %d connection(s)", f.MedianS, f.Connections), verdict(f.MedianS < 1 && f.Connections == 1))
	}
	for _, t := range h.res.Throughput {
		if t.Proto != "SMTP" || t.Client != relaymail {
			continue
		}
		name := fmt.Sprintf("%d messages to smtp-sink, one sendmail process each", t.Messages)
		if t.Error != "" {
			add(name, "< 5 s", "failed", "FAIL")
			continue
		}
		if t.Messages != 1000 {
			add(name, "< 5 s for 1,000", fmt.Sprintf("%.2f s", t.TotalS), "n/a")
			continue
		}
		add(name, "< 5 s", fmt.Sprintf("%.2f s", t.TotalS), verdict(t.TotalS < 5))
	}
	s := h.res.Size
	add("bin/sendmail is static and stripped", "static, stripped",
		fmt.Sprintf("%.1f MB, static %v, stripped %v", float64(s.Bytes)/(1<<20), s.Static, s.Stripped), verdict(s.Static && s.Stripped))
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// markdown renders results/latest.md.
func (h *harness) markdown() string {
	r := &h.res
	var w strings.Builder
	w.WriteString("# relaymail against its peers\n\n")
	fmt.Fprintf(&w, "Produced by `%s` on %s, in %.0f s.\n\n", r.Command, r.Date, r.DurationS)
	fmt.Fprintf(&w, "Machine: %s.\n\n", r.Machine)
	if !r.Defaults {
		fmt.Fprintf(&w, "**A shorter development run** (settings changed through RELAYMAIL_BENCH_*: %v); the targets that depend on the counts are not judged.\n\n", r.Settings)
	}
	w.WriteString("Clients: ")
	var cs []string
	for _, c := range r.Clients {
		s := fmt.Sprintf("%s %s", c.Name, c.Version)
		if c.Skipped != "" {
			s += " (skipped: " + c.Skipped + ")"
		}
		cs = append(cs, s)
	}
	w.WriteString(strings.Join(cs, "; ") + ". The peers are Debian 12's packages, extracted, never installed. ")
	w.WriteString("Servers, all on 127.0.0.1 or a unix socket: ")
	var ss []string
	for _, k := range []string{"smtp-sink", "Postfix", "smtp-tls-sink", "Dovecot", "qmtp-sink", "qmqp-sink"} {
		ss = append(ss, r.Servers[k])
	}
	w.WriteString(strings.Join(ss, "; ") + ".\n\n")
	fmt.Fprintf(&w, "Method: every figure is a whole process, started by the harness with the message file as its standard input, timed from fork to exit, with the peak RSS and CPU times from wait4(2). The clients run in the same run, alternating: each round runs each client once, in an order shuffled for each round (seeded, so that a run can be repeated). Latency: the median of %d rounds after 2 warm-up runs, 2 KB message (%s bytes). Round trips: the same through bench/latency, a proxy that adds %v of round-trip time (RTT/2 each way, and 1.5 RTT of connection set-up: SYN, SYN-ACK, ACK), median of %d rounds, reported as (t − t_loopback) / RTT, counting the connect. nullmailer's figures are its protocol module alone (`smtp`, `qmqp`), as nullmailer-send runs it: no intake, no queue. dma runs as `dma -D`; it forks one process per further recipient and does not wait for them, so its 10-recipient time is one recipient's delivery.\n\n",
		latencyRuns, r.Settings["message_2k_size"], rtt, rtRuns)

	w.WriteString("## Targets\n\n| target | goal | measured | |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&w, "| %s | %s | %s | **%s** |\n", t.Name, t.Target, t.Measured, t.Verdict)
	}

	w.WriteString("\n## Summary\n\n")
	w.WriteString(h.summaryTable())

	w.WriteString("\n## Caller latency\n\nA whole process, intake included for relaymail, msmtp and dma; median [min–max] in ms, and the median user+system CPU time. Ratio: relaymail's median / the client's.\n\n")
	w.WriteString("| case | client | 1 rcpt | 10 rcpt | CPU, 1 rcpt | relaymail / client, 1 / 10 rcpt |\n|---|---|---:|---:|---:|---:|\n")
	for _, c := range h.caseIDs() {
		for _, client := range h.caseClients(c) {
			one, ten := h.lookup(c, 1, client), h.lookup(c, 10, client)
			if one == nil {
				continue
			}
			if one.Error != "" {
				fmt.Fprintf(&w, "| %s | %s | %s | | | |\n", one.Title, client, "n/a: "+mdEscape(one.Error))
				continue
			}
			ratio := ""
			if !strings.HasPrefix(client, relaymail) {
				ratio = ratioText(h.lookup(c, 1, relaymail), one) + " / " + ratioText(h.lookup(c, 10, relaymail), ten)
			}
			fmt.Fprintf(&w, "| %s | %s | %s | %s | %.2f ms | %s |\n", one.Title, client,
				latText(one), latText(ten), one.Stat.UserMS+one.Stat.SysMS, ratio)
		}
	}

	fmt.Fprintf(&w, "\n## Round trips at %v RTT\n\n(t − t_loopback) / RTT, counting the connect; t and t_loopback in ms, each the median of %d rounds in which every client ran once through the proxy and once directly, all shuffled.\n\n", rtt, rtRuns)
	w.WriteString("| case | client | 1 rcpt | 10 rcpt | t at 20 ms RTT / t_loopback, 1 rcpt | relaymail's target |\n|---|---|---:|---:|---:|---|\n")
	for _, c := range h.caseIDs() {
		for _, client := range h.caseClients(c) {
			one, ten := h.rt(c, 1, client), h.rt(c, 10, client)
			if one == nil {
				continue
			}
			if one.Error != "" {
				fmt.Fprintf(&w, "| %s | %s | n/a: %s | | | |\n", one.Title, client, mdEscape(one.Error))
				continue
			}
			target := ""
			if one.Target > 0 {
				target = fmt.Sprintf("%g: %s", one.Target, one.TargetWhy)
			}
			fmt.Fprintf(&w, "| %s | %s | %s | %s | %.1f / %.1f | %s |\n", one.Title, client, rtText(one), rtText(ten), one.Stat.MedianMS, one.LoopbackMS, target)
		}
	}

	w.WriteString("\n## Memory\n\nPeak RSS of the whole process, one recipient, measured by GNU time (`/usr/bin/time -f %M`; our own wait4 cannot be used, see harness_test.go): the largest of 5 runs at 2 KB, 3 at 50 MB, 1 at 500 MB, the clients alternating. In brackets the median time, which includes GNU time's own start.\n\n")
	if r.MemoryNote != "" {
		w.WriteString(r.MemoryNote + ".\n\n")
	}
	sizes := memSizes()
	w.WriteString("| protocol | client | server |")
	for _, s := range sizes {
		fmt.Fprintf(&w, " %s |", s)
	}
	w.WriteString("\n|---|---|---|" + strings.Repeat("---:|", len(sizes)) + "\n")
	for _, m := range r.Memory {
		fmt.Fprintf(&w, "| %s | %s | %s |", m.Proto, m.Client, m.Server)
		for _, s := range sizes {
			if v, ok := m.RSSKB[s]; ok {
				fmt.Fprintf(&w, " %.1f MB (%s) |", mb(v), durText(m.TimeMS[s]))
			} else {
				w.WriteString(" n/a |")
			}
		}
		w.WriteString("\n")
		if m.Error != "" {
			fmt.Fprintf(&w, "| | | | %s |%s\n", "error: "+mdEscape(m.Error), strings.Repeat(" |", len(sizes)-1))
		}
	}

	fmt.Fprintf(&w, "\n## Throughput\n\n%d messages of 2 KB, one process each, one after the other as an application sends a batch: each client sends %d in a row, the clients taking turns in shuffled order until each has sent %d. The time is the sum of each client's process times.\n\n", throughputN, throughputBlock, throughputN)
	w.WriteString("| protocol | client | server | total | per message |\n|---|---|---|---:|---:|\n")
	for _, t := range r.Throughput {
		if t.Error != "" {
			fmt.Fprintf(&w, "| %s | %s | %s | n/a: %s | |\n", t.Proto, t.Client, t.Server, mdEscape(t.Error))
			continue
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %.2f s | %.2f ms |\n", t.Proto, t.Client, t.Server, t.TotalS, 1000*t.TotalS/float64(t.Messages))
	}
	fmt.Fprintf(&w, "\nStored by the servers: %s.\n\n", strings.Join(r.ThroughputReceived, ", "))
	fmt.Fprintf(&w, "Queue flush: the %d messages queued with `sendmail -odq`, then delivered by one `sendmail -q`; median of %d runs, each from a fresh copy of the queue, [fastest–slowest].\n\n", throughputN, peersFlushRuns)
	w.WriteString("| smarthost | flush | connections |\n|---|---:|---:|\n")
	for _, f := range r.Flush {
		fmt.Fprintf(&w, "| %s | %.3f s [%.3f–%.3f] | %d |\n", f.Server, f.MedianS, f.RunsS[0], f.RunsS[len(f.RunsS)-1], f.Connections)
	}

	w.WriteString("\n## Size and start-up\n\n")
	fmt.Fprintf(&w, "`bin/sendmail` (`make build`: `CGO_ENABLED=0`, `-trimpath -ldflags '-s -w'`): %d bytes (%.1f MB), static: %v, stripped: %v. The peers are dynamically linked: ",
		r.Size.Bytes, float64(r.Size.Bytes)/(1<<20), r.Size.Static, r.Size.Stripped)
	var ps []string
	for _, c := range r.Clients[1:] {
		if c.Size > 0 {
			what := c.Name
			if c.Name == nullmailer {
				what = "nullmailer's smtp module"
			}
			ps = append(ps, fmt.Sprintf("%s %d kB, static: %v", what, c.Size/1000, c.Static))
		}
	}
	w.WriteString(strings.Join(ps, "; ") + ", plus their shared libraries.\n\n")
	w.WriteString("| start-up on an empty queue | median | min–max | CPU |\n|---|---:|---:|---:|\n")
	for _, s := range r.Startup {
		if s.Error != "" {
			fmt.Fprintf(&w, "| %s | n/a: %s | | |\n", s.What, mdEscape(s.Error))
			continue
		}
		fmt.Fprintf(&w, "| `%s` | %.2f ms | %.2f–%.2f ms | %.2f ms |\n", s.What, s.Stat.MedianMS, s.Stat.MinMS, s.Stat.MaxMS, s.Stat.UserMS+s.Stat.SysMS)
	}

	w.WriteString("\n## Profile\n\nSystem calls of one SMTP delivery to smtp-sink, 2 KB, 1 rcpt (`strace -c -f`, all threads and children):\n\n")
	w.WriteString("| client | system calls | most frequent |\n|---|---:|---|\n")
	for _, s := range r.Syscalls {
		fmt.Fprintf(&w, "| %s | %d | %s |\n", s.Client, s.Total, strings.Join(s.Top, ", "))
	}
	fmt.Fprintf(&w, "\nCross-check with %s (SMTP, smtp-sink, 1 rcpt; `--shell sh` with its spawn correction, %d runs after 3 warm-ups, one client after the other, not alternating):", orNA(r.HyperfineNote), latencyRuns)
	for _, hf := range r.Hyperfine {
		fmt.Fprintf(&w, " %s %.2f ms;", hf.Client, hf.MedianMS)
	}
	w.WriteString("\n")
	return w.String()
}

// summaryTable is the table of the issue: one row per client and protocol.
func (h *harness) summaryTable() string {
	var w strings.Builder
	fmt.Fprintf(&w, "| client | protocol | 1 rcpt | 10 rcpt | RSS, 2 KB | RSS, %s | %d messages, one process each | round trips at %v RTT, 1/10 rcpt |\n", strings.Join(bigSizes, " | RSS, "), throughputN, rtt)
	w.WriteString("|---|---|---:|---:|---:|" + strings.Repeat("---:|", len(bigSizes)) + "---:|---:|\n")
	rows := []struct{ client, proto, caseID string }{
		{relaymail, "SMTP", "smtp-sink"},
		{msmtp, "SMTP", "smtp-sink"},
		{nullmailer, "SMTP", "smtp-sink"},
		{dma, "SMTP", "smtp-sink"},
		{relaymail, "LMTP", "dovecot"},
		{msmtp, "LMTP", "dovecot"},
		{relaymail, "QMTP", "qmtp"},
		{"nullmailer (qmqp)", "QMQP", "qmtp"},
	}
	for _, row := range rows {
		one, ten := h.lookup(row.caseID, 1, row.client), h.lookup(row.caseID, 10, row.client)
		if one == nil || one.Error != "" {
			continue
		}
		proto := row.proto
		switch row.caseID {
		case "dovecot":
			proto = "LMTP (Dovecot)"
		case "smtp-sink":
			proto = "SMTP (smtp-sink)"
		}
		memProto := row.proto
		if memProto == "QMQP" {
			memProto = "QMTP"
		}
		fmt.Fprintf(&w, "| %s | %s | %.1f ms | %s | ", row.client, proto, one.Stat.MedianMS, latShort(ten))
		var mem *memResult
		for i := range h.res.Memory {
			if m := &h.res.Memory[i]; m.Proto == memProto && m.Client == row.client {
				mem = m
			}
		}
		for _, s := range memSizes() {
			if mem != nil {
				if v, ok := mem.RSSKB[s]; ok {
					fmt.Fprintf(&w, "%.1f MB | ", mb(v))
					continue
				}
			}
			w.WriteString("n/a | ")
		}
		tput := "n/a"
		for _, t := range h.res.Throughput {
			if t.Proto == memProto && t.Client == row.client && t.Error == "" {
				tput = fmt.Sprintf("%.1f s", t.TotalS)
			}
		}
		fmt.Fprintf(&w, "%s | %s / %s |\n", tput, rtShort(h.rt(row.caseID, 1, row.client)), rtShort(h.rt(row.caseID, 10, row.client)))
	}
	if pf := h.rt("postfix", 1, relaymail); pf != nil && pf.Error == "" {
		fmt.Fprintf(&w, "\nrelaymail to Postfix, which offers CHUNKING: %s / %s round trips (1/10 rcpt); with STARTTLS: %s / %s.\n",
			rtShort(pf), rtShort(h.rt("postfix", 10, relaymail)), rtShort(h.rt("postfix-starttls", 1, relaymail)), rtShort(h.rt("postfix-starttls", 10, relaymail)))
	}
	return w.String()
}

func (h *harness) caseIDs() []string {
	var ids []string
	seen := map[string]bool{}
	for _, l := range h.res.Latency {
		if !seen[l.Case] {
			seen[l.Case] = true
			ids = append(ids, l.Case)
		}
	}
	return ids
}

func (h *harness) caseClients(caseID string) []string {
	var cs []string
	seen := map[string]bool{}
	for _, l := range h.res.Latency {
		if l.Case == caseID && !seen[l.Client] {
			seen[l.Client] = true
			cs = append(cs, l.Client)
		}
	}
	return cs
}

func latText(l *latencyResult) string {
	if l == nil || l.Error != "" {
		return "n/a"
	}
	return fmt.Sprintf("%.2f [%.2f–%.2f]", l.Stat.MedianMS, l.Stat.MinMS, l.Stat.MaxMS)
}

func latShort(l *latencyResult) string {
	if l == nil || l.Error != "" {
		return "n/a"
	}
	return fmt.Sprintf("%.1f ms", l.Stat.MedianMS)
}

func ratioText(ours, theirs *latencyResult) string {
	if ours == nil || theirs == nil || ours.Error != "" || theirs.Error != "" || theirs.Stat.MedianMS == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", ours.Stat.MedianMS/theirs.Stat.MedianMS)
}

func rtText(r *rtResult) string {
	if r == nil || r.Error != "" || r.LoopbackMS == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", r.RoundTrips)
}

func rtShort(r *rtResult) string {
	if r == nil || r.Error != "" || r.LoopbackMS == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", r.RoundTrips)
}

func durText(msv float64) string {
	if msv >= 1000 {
		return fmt.Sprintf("%.2f s", msv/1000)
	}
	return fmt.Sprintf("%.1f ms", msv)
}

func orNA(s string) string {
	if s == "" {
		return "hyperfine (not run)"
	}
	return s
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// chart renders results/latest.svg: latency, round trips and memory.
func (h *harness) chart() string {
	groups := func(value func(caseID, client string) (float64, string)) []svgchart.Group {
		var gs []svgchart.Group
		for _, c := range []string{"smtp-sink", "postfix", "starttls", "postfix-starttls", "dovecot", "qmtp"} {
			var g svgchart.Group
			for _, client := range h.caseClients(c) {
				v, label := value(c, client)
				g.Bars = append(g.Bars, svgchart.Bar{Series: client, Value: v, Label: label})
				if g.Name == "" {
					if l := h.lookup(c, 1, client); l != nil {
						g.Name = l.Title
					}
				}
			}
			if len(g.Bars) > 0 {
				gs = append(gs, g)
			}
		}
		return gs
	}
	lat := svgchart.Panel{Title: "Caller latency: one sendmail process, 2 KB to 1 recipient (median, ms; shorter is better)", Unit: "ms",
		Groups: groups(func(c, client string) (float64, string) {
			l := h.lookup(c, 1, client)
			if l == nil || l.Error != "" {
				return math.NaN(), "n/a"
			}
			return l.Stat.MedianMS, ""
		})}
	rtp := svgchart.Panel{Title: fmt.Sprintf("Round trips at %v RTT, counting the connect, 1 recipient (fewer is better)", rtt), Unit: "",
		Groups: groups(func(c, client string) (float64, string) {
			r := h.rt(c, 1, client)
			if r == nil || r.Error != "" || r.LoopbackMS == 0 {
				return math.NaN(), "n/a"
			}
			label := fmt.Sprintf("%.1f", r.RoundTrips)
			if r.Target > 0 {
				label += fmt.Sprintf(" (target %g)", r.Target)
			}
			return r.RoundTrips, label
		})}
	var memGroups []svgchart.Group
	for _, proto := range protoOrder {
		g := svgchart.Group{Name: proto + ": peak RSS by message size"}
		for _, m := range h.res.Memory {
			if m.Proto != proto {
				continue
			}
			for _, s := range memSizes() {
				v, ok := m.RSSKB[s]
				bar := svgchart.Bar{Series: m.Client + ", " + s, Value: math.NaN(), Label: "n/a"}
				if ok {
					bar.Value, bar.Label = mb(v), fmt.Sprintf("%.1f MB", mb(v))
				}
				g.Bars = append(g.Bars, bar)
			}
		}
		memGroups = append(memGroups, g)
	}
	mem := svgchart.Panel{Title: "Peak RSS of the whole process (MB; flat is the goal)", Unit: "MB", Groups: memGroups,
		Marks: []svgchart.Mark{{Value: 12, Label: "12 MB target"}}}
	colors := map[string]string{relaymail: "#d62728", msmtp: "#1f77b4", nullmailer: "#2ca02c", "nullmailer (qmqp)": "#2ca02c", dma: "#9467bd"}
	for _, m := range h.res.Memory {
		for _, s := range memSizes() {
			base := m.Client
			if strings.HasPrefix(base, nullmailer) {
				base = nullmailer
			}
			colors[m.Client+", "+s] = colors[base]
		}
	}
	c := svgchart.Chart{
		Title:    "relaymail against msmtp, nullmailer and dma, on loopback",
		Footnote: fmt.Sprintf("Produced by `%s` on %s. %s.", h.res.Command, h.res.Date, shortMachine()),
		Panels:   []svgchart.Panel{lat, rtp, mem},
		Colors:   colors,
	}
	return c.SVG()
}

func shortMachine() string {
	m := fmt.Sprintf("%d CPUs", cpus)
	if model := cpuModel(); model != "" {
		m += ", " + model
	}
	return m
}

// queueFlushReport renders results/queue-flush.md from this run, in the
// format of BenchmarkQueueFlush.
func (h *harness) queueFlushReport() string {
	var ms []measurement
	verdictText := "FAIL"
	for _, f := range h.res.Flush {
		m := measurement{name: f.Server, flushConns: f.Connections}
		for _, s := range f.RunsS {
			m.flushes = append(m.flushes, time.Duration(s*float64(time.Second)))
		}
		m.flush = time.Duration(f.MedianS * float64(time.Second))
		for _, t := range h.res.Throughput {
			if t.Proto == f.Proto && t.Client == relaymail {
				m.perProc = time.Duration(t.TotalS * float64(time.Second))
			}
		}
		if f.Proto == "SMTP" && f.MedianS < 1 && f.Connections == 1 {
			verdictText = "PASS"
		}
		ms = append(ms, m)
	}
	return render(ms, verdictText)
}
