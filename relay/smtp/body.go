package smtp

import (
	"bytes"
	"io"
)

// MaxLineLength is the longest line the client sends, CRLF not counted
// (RFC 5321 §4.5.3.1.6: "The maximum total length of a text line including
// the <CRLF> is 1000 octets"; RFC 5322 §2.1.1: 998 characters). Longer lines
// are folded by inserting CRLF SP, as Postfix does with
// smtp_line_length_limit.
const MaxLineLength = 998

var (
	crlf     = []byte("\r\n")
	crlfSP   = []byte("\r\n ")
	dotBytes = []byte(".")
)

// bodyWriter turns the stored message (LF line endings, RFC 5321 §2.3.8
// forbids them on the wire) into SMTP text as it streams through:
//
//   - every LF becomes CRLF; a CR, which intake never stores, is not sent
//     alone either: CR LF and a lone CR both become CRLF;
//   - a line longer than MaxLineLength octets is folded: CRLF SP is inserted
//     after 998 octets, so the rest continues on a new line that starts with
//     a space (Postfix's smtp_line_length_limit behaviour);
//   - with dot set (DATA, not BDAT), a line that starts with "." gets a
//     second one (RFC 5321 §4.5.2); the added dot does not count toward the
//     line length (RFC 5321 §4.5.3.1.6);
//   - Close ends an unterminated last line with CRLF (RFC 5321 §4.1.1.4).
//
// It never holds more than the caller's write in memory.
type bodyWriter struct {
	w   io.Writer
	dot bool
	col int   // octets on the current output line, stuffed dot not counted
	cr  bool  // a CR was seen and not yet written
	out int64 // octets written to w
	err error
}

func newBodyWriter(w io.Writer, dot bool) *bodyWriter { return &bodyWriter{w: w, dot: dot} }

func (b *bodyWriter) emit(p []byte) {
	if b.err != nil || len(p) == 0 {
		return
	}
	n, err := b.w.Write(p)
	b.out += int64(n)
	b.err = err
}

func (b *bodyWriter) newline() {
	b.emit(crlf)
	b.col = 0
}

func (b *bodyWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && b.err == nil {
		if b.cr {
			b.cr = false
			b.newline()
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		switch p[0] {
		case '\n':
			b.newline()
			p = p[1:]
			continue
		case '\r':
			b.cr = true
			p = p[1:]
			continue
		}
		if b.col == MaxLineLength {
			b.emit(crlfSP)
			b.col = 1
		}
		if b.col == 0 && b.dot && p[0] == '.' {
			b.emit(dotBytes)
		}
		run := bytes.IndexByte(p, '\n')
		if run < 0 {
			run = len(p)
		}
		if i := bytes.IndexByte(p[:run], '\r'); i >= 0 {
			run = i
		}
		if room := MaxLineLength - b.col; run > room {
			run = room
		}
		b.emit(p[:run])
		b.col += run
		p = p[run:]
	}
	if b.err != nil {
		return n - len(p), b.err
	}
	return n, nil
}

// Close ends the text with CRLF if its last line was not terminated.
func (b *bodyWriter) Close() error {
	if b.cr || b.col > 0 {
		b.cr = false
		b.newline()
	}
	return b.err
}

// countWriter counts and discards.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// wireSize returns the size of the message as SMTP text without
// dot-stuffing: the octet count for BDAT (RFC 3030 §2) and for the SIZE
// parameter (RFC 1870 §3: line endings count as CRLF). It reads the message
// once; nothing is kept.
func wireSize(r io.Reader) (int64, error) {
	var cw countWriter
	bw := newBodyWriter(&cw, false)
	if _, err := io.Copy(bw, r); err != nil {
		return 0, err
	}
	bw.Close()
	return cw.n, nil
}
