package inject

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func baseOptions() Options {
	return Options{User: "alice", Domain: "example.com", Hostname: "host.example.com",
		Now: func() time.Time { return fixedNow }}
}

func runIntake(t *testing.T, in string, o Options) (*Submission, string, error) {
	t.Helper()
	if o.SpoolDir == "" {
		o.SpoolDir = t.TempDir()
	}
	sub, err := Intake(strings.NewReader(in), o)
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(func() { sub.Close() })
	out, err := io.ReadAll(sub.Message.Reader())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(out)) != sub.Message.Size {
		t.Fatalf("size %d, read %d", sub.Message.Size, len(out))
	}
	return sub, string(out), nil
}

// stripGenerated removes the fields intake adds, so tests can compare the
// rest byte for byte.
func stripGenerated(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "Date: Sat, 21 Nov 2026") || strings.HasPrefix(l, "Message-ID: <20261121120000.") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

func TestIntakeMessage(t *testing.T) {
	cases := []struct {
		name string
		in   string
		opt  func(*Options)
		want string // after stripGenerated
	}{
		{name: "crlf", in: "From: a@x\r\nSubject: s\r\n\r\nbody\r\n", want: "From: a@x\nSubject: s\n\nbody\n"},
		{name: "mixed endings", in: "From: a@x\nSubject: s\r\n\r\nl1\rl2\r\r\nl3\n", want: "From: a@x\nSubject: s\n\nl1\nl2\nl3\n"},
		{name: "lone CRs count", in: "From: a@x\n\nl1\r\rl3", want: "From: a@x\n\nl1\n\nl3\n"},
		{name: "no trailing newline", in: "From: a@x\n\nlast", want: "From: a@x\n\nlast\n"},
		{name: "header only, no blank line", in: "From: a@x\nSubject: s", want: "From: a@x\nSubject: s\n\n"},
		{name: "empty input", in: "", want: "From: alice@example.com\n\n"},
		{name: "lone dot ends input", in: "From: a@x\n\nl1\n.\nafter\n", want: "From: a@x\n\nl1\n"},
		{name: "lone dot at EOF", in: "From: a@x\n\nl1\n.", want: "From: a@x\n\nl1\n"},
		{name: "lone dot in header", in: "From: a@x\n.\nSubject: s\n", want: "From: a@x\n\n"},
		{name: "dots kept with -i", in: "From: a@x\n\nl1\n.\n..x\n", opt: func(o *Options) { o.IgnoreDots = true }, want: "From: a@x\n\nl1\n.\n..x\n"},
		{name: "double dot unstuffed", in: "From: a@x\n\n..x\n...\n.y\n", want: "From: a@x\n\n.x\n..\n.y\n"},
		{name: "dot with CRLF ends", in: "From: a@x\r\n\r\nl1\r\n.\r\nafter\r\n", want: "From: a@x\n\nl1\n"},
		{name: "mbox From dropped", in: "From me@x Mon Jan  1 00:00:00 2024\n>From old\nFrom: a@x\n\nb\n", want: "From: a@x\n\nb\n"},
		{name: "invalid line starts body", in: "From: a@x\nthis is body\nmore\n", want: "From: a@x\n\nthis is body\nmore\n"},
		{name: "8-bit name starts body", in: "From: a@x\nX-Caf\xe9: v\n\nb\n", want: "From: a@x\n\nX-Caf\xe9: v\n\nb\n"},
		{name: "body only", in: "just a body line\nsecond\n", want: "From: alice@example.com\n\njust a body line\nsecond\n"},
		{name: "leading continuation is body", in: " indented\nx\n", want: "From: alice@example.com\n\n indented\nx\n"},
		{name: "space before colon kept", in: "Subject : x\nFrom: a@x\n\nb\n", want: "Subject : x\nFrom: a@x\n\nb\n"},
		{name: "folding and odd case kept", in: "subject:   two  spaces\t\nTO: a@x,\n\t  b@y\nFrom: a@x\n\nb\n", want: "subject:   two  spaces\t\nTO: a@x,\n\t  b@y\nFrom: a@x\n\nb\n"},
		{name: "8-bit header and body", in: "From: a@x\nX-Utf8: Grüße\nX-Latin1: caf\xe9\n\ncaf\xe9\n", want: "From: a@x\nX-Utf8: Grüße\nX-Latin1: caf\xe9\n\ncaf\xe9\n"},
		{name: "bcc and friends removed", in: "From: a@x\nBcc: secret@z\nTo: b@y\nResent-Bcc: s2@z\nReturn-Path: <r@x>\nContent-Length: 12\n\nb\n", want: "From: a@x\nTo: b@y\nResent-Date: Sat, 21 Nov 2026 12:00:00 +0000\nResent-Message-ID: <>\nResent-From: alice@example.com\n\nb\n"},
		{name: "bare names qualified", in: "From: root (Cron Daemon)\nTo: root, Joe <joe>\nCc: x@y\nReply-To: webmaster\nSubject: root\n\nroot\n", want: "From: root@example.com (Cron Daemon)\nTo: root@example.com, Joe <joe@example.com>\nCc: x@y\nReply-To: webmaster@example.com\nSubject: root\n\nroot\n"},
		{name: "group untouched", in: "From: a@x\nTo: undisclosed-recipients:;\n\nb\n", want: "From: a@x\nTo: undisclosed-recipients:;\n\nb\n"},
		{name: "encoded words untouched", in: "From: =?ISO-8859-1?Q?Andr=E9?= <andre>\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nb\n", want: "From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nb\n"},
		{name: "unparsable field left alone", in: "From: a@x\nTo: Joe User joe\n\nb\n", want: "From: a@x\nTo: Joe User joe\n\nb\n"},
		{name: "from with full name", in: "Subject: s\n\nb\n", opt: func(o *Options) { o.FullName = "Cron Daemon" }, want: "Subject: s\nFrom: Cron Daemon <alice@example.com>\n\nb\n"},
		{name: "from with quoted name", in: "Subject: s\n\nb\n", opt: func(o *Options) { o.FullName = "Smith, John" }, want: "Subject: s\nFrom: \"Smith, John\" <alice@example.com>\n\nb\n"},
		{name: "from with utf-8 name", in: "Subject: s\n\nb\n", opt: func(o *Options) { o.FullName = "Jörg" }, want: "Subject: s\nFrom: =?utf-8?q?J=C3=B6rg?= <alice@example.com>\n\nb\n"},
		{name: "from uses -f", in: "Subject: s\n\nb\n", opt: func(o *Options) { o.Sender, o.SenderSet = "bounce@x.org", true }, want: "Subject: s\nFrom: bounce@x.org\n\nb\n"},
		{name: "from for null sender", in: "Subject: s\n\nb\n", opt: func(o *Options) { o.Sender, o.SenderSet = "<>", true }, want: "Subject: s\nFrom: alice@example.com\n\nb\n"},
		{name: "date and message-id kept", in: "Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <x@y>\nFrom: a@x\n\nb\n", want: "Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <x@y>\nFrom: a@x\n\nb\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions()
			o.Recipients = []string{"rcpt@example.org"}
			if c.opt != nil {
				c.opt(&o)
			}
			sub, out, err := runIntake(t, c.in, o)
			if err != nil {
				t.Fatal(err)
			}
			got := stripGenerated(out)
			got = regexpResentID(got)
			if got != c.want {
				t.Errorf("got\n%q\nwant\n%q", got, c.want)
			}
			if strings.Contains(out, "\r") {
				t.Error("output contains CR")
			}
			if sub.MessageID == "" {
				t.Error("no Message-ID recorded")
			}
		})
	}
}

func regexpResentID(s string) string {
	const p = "Resent-Message-ID: <"
	i := strings.Index(s, p)
	if i < 0 {
		return s
	}
	j := strings.Index(s[i:], ">")
	return s[:i+len(p)] + s[i+j:]
}

func TestIntakeGeneratedFields(t *testing.T) {
	o := baseOptions()
	o.Recipients = []string{"r@x"}
	sub, out, err := runIntake(t, "Subject: s\n\nb\n", o)
	if err != nil {
		t.Fatal(err)
	}
	want := "Subject: s\nDate: Sat, 21 Nov 2026 12:00:00 +0000\nMessage-ID: " + sub.MessageID + "\nFrom: alice@example.com\n\nb\n"
	if out != want {
		t.Errorf("got %q\nwant %q", out, want)
	}
	if !strings.HasPrefix(sub.MessageID, "<20261121120000.") || !strings.HasSuffix(sub.MessageID, "@host.example.com>") {
		t.Errorf("Message-ID %q", sub.MessageID)
	}
}

func TestIntakeEnvelope(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		opt    func(*Options)
		sender string
		rcpts  []string
		utf8   bool
	}{
		{name: "args", opt: func(o *Options) { o.Recipients = []string{"a@x", "b@y"} }, sender: "alice@example.com", rcpts: []string{"a@x", "b@y"}},
		{name: "cron list", opt: func(o *Options) { o.Recipients = []string{"a@x,", "b@y"} }, sender: "alice@example.com", rcpts: []string{"a@x", "b@y"}},
		{name: "comma list in one arg", opt: func(o *Options) { o.Recipients = []string{"a@x,b@y"} }, sender: "alice@example.com", rcpts: []string{"a@x", "b@y"}},
		{name: "bare root", opt: func(o *Options) { o.Recipients = []string{"root"} }, sender: "alice@example.com", rcpts: []string{"root@example.com"}},
		{name: "name-addr arg", opt: func(o *Options) { o.Recipients = []string{"Joe <joe@x>"} }, sender: "alice@example.com", rcpts: []string{"joe@x"}},
		{name: "duplicates merged", opt: func(o *Options) { o.Recipients = []string{"a@x", "a@X", "A@x"} }, sender: "alice@example.com", rcpts: []string{"a@x", "A@x"}},
		{name: "-t union", in: "To: b@y, a@x\nCc: c@z\nBcc: d@w\n\nb\n", opt: func(o *Options) { o.Extract = true; o.Recipients = []string{"a@x"} }, sender: "alice@example.com", rcpts: []string{"a@x", "b@y", "c@z", "d@w"}},
		{name: "-t resent only", in: "To: a@x\nResent-To: r@x\nResent-Bcc: rb@x\n\nb\n", opt: func(o *Options) { o.Extract = true }, sender: "alice@example.com", rcpts: []string{"r@x", "rb@x"}},
		{name: "-t resent-from alone does not switch", in: "To: a@x\nResent-From: r@x\n\nb\n", opt: func(o *Options) { o.Extract = true }, sender: "alice@example.com", rcpts: []string{"a@x"}},
		{name: "-t repeated To fields", in: "To: a@x\nTo: b@y\n\nb\n", opt: func(o *Options) { o.Extract = true }, sender: "alice@example.com", rcpts: []string{"a@x", "b@y"}},
		{name: "-t bare names", in: "To: root\n\nb\n", opt: func(o *Options) { o.Extract = true }, sender: "alice@example.com", rcpts: []string{"root@example.com"}},
		{name: "-t group", in: "To: undisclosed-recipients:;\nBcc: hidden@x\n\nb\n", opt: func(o *Options) { o.Extract = true }, sender: "alice@example.com", rcpts: []string{"hidden@x"}},
		{name: "-f", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.Sender, o.SenderSet = "bounce@x.org", true }, sender: "bounce@x.org", rcpts: []string{"a@x"}},
		{name: "-f bare", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.Sender, o.SenderSet = "fail2ban", true }, sender: "fail2ban@example.com", rcpts: []string{"a@x"}},
		{name: "-f angle", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.Sender, o.SenderSet = "<b@x>", true }, sender: "b@x", rcpts: []string{"a@x"}},
		{name: "-f empty", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.Sender, o.SenderSet = "", true }, sender: "", rcpts: []string{"a@x"}},
		{name: "-f <>", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.Sender, o.SenderSet = "<>", true }, sender: "", rcpts: []string{"a@x"}},
		{name: "configured from", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.DefaultSender = "noreply@example.net" }, sender: "noreply@example.net", rcpts: []string{"a@x"}},
		{name: "-f wins over a bad fallback", opt: func(o *Options) {
			o.Recipients = []string{"a@x"}
			o.User = "bad user"
			o.Sender, o.SenderSet = "b@x", true
		}, sender: "b@x", rcpts: []string{"a@x"}},
		{name: "utf8 address", opt: func(o *Options) { o.Recipients = []string{"jörg@bücher.example"} }, sender: "alice@example.com", rcpts: []string{"jörg@bücher.example"}, utf8: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions()
			c.opt(&o)
			in := c.in
			if in == "" {
				in = "Subject: s\n\nb\n"
			}
			sub, out, err := runIntake(t, in, o)
			if err != nil {
				t.Fatal(err)
			}
			if sub.Envelope.Sender != c.sender || !reflect.DeepEqual(sub.Envelope.Recipients, c.rcpts) {
				t.Errorf("envelope %q %q, want %q %q", sub.Envelope.Sender, sub.Envelope.Recipients, c.sender, c.rcpts)
			}
			if sub.Envelope.SMTPUTF8 != c.utf8 {
				t.Errorf("SMTPUTF8 = %v", sub.Envelope.SMTPUTF8)
			}
			if strings.Contains(strings.ToLower(out), "\nbcc:") || strings.HasPrefix(strings.ToLower(out), "bcc:") {
				t.Errorf("Bcc leaked: %q", out)
			}
		})
	}
}

func TestIntakeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		opt  func(*Options)
		kind Kind
		msg  string
	}{
		{name: "no recipients", opt: func(o *Options) {}, kind: KindUsage, msg: "recipient addresses must be specified on the command line or via the -t option"},
		{name: "no header recipients", opt: func(o *Options) { o.Extract = true }, kind: KindUsage, msg: "no recipient addresses found in message header"},
		{name: "CRLF injection in rcpt", opt: func(o *Options) { o.Recipients = []string{"a@b>\r\nRCPT TO:<x>"} }, kind: KindData, msg: "control character 0x0d"},
		{name: "angle in rcpt", opt: func(o *Options) { o.Recipients = []string{"a@b>x"} }, kind: KindData, msg: `recipient "a@b>x" is not a valid address list`},
		{name: "NUL in rcpt", opt: func(o *Options) { o.Recipients = []string{"a\x00@b"} }, kind: KindData, msg: "0x00"},
		{name: "injection in -f", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.Sender, o.SenderSet = "a@b>\r\nRCPT TO:<x>", true }, kind: KindData, msg: "sender"},
		{name: "-X smuggled in -f", opt: func(o *Options) {
			o.Recipients = []string{"a@x"}
			o.Sender, o.SenderSet = "a@b -X/var/www/shell.php", true
		}, kind: KindData, msg: "not a valid address"},
		{name: "bad login name without -f", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.User = "bad user" }, kind: KindData, msg: "the login name"},
		{name: "two senders", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.Sender, o.SenderSet = "a@x, b@y", true }, kind: KindData, msg: "exactly one address"},
		{name: "long local part", opt: func(o *Options) { o.Recipients = []string{strings.Repeat("l", 65) + "@x"} }, kind: KindData, msg: "64 octets"},
		{name: "bad -t header", in: "To: Joe User joe@x\n\nb\n", opt: func(o *Options) { o.Extract = true }, kind: KindData, msg: "To: header"},
		{name: "huge header", in: "Subject: " + strings.Repeat("x", 2<<20) + "\n\nb\n", opt: func(o *Options) { o.Recipients = []string{"a@x"} }, kind: KindData, msg: "larger than 1048576 bytes"},
		{name: "many header lines", in: strings.Repeat("X-A: "+strings.Repeat("y", 1000)+"\n", 1100) + "\nb\n", opt: func(o *Options) { o.Recipients = []string{"a@x"} }, kind: KindData, msg: "larger than"},
		{name: "message too large", in: "Subject: s\n\n" + strings.Repeat("x", 5000) + "\n", opt: func(o *Options) { o.Recipients = []string{"a@x"}; o.MaxMessageBytes = 4096 }, kind: KindData, msg: "larger than 4096 bytes"},
		{name: "control char in header rcpt", in: "To: a\x01b@x\n\nb\n", opt: func(o *Options) { o.Extract = true }, kind: KindData, msg: "control character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions()
			c.opt(&o)
			in := c.in
			if in == "" {
				in = "Subject: s\n\nb\n"
			}
			_, _, err := runIntake(t, in, o)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ie.Kind != c.kind || !strings.Contains(ie.Error(), c.msg) {
				t.Errorf("err = kind %d %q, want kind %d containing %q", ie.Kind, ie.Error(), c.kind, c.msg)
			}
		})
	}
}

// A huge first body line with no header must stream, not count as header.
func TestIntakeHugeFirstBodyLine(t *testing.T) {
	o := baseOptions()
	o.Recipients = []string{"a@x"}
	line := strings.Repeat("z", 3<<20)
	sub, out, err := runIntake(t, line+"\nend\n", o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out, "\n\n"+line+"\nend\n") || !sub.Message.LongLines {
		t.Errorf("body not kept whole (len %d), LongLines=%v", len(out), sub.Message.LongLines)
	}
}

func TestIntakeFlags(t *testing.T) {
	o := baseOptions()
	o.Recipients = []string{"a@x"}
	sub, _, err := runIntake(t, "Subject: s\n\nplain\n", o)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Message.EightBit || sub.Message.LongLines {
		t.Errorf("plain message flagged: %+v", sub.Message)
	}
	sub, _, err = runIntake(t, "Subject: s\n\ncaf\xc3\xa9 "+strings.Repeat("x", 998)+"\n", o)
	if err != nil {
		t.Fatal(err)
	}
	if !sub.Message.EightBit || !sub.Message.LongLines {
		t.Errorf("8-bit long message not flagged: %+v", sub.Message)
	}
}

// patternReader produces n bytes of CRLF text without allocating them.
type patternReader struct {
	n    int64
	line []byte
	off  int
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	total := 0
	for total < len(b) && p.n > 0 {
		c := copy(b[total:], p.line[p.off:])
		if int64(c) > p.n {
			c = int(p.n)
		}
		total += c
		p.n -= int64(c)
		p.off = (p.off + c) % len(p.line)
	}
	return total, nil
}

// Memory stays flat for any message size: 200 MB must not allocate anything
// near its size. The assertion is on bytes allocated, not on time.
func TestIntakeFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB intake in -short mode")
	}
	const size = 200 << 20
	o := baseOptions()
	o.Recipients = []string{"a@x"}
	o.SpoolDir = t.TempDir()
	header := "From: a@x\r\nSubject: big\r\n\r\n"
	body := &patternReader{n: size, line: []byte("0123456789 The quick brown fox jumps over the lazy dog.\r\n")}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sub, err := Intake(io.MultiReader(strings.NewReader(header), body), o)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if !sub.Spilled {
		t.Error("a 200 MB message was held in memory")
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 2<<20 {
		t.Errorf("intake of a %d-byte message allocated %d bytes; want under 2 MiB", size, alloc)
	}
	// CRLF became LF: the spooled size is the input minus one byte per line.
	lines := int64(size) / int64(len(body.line))
	if sub.Message.Size < size-lines-1 || sub.Message.Size > size {
		t.Errorf("spooled %d bytes", sub.Message.Size)
	}
	t.Logf("200 MB message: %d bytes allocated, %d bytes spooled", alloc, sub.Message.Size)
}

func TestNormalizerSmallReads(t *testing.T) {
	in := "a\r\nb\rc\r\r\nd\r\re\r"
	want := "a\nb\nc\nd\n\ne\n"
	for size := 1; size < 8; size++ {
		n := newNormalizer(&oneByteReader{s: in}, size)
		got, err := io.ReadAll(n)
		if err != nil || string(got) != want {
			t.Errorf("buf %d: got %q, %v; want %q", size, got, err, want)
		}
	}
}

type oneByteReader struct{ s string }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(o.s) == 0 {
		return 0, io.EOF
	}
	p[0] = o.s[0]
	o.s = o.s[1:]
	return 1, nil
}

func FuzzSplitHeader(f *testing.F) {
	for _, s := range []string{
		"From: a@x\nTo: root\n\nbody\n", "From me Mon\nSubject: x\nbody\n", "x\n", "Subject: x\n .\n..\n.\nafter",
		"To: a@x,\n\tb@y\r\nBcc: c@z\r\n\r\n", " lead\n", ":\n", "A: \xff\n\n", "Resent-To: r\nTo: t\n",
	} {
		f.Add([]byte(s), false, true)
	}
	// One directory for every run: spool files are unlinked at once, so
	// nothing accumulates, and a TempDir per run would dominate the cost.
	spool := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte, ignoreDots, extract bool) {
		o := baseOptions()
		o.Recipients = []string{"a@x"}
		o.IgnoreDots, o.Extract = ignoreDots, extract
		o.SpoolDir = spool
		o.MaxHeaderBytes = 4096
		if len(in)%2 == 1 {
			// Half of the inputs move to a file somewhere inside the
			// message, so that both ways of holding it are fuzzed.
			o.MaxMemory = len(in)/3 + 1
		}
		sub, err := Intake(bytes.NewReader(in), o)
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		defer sub.Close()
		out, _ := io.ReadAll(sub.Message.Reader())
		if bytes.IndexByte(out, '\r') >= 0 {
			t.Fatalf("CR in output %q", out)
		}
		if len(out) == 0 || out[len(out)-1] != '\n' {
			t.Fatalf("output not LF-terminated: %q", out)
		}
		hdr, _, found := bytes.Cut(out, []byte("\n\n"))
		if !found && !bytes.HasPrefix(out, []byte("\n")) {
			t.Fatalf("no header/body separator in %q", out)
		}
		for _, l := range bytes.Split(hdr, []byte("\n")) {
			ll := bytes.ToLower(l)
			if bytes.HasPrefix(ll, []byte("bcc:")) || bytes.HasPrefix(ll, []byte("resent-bcc:")) || bytes.HasPrefix(ll, []byte("return-path:")) {
				t.Fatalf("dropped field survived: %q", l)
			}
		}
		for _, r := range sub.Envelope.Recipients {
			if strings.ContainsAny(r, "<>\r\n\x00") {
				t.Fatalf("bad recipient %q", r)
			}
		}
	})
}

func TestEnvelopeWithoutMessage(t *testing.T) {
	o := baseOptions()
	o.Recipients = []string{"root, Joe <joe@x>", "a@x,"}
	env, err := Envelope(o)
	if err != nil {
		t.Fatal(err)
	}
	if env.Sender != "alice@example.com" || !reflect.DeepEqual(env.Recipients, []string{"root@example.com", "joe@x", "a@x"}) {
		t.Errorf("envelope %+v", env)
	}
	o.Recipients = []string{"a@b>\r\nx"}
	if _, err := Envelope(o); err == nil {
		t.Error("injection accepted")
	}
}

// A message of at most MaxMemory bytes stays in memory and costs no file;
// a larger one goes to the file Spill provides, whole (what was held in
// memory first), and the file is left open for its owner.
func TestIntakeSpill(t *testing.T) {
	const msg = "Subject: s\r\n\r\nbody\r\n"
	const spooled = "Subject: s\n"
	o := baseOptions()
	o.Recipients = []string{"a@x"}
	whole, err := Intake(strings.NewReader(msg), o)
	if err != nil {
		t.Fatal(err)
	}
	size := int(whole.Message.Size) // with the fields intake adds
	for _, c := range []struct {
		name      string
		maxMemory int
		spilled   bool
	}{
		{"held in memory", 0, false},
		{"exactly the limit", size, false},
		{"one byte over", size - 1, true},
		{"spilled in the header", 4, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			o := baseOptions()
			o.Recipients = []string{"a@x"}
			o.MaxMemory = c.maxMemory
			calls := 0
			o.Spill = func() (*os.File, error) { calls++; return f, nil }
			sub, err := Intake(strings.NewReader(msg), o)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if sub.Spilled != c.spilled || calls != map[bool]int{false: 0, true: 1}[c.spilled] {
				t.Fatalf("spilled %v after %d Spill calls, want %v", sub.Spilled, calls, c.spilled)
			}
			data, err := io.ReadAll(sub.Message.Reader())
			if err != nil || !strings.HasPrefix(string(data), spooled) || !strings.HasSuffix(string(data), "\n\nbody\n") || int64(len(data)) != sub.Message.Size {
				t.Errorf("message reads %q (%v), size %d", data, err, sub.Message.Size)
			}
			onDisk, _ := os.ReadFile(f.Name())
			if c.spilled && string(onDisk) != string(data) {
				t.Errorf("file holds %q, want the whole message %q", onDisk, data)
			}
			if !c.spilled && len(onDisk) != 0 {
				t.Errorf("a message held in memory was written to the file: %q", onDisk)
			}
			if _, err := f.Stat(); err != nil {
				t.Errorf("caller's file was closed: %v", err)
			}
		})
	}
	t.Run("spill fails", func(t *testing.T) {
		o := baseOptions()
		o.Recipients = []string{"a@x"}
		o.MaxMemory = 4
		cause := errors.New("queue: cannot create files in /spool/tmp: permission denied")
		o.Spill = func() (*os.File, error) { return nil, cause }
		_, err := Intake(strings.NewReader(msg), o)
		var ie *Error
		if !errors.As(err, &ie) || ie.Kind != KindSpool || !errors.Is(err, cause) {
			t.Fatalf("got %#v, want a KindSpool *Error wrapping the cause", err)
		}
		if want := "cannot create a spool file: " + cause.Error(); err.Error() != want {
			t.Errorf("got %q, want %q", err, want)
		}
	})
}
