package inject

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"sort"
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
	max       int64 // 0: no limit
	lineLen   int
	eightBit  bool
	longLines bool
}

func (s *spoolWriter) Write(p []byte) (int, error) {
	if s.max > 0 && s.n+int64(len(p)) > s.max {
		return 0, dataErr("the message is larger than %d bytes, the max_message_size limit (send a smaller message, or raise the limit)", s.max)
	}
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
	return n, spoolErr(err)
}

// spoolErr classes a failed write into the spool; an *Error from moving
// the message to a file already says what failed.
func spoolErr(err error) error {
	if err == nil {
		return nil // before ie, which escapes: this runs for every write
	}
	var ie *Error
	if errors.As(err, &ie) {
		return err
	}
	return &Error{Kind: KindSpool, Msg: "cannot write the spool file", Err: err}
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
	// keep appends a header line, prefix first, to raw: the piece read so
	// far and, when it is not complete, the rest of the line. It reports
	// whether the input ended.
	keep := func(prefix, piece []byte, complete bool) (eof bool, err error) {
		if int64(len(raw)+len(prefix)+len(piece)) > limit {
			return false, tooBig()
		}
		raw = append(raw, prefix...)
		raw = append(raw, piece...)
		if complete {
			return false, nil
		}
		raw, err = lr.fullLine(raw, limit)
		switch {
		case err == io.EOF:
			return true, nil
		case errors.Is(err, errHeaderTooBig):
			return false, tooBig()
		}
		return false, err
	}
	for {
		piece, complete, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if in.opts.MboxLine && bytes.HasPrefix(piece, []byte("From ")) {
			// qmail-inject's headerbody.c: any header line that begins
			// "From " is kept as the field MBOX-Line.
			leading = false
			if eof, err := keep([]byte(mboxField), piece, complete); err != nil {
				return err
			} else if eof {
				break
			}
			continue
		}
		if leading && !in.opts.MboxLine && isMboxFrom(piece) {
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
			if eof, err := keep(nil, piece, complete); err != nil {
				return err
			} else if eof {
				break
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

const mboxField = "MBOX-Line: "

var dropFields = map[string]bool{"Bcc": true, "Resent-Bcc": true, "Return-Path": true, "Content-Length": true}

var qualifyFields = map[string]bool{
	"To": true, "Cc": true, "From": true, "Reply-To": true, "Sender": true,
	"Resent-To": true, "Resent-Cc": true, "Resent-From": true, "Resent-Reply-To": true, "Resent-Sender": true,
}

// recipientFields are the fields a header recipient can come from; a
// strict dialect still tolerates them when they do not parse.
var recipientFields = map[string]bool{
	"To": true, "Cc": true, "Bcc": true, "Apparently-To": true,
	"Resent-To": true, "Resent-Cc": true, "Resent-Bcc": true,
}

// aliasFields are the fields where an alias replaces the address, so that
// the reader sees what the smarthost got.
var aliasFields = map[string]bool{"To": true, "Cc": true, "Resent-To": true, "Resent-Cc": true}

// rewrite applies intake's header rules and returns the header bytes (LF,
// without the blank line). textproto keys are canonical ("Message-Id").
func (in *intake) rewrite(h *textproto.Header) ([]byte, error) {
	o := in.opts
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

	if in.useHeader() {
		want := map[string]bool{"To": true, "Cc": true, "Bcc": true}
		if o.ApparentlyTo {
			want["Apparently-To"] = true
		}
		if resentRcpt || (resent && o.ResentRecipientsOnly) {
			want = map[string]bool{"Resent-To": true, "Resent-Cc": true, "Resent-Bcc": true}
		}
		for _, f := range fields {
			if !want[f.key] {
				continue
			}
			list, err := parseAddressList(strings.TrimSpace(fieldValue(f.raw)), o.SpaceIsComma)
			if err != nil {
				if o.TolerateBadRecipientFields {
					continue
				}
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
	var tocc []string // the To and Cc addresses, for Mail-Followup-To
	for _, f := range fields {
		if f.key == "Return-Path" && in.rewriteFields[f.key] {
			if err := in.returnPath(f.raw); err != nil {
				return nil, err
			}
		}
		if dropFields[f.key] || (o.DeleteFrom && f.key == "From") || (o.DeleteMessageID && f.key == "Message-Id") {
			continue
		}
		has[f.key] = true
		if in.rewriteFields[f.key] && !(o.FromRewrite == FromNever && (f.key == "From" || f.key == "Resent-From")) {
			raw, addrs, err := in.rewriteField(f.key, f.raw)
			if err != nil {
				return nil, err
			}
			f.raw = raw
			if f.key == "To" || f.key == "Cc" {
				tocc = append(tocc, addrs...)
			}
		}
		if f.key == prefix+"Message-Id" && in.messageID == "" {
			in.messageID = strings.TrimSpace(strings.ReplaceAll(fieldValue(f.raw), "\n", ""))
		}
		b.Write(f.raw)
	}

	var gen bytes.Buffer
	now := o.Now()
	if !has[prefix+"Date"] {
		date := now.Format("Mon, 02 Jan 2006 15:04:05 -0700")
		if o.DateFormat != nil {
			date = o.DateFormat(now)
		}
		fmt.Fprintf(&gen, "%sDate: %s\n", prefix, date)
	}
	if !has[prefix+"Message-Id"] {
		in.messageID = in.newMessageID(now)
		fmt.Fprintf(&gen, "%sMessage-ID: %s\n", prefix, in.messageID)
	}
	if !has[prefix+"From"] && o.FromRewrite != FromNever {
		fmt.Fprintf(&gen, "%sFrom: %s\n", prefix, in.fromValue())
	}
	if o.AddCcWhenNoRecipients && !has[prefix+"To"] && !has[prefix+"Cc"] {
		fmt.Fprintf(&gen, "%sCc: recipient list not shown: ;\n", prefix)
	}
	if !resent && !has["Mail-Followup-To"] && mentionsList(tocc, o.MailFollowupTo) {
		// qmail-inject's finishmft: every To and Cc address, one a line.
		fmt.Fprintf(&gen, "Mail-Followup-To: %s\n", strings.Join(tocc, ",\n  "))
	}
	if o.GeneratedFirst {
		return append(gen.Bytes(), b.Bytes()...), nil
	}
	b.Write(gen.Bytes())
	return b.Bytes(), nil
}

// mentionsList reports whether addrs holds one of lists, without regard to
// case.
func mentionsList(addrs, lists []string) bool {
	for _, a := range addrs {
		for _, l := range lists {
			if strings.EqualFold(a, l) {
				return true
			}
		}
	}
	return false
}

// returnPath reads a Return-Path field: a strict dialect refuses one that
// does not parse, and with ReturnPathSetsSender the first one sets the
// envelope sender unless the caller chose one.
func (in *intake) returnPath(raw []byte) error {
	list, err := parseAddressList(fieldValue(raw), false)
	if err != nil {
		if in.opts.StrictFields {
			return dataErr("cannot parse the Return-Path: field: %s (fix the field, or leave it out)", reason(err))
		}
		return nil
	}
	if !in.opts.ReturnPathSetsSender || in.senderFixed || in.returnPathSeen {
		return nil
	}
	in.returnPathSeen = true
	sender := ""
	if len(list) > 0 {
		sender = in.rewriteAddr(list[0])
		if err := checkEnvelopeAddress("Return-Path: sender", sender); err != nil {
			return err
		}
	}
	// As qmail-inject's setreturn: the VERP suffix goes on whatever the
	// field says, even <>.
	in.envSender = sender + in.opts.VERPSuffix
	in.trace("sender %s (from Return-Path)", in.envSender)
	return nil
}

// rewriteField rewrites the addresses of one address field in place:
// qualification (or the dialect's Rewrite), aliases in To and Cc, and
// rewrite_from always in From. It returns the field and the addresses it
// now holds. A field that does not parse is kept as it is, unless the
// dialect is strict: it is the caller's text, and rewriting a guess would
// be worse.
func (in *intake) rewriteField(key string, raw []byte) ([]byte, []string, error) {
	colon := bytes.IndexByte(raw, ':') + 1
	list, commas, err := parseAddresses(string(raw[colon:]), in.opts.SpaceIsComma)
	if err != nil {
		if in.opts.StrictFields && !recipientFields[key] {
			return nil, nil, dataErr("cannot parse the %s: field: %s (fix the field, or leave it out)", key, reason(err))
		}
		return raw, nil, nil
	}
	masq := in.opts.FromRewrite == FromAlways && (key == "From" || key == "Resent-From")
	alias := in.resolver != nil && aliasFields[key]
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	var addrs []string
	for _, m := range list {
		addr := in.rewriteAddr(m)
		targets := []string{addr}
		switch {
		case masq:
			targets = []string{in.masquerade()}
		case alias:
			if t, _, err := in.resolver.Expand(addr); err == nil {
				targets = t
			}
		}
		addrs = append(addrs, targets...)
		strip := m.route && in.opts.Rewrite != nil
		if len(targets) > 1 {
			// Several addresses cannot share one display name: the
			// mailbox becomes the list.
			edits = append(edits, edit{m.start, m.elemEnd, strings.Join(targets, ", ")})
			continue
		}
		t := targets[0]
		if t == m.addr() && !strip {
			continue
		}
		if i := strings.LastIndexByte(t, '@'); i >= 0 && !strip && t[:i] == m.local {
			// Only the domain changes: touch only the domain, so that
			// comments and spacing inside the address survive.
			if m.domain == "" {
				edits = append(edits, edit{m.end, m.end, t[i:]})
			} else {
				edits = append(edits, edit{m.domStart, m.domEnd, t[i+1:]})
			}
			continue
		}
		edits = append(edits, edit{m.addrStart, m.addrEnd, t})
	}
	for _, c := range commas {
		edits = append(edits, edit{c, c, ","})
	}
	if len(edits) == 0 {
		return raw, addrs, nil
	}
	// Stable: an "@domain" inserted at the end of a name goes before the
	// comma inserted at the same place.
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	value := raw[colon:]
	out := append([]byte(nil), raw[:colon]...)
	last := 0
	for _, e := range edits {
		out = append(out, value[last:e.start]...)
		out = append(out, e.text...)
		last = e.end
	}
	return append(out, value[last:]...), addrs, nil
}

// fromValue builds the From field for a message that has none: the display
// name from -F or NAME, and the envelope sender (or, for the null sender, the
// caller's own address).
func (in *intake) fromValue() string {
	addr := in.opts.FromAddress
	if addr == "" {
		addr = in.envSender
	}
	if addr == "" {
		addr = in.defaultAddr
	}
	if in.opts.FromRewrite == FromAlways {
		addr = in.masquerade()
	}
	name := strings.TrimSpace(in.opts.FullName)
	if in.opts.FromFormat != nil {
		return in.opts.FromFormat(name, addr)
	}
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

// fieldValue returns what follows the colon of a raw field.
func fieldValue(raw []byte) string {
	i := bytes.IndexByte(raw, ':')
	return string(raw[i+1:])
}
