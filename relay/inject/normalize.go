package inject

import (
	"bytes"
	"io"
)

// normalizer turns any mix of line endings into LF and drops every CR, so
// that the rest of intake, and the spool, see exactly one form.
//
// A run of CRs followed by LF is one line break: Postfix's
// sendmail_fix_line_endings=always strips all trailing CRs, and PHP on some
// systems turns a script's "\r\n" into "\r\r\n", which must not become a blank
// line (a blank line would end the header early). A run of k CRs not followed
// by LF is k line breaks (old Mac text).
type normalizer struct {
	r          io.Reader
	buf        []byte
	start, end int
	crs        int   // CRs seen and not yet resolved
	owedLF     int   // line breaks decided but not yet written
	err        error // sticky error from r
}

func newNormalizer(r io.Reader, size int) *normalizer {
	return &normalizer{r: r, buf: make([]byte, size)}
}

func (n *normalizer) Read(p []byte) (int, error) {
	out := 0
	for out < len(p) {
		if n.owedLF > 0 {
			p[out] = '\n'
			out++
			n.owedLF--
			continue
		}
		if n.start == n.end {
			if n.err != nil {
				if n.crs > 0 {
					n.owedLF, n.crs = n.crs, 0
					continue
				}
				if out > 0 {
					return out, nil
				}
				return 0, n.err
			}
			if out > 0 {
				// Do not block on a pipe while holding data the caller
				// could already use.
				return out, nil
			}
			nr, err := n.r.Read(n.buf)
			n.start, n.end, n.err = 0, nr, err
			continue
		}
		b := n.buf[n.start]
		if n.crs > 0 {
			switch b {
			case '\r':
				n.crs++
				n.start++
			case '\n':
				n.crs = 0
				n.start++
				p[out] = '\n'
				out++
			default:
				n.owedLF, n.crs = n.crs, 0
			}
			continue
		}
		if b == '\r' {
			n.crs = 1
			n.start++
			continue
		}
		span := n.buf[n.start:n.end]
		if i := bytes.IndexByte(span, '\r'); i >= 0 {
			span = span[:i]
		}
		c := copy(p[out:], span)
		out += c
		n.start += c
	}
	return out, nil
}
