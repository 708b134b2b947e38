package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzReply feeds arbitrary server bytes to the reply reader: it must never
// panic, never return a reply beyond the caps, and only return codes 200 to
// 599 with clean text.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"220 mx.example.com ESMTP\r\n",
		"250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
		"550-5.1.1 no\r\n550 5.1.1 such user\r\n",
		"250 ok\n354 go\r\n",
		"250-a\r\n251 b\r\n",
		"25",
		"\r\n",
		"421 4.3.2 \x1b[2J bye\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), MaxReplyLine)
		for range 100 {
			var traced int
			r, err := readReply(br, func(string) { traced++ })
			if err != nil {
				return
			}
			if r.Code < 200 || r.Code > 599 {
				t.Fatalf("code %d", r.Code)
			}
			if len(r.Lines) == 0 || len(r.Lines) > MaxReplyLines || traced != len(r.Lines) {
				t.Fatalf("%d lines, %d traced", len(r.Lines), traced)
			}
			for _, l := range r.Lines {
				if len(l) > MaxReplyLine {
					t.Fatalf("line of %d bytes", len(l))
				}
				if strings.ContainsAny(l, "\r\n\x00\x1b") {
					t.Fatalf("control character in %q", l)
				}
			}
			if r.Enhanced != "" && (r.Enhanced[0]-'0' != byte(r.Code/100) || !strings.HasPrefix(r.Lines[0], r.Enhanced)) {
				t.Fatalf("enhanced %q for %d %q", r.Enhanced, r.Code, r.Lines[0])
			}
			_ = r.Text()
			_ = r.String()
		}
	})
}

// FuzzEHLO parses arbitrary EHLO replies into the extension map: keywords
// are valid upper-case ehlo-keywords, parameters have no control
// characters, and the map is no larger than the reply.
func FuzzEHLO(f *testing.F) {
	for _, s := range []string{
		"250-mx\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
		"250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250 STARTTLS\r\n",
		"250 mx\r\n",
		"250-mx\r\n250-size\t 1 2\r\n250 -X\r\n",
		"250-mx\r\n250-X-\xff\r\n250 CHUNKING\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), MaxReplyLine)
		r, err := readReply(br, nil)
		if err != nil {
			return
		}
		ext := parseEHLO(r.Lines)
		if len(ext) > len(r.Lines) {
			t.Fatalf("%d extensions from %d lines", len(ext), len(r.Lines))
		}
		for k, v := range ext {
			if !isKeyword(k) || strings.ToUpper(k) != k {
				t.Fatalf("keyword %q", k)
			}
			if strings.ContainsAny(v, "\r\n\x00") || strings.TrimSpace(v) != v || strings.Contains(v, "  ") {
				t.Fatalf("params %q", v)
			}
		}
		if s, ok := ext["SIZE"]; ok && sizeLimit(s) < 0 {
			t.Fatalf("size %q", s)
		}
	})
}
