package smtp

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func parseReplies(s string) ([]*reply, error) {
	br := bufio.NewReaderSize(strings.NewReader(s), MaxReplyLine)
	var out []*reply
	for {
		r, err := readReply(br, nil)
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, r)
	}
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in       string
		code     int
		enhanced string
		lines    []string
		text     string
	}{
		{"250 ok\r\n", 250, "", []string{"ok"}, "ok"},
		{"250\r\n", 250, "", []string{""}, ""},
		{"250 ok\n", 250, "", []string{"ok"}, "ok"}, // bare LF, leniently
		{"550 5.1.1 no such user\r\n", 550, "5.1.1", []string{"5.1.1 no such user"}, "no such user"},
		{"550-5.1.1 The account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the address for typos or\r\n550 5.1.1 unnecessary spaces.\r\n",
			550, "5.1.1", nil, "The account that you tried to reach does not exist. Please try double-checking the address for typos or unnecessary spaces."},
		{"451 5.1.1 class mismatch\r\n", 451, "", nil, "5.1.1 class mismatch"}, // RFC 2034: the class must match
		{"250 2.0.0\r\n", 250, "2.0.0", nil, ""},
		{"250OK\r\n", 250, "", []string{"OK"}, "OK"},
		{"220 tab\there \x1b[31mred\r\n", 220, "", []string{"tab\there ?[31mred"}, "tab\there ?[31mred"},
		{"250 caf\xff\r\n", 250, "", []string{"caf?"}, "caf?"},
	} {
		rs, err := parseReplies(tc.in)
		if err != nil || len(rs) != 1 {
			t.Errorf("%q: %v, %d replies", tc.in, err, len(rs))
			continue
		}
		r := rs[0]
		if r.Code != tc.code || r.Enhanced != tc.enhanced || r.Text() != tc.text || (tc.lines != nil && !reflect.DeepEqual(r.Lines, tc.lines)) {
			t.Errorf("%q: got %d %q %q %q", tc.in, r.Code, r.Enhanced, r.Lines, r.Text())
		}
	}
}

func TestReadReplyErrors(t *testing.T) {
	for in, want := range map[string]string{
		"250-more\r\n":       "unexpected EOF",
		"250 ok":             "unexpected EOF",
		"25\r\n":             "malformed reply line",
		"abc ok\r\n":         "malformed reply line",
		"150 old\r\n":        "malformed reply line",
		"650 new\r\n":        "malformed reply line",
		"250-a\r\n251 b\r\n": "different codes 250 and 251",
		"250 " + strings.Repeat("x", MaxReplyLine) + "\r\n":      "longer than 4096 bytes",
		strings.Repeat("250-x\r\n", MaxReplyLines) + "250 y\r\n": "more than 1000 lines",
	} {
		_, err := parseReplies(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", clip(in, 40), err, want)
		}
	}
	// Exactly at the caps is fine.
	line := "250 " + strings.Repeat("x", MaxReplyLine-6) + "\r\n"
	if rs, err := parseReplies(line); err != nil || len(rs) != 1 {
		t.Errorf("line of %d bytes: %v", len(line), err)
	}
	many := strings.Repeat("250-x\r\n", MaxReplyLines-1) + "250 y\r\n"
	if rs, err := parseReplies(many); err != nil || len(rs) != 1 || len(rs[0].Lines) != MaxReplyLines {
		t.Errorf("%d lines: %v", MaxReplyLines, err)
	}
}

func TestParseEHLO(t *testing.T) {
	got := parseEHLO([]string{
		"mx.test greets client.example",
		"PIPELINING",
		"size   1000000",
		"AUTH=LOGIN PLAIN",
		"auth login plain  cram-md5",
		"8BITMIME",
		"X-EXPS=LOGIN",
		"-BAD",
		"",
		"ENHANCEDSTATUSCODES",
		"PIPELINING duplicate",
	})
	want := map[string]string{
		"PIPELINING":          "",
		"SIZE":                "1000000",
		"AUTH":                "login plain cram-md5",
		"8BITMIME":            "",
		"ENHANCEDSTATUSCODES": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := parseEHLO([]string{"mx", "AUTH=LOGIN  PLAIN"}); got["AUTH"] != "LOGIN PLAIN" {
		t.Errorf("old AUTH= form: %q", got)
	}
	for in, want := range map[string]int64{"": 0, "0": 0, "1000": 1000, "x": 0, "-5": 0, " 42 ": 42} {
		if got := sizeLimit(in); got != want {
			t.Errorf("sizeLimit(%q) = %d", in, got)
		}
	}
}

func TestBodyWriter(t *testing.T) {
	for _, tc := range []struct{ in, dot, nodot string }{
		{"", "", ""},
		{"a\n", "a\r\n", "a\r\n"},
		{"a", "a\r\n", "a\r\n"}, // unterminated last line
		{".\n", "..\r\n", ".\r\n"},
		{"a\n.b\n\n.\n", "a\r\n..b\r\n\r\n..\r\n", "a\r\n.b\r\n\r\n.\r\n"},
		{"a\r\nb\rc\n", "a\r\nb\r\nc\r\n", "a\r\nb\r\nc\r\n"}, // CRs never go out alone
		{"a\r", "a\r\n", "a\r\n"},
		{strings.Repeat("x", 998) + "\n", strings.Repeat("x", 998) + "\r\n", strings.Repeat("x", 998) + "\r\n"},
		{strings.Repeat("x", 999), strings.Repeat("x", 998) + "\r\n x\r\n", strings.Repeat("x", 998) + "\r\n x\r\n"},
		{"." + strings.Repeat("x", 998) + "\n", ".." + strings.Repeat("x", 997) + "\r\n x\r\n", "." + strings.Repeat("x", 997) + "\r\n x\r\n"},
	} {
		for _, dot := range []bool{true, false} {
			want := tc.nodot
			if dot {
				want = tc.dot
			}
			// Whole, and in random pieces: the result must not depend on
			// how the reads split the message.
			for trial := range 20 {
				var out bytes.Buffer
				bw := newBodyWriter(&out, dot)
				in := tc.in
				for len(in) > 0 {
					n := len(in)
					if trial > 0 {
						n = 1 + rand.IntN(len(in))
					}
					bw.Write([]byte(in[:n]))
					in = in[n:]
				}
				bw.Close()
				if out.String() != want || bw.out != int64(len(want)) {
					t.Errorf("%q dot=%v: got %q (%d), want %q", clip(tc.in, 30), dot, clip(out.String(), 60), bw.out, clip(want, 60))
					break
				}
			}
		}
		if n, err := wireSize(strings.NewReader(tc.in)); err != nil || n != int64(len(tc.nodot)) {
			t.Errorf("wireSize(%q) = %d, %v; want %d", clip(tc.in, 30), n, err, len(tc.nodot))
		}
	}
}

// Every output line of the body writer is at most 998 octets (plus a
// stuffed dot), ends in CRLF, and has no lone CR or LF.
func TestBodyWriterLines(t *testing.T) {
	var in strings.Builder
	for i := range 200 {
		in.WriteString(strings.Repeat(string(rune('a'+i%26)), rand.IntN(3000)))
		if i%7 == 0 {
			in.WriteString(".")
		}
		in.WriteString("\n")
	}
	var out bytes.Buffer
	bw := newBodyWriter(&out, true)
	io.Copy(bw, strings.NewReader(in.String()))
	bw.Close()
	checkWireLines(t, out.Bytes(), true)
}

func checkWireLines(t *testing.T, b []byte, dot bool) {
	t.Helper()
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Fatalf("output does not end in CRLF")
	}
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\r\n")), []byte("\r\n")) {
		limit := MaxLineLength
		if dot && bytes.HasPrefix(l, []byte("..")) {
			limit++
		}
		if len(l) > limit || bytes.ContainsAny(l, "\r\n") {
			t.Fatalf("bad output line of %d octets: %q", len(l), clip(string(l), 40))
		}
	}
}
