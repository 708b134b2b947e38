package inject

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// lineReader hands out the LF-normalised input a line (or, for lines longer
// than the buffer, a piece of a line) at a time, and applies the sendmail
// dot conventions at the start of each line.
type lineReader struct {
	br      *bufio.Reader
	dots    bool // apply the lone-dot terminator and ".." un-stuffing
	midLine bool
	done    bool
}

// next returns the next piece of input. complete says whether the piece ends
// its line (it then ends with '\n'). The slice is valid until the next call.
func (l *lineReader) next() (piece []byte, complete bool, err error) {
	if l.done {
		return nil, false, io.EOF
	}
	b, err := l.br.ReadSlice('\n')
	switch {
	case err == nil:
	case errors.Is(err, bufio.ErrBufferFull):
		err = nil
	case err == io.EOF:
		if len(b) == 0 {
			l.done = true
			return nil, false, io.EOF
		}
		err = nil
	default:
		return nil, false, &Error{Kind: KindRead, Msg: "cannot read the message from standard input", Err: err}
	}
	atStart := !l.midLine
	complete = len(b) > 0 && b[len(b)-1] == '\n'
	l.midLine = !complete
	if atStart && l.dots && len(b) > 0 && b[0] == '.' {
		// Sendmail 8 collect.c, without -i: ".\n" ends the message and a
		// leading ".." loses one dot, so callers that dot-stuff (Symfony's
		// -t transport) are undone exactly.
		if string(b) == ".\n" || (string(b) == "." && !complete) {
			l.done = true
			return nil, false, io.EOF
		}
		if len(b) > 1 && b[1] == '.' {
			b = b[1:]
		}
	}
	return b, complete, nil
}

// fullLine reads one whole line, appending it to buf; limit bounds the total
// size of buf.
func (l *lineReader) fullLine(buf []byte, limit int64) ([]byte, error) {
	for {
		piece, complete, err := l.next()
		if err != nil {
			return buf, err
		}
		if int64(len(buf)+len(piece)) > limit {
			return buf, errHeaderTooBig
		}
		buf = append(buf, piece...)
		if complete {
			return buf, nil
		}
	}
}

var errHeaderTooBig = errors.New("header too big")

// spoolWriter counts what it writes and notes what the SMTP client will need
// to know: 8-bit bytes and lines over the RFC 5322 limit of 998 octets.
type spoolWriter struct {
	w         *bufio.Writer
	n         int64
	lineLen   int
	eightBit  bool
	longLines bool
}

func (s *spoolWriter) Write(p []byte) (int, error) {
	if !s.eightBit {
		for _, c := range p {
			if c >= 0x80 {
				s.eightBit = true
				break
			}
		}
	}
	if !s.longLines {
		rest := p
		for len(rest) > 0 {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				s.lineLen += len(rest)
				break
			}
			s.lineLen += i
			if s.lineLen > 998 {
				s.longLines = true
			}
			s.lineLen = 0
			rest = rest[i+1:]
		}
		if s.lineLen > 998 {
			s.longLines = true
		}
	}
	n, err := s.w.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, &Error{Kind: KindSpool, Msg: "cannot write the spool file", Err: err}
	}
	return n, nil
}

// isFieldStart reports whether line opens a header field: a name of
// printable ASCII other than ":", optional blanks (seen in the wild and
// accepted by Postfix), then ":".
func isFieldStart(line []byte) bool {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i < len(line) && line[i] == ':'
}

func isMboxFrom(line []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From "))
}

// header reads the header section, rewrites it and writes it, with the
// separating blank line, to w. It leaves lr at the first body line. A line
// that is neither a field nor a continuation ends the header and is kept as
// the first body line, as Sendmail and Postfix do.
func (in *intake) header(lr *lineReader, w *spoolWriter) error {
	limit := in.opts.MaxHeaderBytes
	tooBig := func() error {
		return dataErr("the message header is larger than %d bytes (split the message, or move data into the body)", limit)
	}
	var raw []byte
	var firstBody []byte
	bodyComplete := true
	leading := true
	for {
		piece, complete, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if leading && isMboxFrom(piece) {
			// Postfix skips leading mbox "From " lines (sendmail.c skip_from_).
			for !complete {
				if _, complete, err = lr.next(); err != nil && err != io.EOF {
					return err
				} else if err == io.EOF {
					break
				}
			}
			continue
		}
		leading = false
		if complete && len(piece) == 1 { // the blank line
			break
		}
		// The first piece of a line decides: a field name and its colon
		// always fit in it. Deciding early lets a huge first body line
		// stream instead of counting against the header limit.
		if isFieldStart(piece) || (len(raw) > 0 && (piece[0] == ' ' || piece[0] == '\t')) {
			if int64(len(raw)+len(piece)) > limit {
				return tooBig()
			}
			raw = append(raw, piece...)
			if !complete {
				raw, err = lr.fullLine(raw, limit)
				if errors.Is(err, errHeaderTooBig) {
					return tooBig()
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
			}
			continue
		}
		firstBody = append([]byte(nil), piece...)
		bodyComplete = complete
		break
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		raw = append(raw, '\n') // a header cut off at EOF
	}
	h, err := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\n"))))
	if err != nil {
		// The split above only lets through what ReadHeader accepts.
		return fmt.Errorf("inject: header parse after split: %w", err)
	}
	out, err := in.rewrite(&h)
	if err != nil {
		return err
	}
	if _, err := w.Write(out); err != nil {
		return err
	}
	if _, err := w.Write([]byte{'\n'}); err != nil {
		return err
	}
	if firstBody != nil {
		if _, err := w.Write(firstBody); err != nil {
			return err
		}
	}
	in.bodyComplete = bodyComplete
	return nil
}

var dropFields = map[string]bool{"Bcc": true, "Resent-Bcc": true, "Return-Path": true, "Content-Length": true}

var qualifyFields = map[string]bool{
	"To": true, "Cc": true, "From": true, "Reply-To": true, "Sender": true,
	"Resent-To": true, "Resent-Cc": true, "Resent-From": true, "Resent-Reply-To": true, "Resent-Sender": true,
}

// rewrite applies intake's header rules and returns the header bytes (LF,
// without the blank line). textproto keys are canonical ("Message-Id").
func (in *intake) rewrite(h *textproto.Header) ([]byte, error) {
	type field struct {
		key string
		raw []byte
	}
	var fields []field
	resent := false
	resentRcpt := false
	for f := h.Fields(); f.Next(); {
		k := f.Key()
		if strings.HasPrefix(k, "Resent-") {
			resent = true
			if k == "Resent-To" || k == "Resent-Cc" || k == "Resent-Bcc" {
				resentRcpt = true
			}
		}
		raw, err := f.Raw()
		if err != nil {
			return nil, err
		}
		fields = append(fields, field{k, bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))})
	}

	if in.opts.Extract {
		want := map[string]bool{"To": true, "Cc": true, "Bcc": true}
		if resentRcpt {
			want = map[string]bool{"Resent-To": true, "Resent-Cc": true, "Resent-Bcc": true}
		}
		for _, f := range fields {
			if !want[f.key] {
				continue
			}
			list, err := parseAddressList(strings.TrimSpace(fieldValue(f.raw)), false)
			if err != nil {
				return nil, dataErr("cannot take recipients from the %s: header: %s (fix the header, or give the recipients as arguments without -t)", f.key, err)
			}
			for _, m := range list {
				if err := in.addRecipient(f.key+": recipient", m); err != nil {
					return nil, err
				}
			}
		}
	}

	prefix := ""
	if resent {
		prefix = "Resent-"
	}
	var b bytes.Buffer
	has := map[string]bool{}
	for _, f := range fields {
		if dropFields[f.key] {
			continue
		}
		has[f.key] = true
		if qualifyFields[f.key] {
			f.raw = in.qualifyField(f.raw)
		}
		if f.key == prefix+"Message-Id" && in.messageID == "" {
			in.messageID = strings.TrimSpace(strings.ReplaceAll(fieldValue(f.raw), "\n", ""))
		}
		b.Write(f.raw)
	}
	now := in.opts.Now()
	if !has[prefix+"Date"] {
		fmt.Fprintf(&b, "%sDate: %s\n", prefix, now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	if !has[prefix+"Message-Id"] {
		host := in.opts.Hostname
		if host == "" {
			host = in.opts.Domain
		}
		in.messageID = newMessageID(now, host)
		fmt.Fprintf(&b, "%sMessage-ID: %s\n", prefix, in.messageID)
	}
	if !has[prefix+"From"] {
		fmt.Fprintf(&b, "%sFrom: %s\n", prefix, in.fromValue())
	}
	return b.Bytes(), nil
}

// fieldValue returns what follows the colon of a raw field.
func fieldValue(raw []byte) string {
	i := bytes.IndexByte(raw, ':')
	return string(raw[i+1:])
}

// qualifyField inserts "@domain" after each bare local name in an address
// field, leaving every other byte alone. A field that does not parse is left
// as it is: it is the caller's text, and rewriting a guess would be worse.
func (in *intake) qualifyField(raw []byte) []byte {
	colon := bytes.IndexByte(raw, ':') + 1
	list, err := parseAddressList(string(raw[colon:]), false)
	if err != nil {
		return raw
	}
	var out []byte
	last := 0
	for _, m := range list {
		if m.domain != "" {
			continue
		}
		at := colon + m.end
		out = append(out, raw[last:at]...)
		out = append(out, '@')
		out = append(out, in.opts.Domain...)
		last = at
	}
	if out == nil {
		return raw
	}
	return append(out, raw[last:]...)
}

// fromValue builds the From field for a message that has none: the display
// name from -F or NAME, and the envelope sender (or, for the null sender, the
// caller's own address).
func (in *intake) fromValue() string {
	addr := in.envSender
	if addr == "" {
		addr = in.defaultAddr
	}
	name := strings.TrimSpace(in.opts.FullName)
	if name == "" {
		return addr
	}
	return formatPhrase(name) + " <" + addr + ">"
}

// formatPhrase renders a display name: as is when it is plain words, as a
// quoted string when it has specials, RFC 2047-encoded when it is not ASCII.
func formatPhrase(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return mime.QEncoding.Encode("utf-8", name)
		}
		if name[i] < ' ' || name[i] == 0x7f {
			name = strings.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return ' '
				}
				return r
			}, name)
			break
		}
	}
	plain := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != ' ' && !isAtext(c) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(name) + `"`
}

// copyBody streams the rest of the input into w, ending the last line with
// LF if the caller did not.
func copyBody(lr *lineReader, w *spoolWriter, complete bool) error {
	for {
		piece, c, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(piece); err != nil {
			return err
		}
		complete = c
	}
	if !complete {
		_, err := w.Write([]byte{'\n'})
		return err
	}
	return nil
}
