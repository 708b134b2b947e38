package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/relaymail/relaymail/relay"
)

// Caps on what one server reply may cost. RFC 5321 §4.5.3.1.5 limits a reply
// line to 512 octets, but real servers exceed it (long enhanced texts, URLs),
// so the line cap is lenient. The caps only stop a hostile or broken server
// from making the client allocate without bound: one reply costs at most
// MaxReplyLine × MaxReplyLines bytes.
const (
	// MaxReplyLine is the longest reply line accepted, CRLF included.
	MaxReplyLine = 4096
	// MaxReplyLines is the largest number of lines in one (multi-line) reply.
	MaxReplyLines = 1000
)

// reply is one server reply: a code and one or more lines of text
// (RFC 5321 §4.2: "250-first line" ... "250 last line").
type reply struct {
	Code int
	// Enhanced is the RFC 3463 status code at the start of the first line
	// (RFC 2034 §3), "" when there is none.
	Enhanced string
	// Lines holds the text of each line after the code and the separator,
	// with control characters replaced, so that it is safe to log.
	Lines []string
}

// Text returns the reply text on one line: the lines joined by spaces, with
// the enhanced status code removed from the start of each line that repeats
// it (RFC 2034 §3 puts it on every line of a multi-line reply).
func (r *reply) Text() string {
	var b strings.Builder
	for _, l := range r.Lines {
		if r.Enhanced != "" && strings.HasPrefix(l, r.Enhanced) {
			rest := l[len(r.Enhanced):]
			if rest == "" || rest[0] == ' ' || rest[0] == '\t' {
				l = rest
			}
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}

// String renders the reply as "550 5.1.1 text" for messages.
func (r *reply) String() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if t := r.Text(); t != "" {
		s += " " + t
	}
	return s
}

func (r *reply) positive() bool { return r.Code/100 == 2 }

// protocolError is a reply that breaks RFC 5321 §4.2 syntax or the caps
// above. The session cannot continue after one: later replies could no
// longer be matched to their commands.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// readReply reads one reply from br, which must have a buffer of at least
// MaxReplyLine bytes. trace, when not nil, receives every line as received
// (sanitised). Lines may end in CRLF or, leniently, in a bare LF.
func readReply(br *bufio.Reader, trace func(string)) (*reply, error) {
	r := &reply{}
	for n := 0; ; n++ {
		if n == MaxReplyLines {
			return nil, &protocolError{fmt.Sprintf("reply has more than %d lines", MaxReplyLines)}
		}
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(raw) > MaxReplyLine {
			return nil, &protocolError{fmt.Sprintf("reply line longer than %d bytes", MaxReplyLine)}
		}
		if err != nil {
			if err == io.EOF && (len(raw) > 0 || n > 0) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		raw = raw[:len(raw)-1]
		if len(raw) > 0 && raw[len(raw)-1] == '\r' {
			raw = raw[:len(raw)-1]
		}
		line := sanitize(string(raw))
		if trace != nil {
			trace(line)
		}
		code, text, more, err := parseReplyLine(line)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			r.Code = code
			r.Enhanced = enhancedOf(code, text)
		} else if code != r.Code {
			return nil, &protocolError{fmt.Sprintf("reply lines with different codes %d and %d", r.Code, code)}
		}
		r.Lines = append(r.Lines, text)
		if !more {
			return r, nil
		}
	}
}

// parseReplyLine splits one reply line (RFC 5321 §4.2): a three-digit code
// whose first digit is 2 to 5, then "-" when more lines follow, or a space
// (or nothing) on the last line.
func parseReplyLine(line string) (code int, text string, more bool, err error) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, "", false, &protocolError{fmt.Sprintf("malformed reply line %q", clip(line, 80))}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, "", false, nil
	}
	switch line[3] {
	case '-':
		return code, line[4:], true, nil
	case ' ':
		return code, line[4:], false, nil
	default:
		// "250OK": not the RFC's syntax, but unambiguous enough.
		return code, line[3:], false, nil
	}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// enhancedOf returns the RFC 3463 code at the start of text when its class
// matches the reply code's first digit (RFC 2034 §3: "the class sub-code
// MUST match the first digit of the reply code").
func enhancedOf(code int, text string) string {
	e := relay.ParseEnhanced(text)
	if e == "" || !strings.HasPrefix(text, e) || int(e[0]-'0') != code/100 {
		return ""
	}
	return e
}

// sanitize replaces control characters and invalid UTF-8 so that server
// text can go into logs and onto terminals without escape sequences.
func sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parseEHLO turns the lines of a 250 reply to EHLO or LHLO into the
// extension map (RFC 5321 §4.1.1.1): the first line is the server's name,
// every further line "keyword [params]". Keywords are upper-cased; params
// keep their case, with runs of white space collapsed. Lines that are not an
// ehlo-keyword (RFC 5321 §4.1.1.1: ALPHA / DIGIT, then ALPHA / DIGIT / "-")
// are ignored. The pre-RFC 2554 form "AUTH=LOGIN PLAIN" counts as AUTH when
// no proper AUTH line is present.
func parseEHLO(lines []string) map[string]string {
	ext := make(map[string]string)
	var oldAuth string
	haveOldAuth := false
	for i, l := range lines {
		if i == 0 {
			continue
		}
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		kw = strings.ToUpper(kw)
		params = strings.Join(strings.Fields(params), " ")
		if rest, ok := strings.CutPrefix(kw, "AUTH="); ok {
			if !haveOldAuth {
				oldAuth = strings.TrimSpace(rest + " " + params)
				haveOldAuth = true
			}
			continue
		}
		if !isKeyword(kw) {
			continue
		}
		if _, dup := ext[kw]; !dup {
			ext[kw] = params
		}
	}
	if _, ok := ext["AUTH"]; !ok && haveOldAuth {
		ext["AUTH"] = strings.Join(strings.Fields(oldAuth), " ")
	}
	return ext
}

func isKeyword(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || isDigit(c) || c == '-') {
			return false
		}
	}
	return true
}

// sizeLimit returns the fixed maximum message size of the SIZE extension
// (RFC 1870 §4): 0 when SIZE has no parameter, a zero one, or one that is
// not a number, which all mean "no fixed limit".
func sizeLimit(params string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(params), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
