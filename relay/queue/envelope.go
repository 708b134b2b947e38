package queue

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relaymail/relaymail/relay"
)

// Bounds on what an envelope file may hold. The runner reads files that
// anyone with write access to the spool could have planted, so nothing in
// them may make it allocate without limit. The largest envelope that
// validate accepts (maxRecipients recipients of the longest address, each
// with a reply of maxReply octets) still fits in maxEnvelopeBytes, so that
// a state the runner writes can always be read back.
const (
	envVersion       = "relaymail-envelope 1"
	maxEnvelopeBytes = 8 << 20
	maxRecipients    = 10000
	maxReply         = 512
	maxMessageID     = 998 // RFC 5322 §2.1.1: a line of at most 998 characters
	maxAttempts      = 1000000
	maxEnvID         = 100 // RFC 3461 §4.4
)

// State is where one recipient of a queued message stands.
type State int

const (
	// Pending recipients are sent again by the next run that is due.
	Pending State = iota
	// Delivered recipients were accepted by a smarthost; they are final and
	// never sent again.
	Delivered
	// Failed recipients were refused for good, or expired; they are final
	// and end up in the bounce.
	Failed
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

func parseState(s string) (State, bool) {
	switch s {
	case "pending":
		return Pending, true
	case "delivered":
		return Delivered, true
	case "failed":
		return Failed, true
	}
	return 0, false
}

// Recipient is one envelope recipient with its state and the last reply it
// got ("452 4.2.2 mailbox full"), "" before any.
type Recipient struct {
	Addr  string
	State State
	Reply string
}

// Entry is one queued message as env/ID describes it.
type Entry struct {
	ID      string
	Arrival time.Time
	// Sender is the envelope sender, "" for the null sender <>.
	Sender    string
	Size      int64
	MessageID string
	// Body, SMTPUTF8 and DSN are carried into the envelope on delivery.
	Body     string
	SMTPUTF8 bool
	DSN      relay.DSN
	// Bounce marks a delivery status notification that relaymail made: it
	// is never bounced itself.
	Bounce                   bool
	Attempts                 int
	LastAttempt, NextAttempt time.Time
	// Recipients in envelope order.
	Recipients []Recipient
}

// marshal renders e in the envelope format of doc.go. It refuses an entry
// that parseEnvelope would refuse, so that what is written can be read.
func marshal(e *Entry) ([]byte, error) {
	if err := validate(e); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	line := func(key, value string) {
		b.WriteString(key)
		if value != "" {
			b.WriteByte(' ')
			b.WriteString(value)
		}
		b.WriteByte('\n')
	}
	line(envVersion, "")
	line("id", e.ID)
	line("arrival", formatTime(e.Arrival))
	line("sender", e.Sender)
	line("size", strconv.FormatInt(e.Size, 10))
	if e.MessageID != "" {
		line("message-id", e.MessageID)
	}
	if e.Body != "" {
		line("body", e.Body)
	}
	if e.SMTPUTF8 {
		line("smtputf8", "yes")
	}
	if e.DSN.Ret != "" {
		line("dsn-ret", e.DSN.Ret)
	}
	if e.DSN.EnvID != "" {
		line("dsn-envid", encodeXtext(e.DSN.EnvID))
	}
	if len(e.DSN.Notify) > 0 {
		line("dsn-notify", strings.Join(e.DSN.Notify, ","))
	}
	if e.Bounce {
		line("bounce", "yes")
	}
	line("attempts", strconv.Itoa(e.Attempts))
	if !e.LastAttempt.IsZero() {
		line("last-attempt", formatTime(e.LastAttempt))
	}
	if !e.NextAttempt.IsZero() {
		line("next-attempt", formatTime(e.NextAttempt))
	}
	for _, r := range e.Recipients {
		line("rcpt", r.State.String()+" "+r.Addr)
		if r.Reply != "" {
			line("reply", r.Reply)
		}
	}
	if b.Len() > maxEnvelopeBytes {
		return nil, fmt.Errorf("queue: the envelope of %s would be %d octets, over the limit of %d", e.ID, b.Len(), maxEnvelopeBytes)
	}
	return b.Bytes(), nil
}

// formatTime writes times in UTC with as many fractional digits as they
// need, so that a parsed time equals the one written.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", v)
	}
	return t.UTC(), nil
}

// parseCount reads a non-negative decimal in canonical form (no sign, no
// leading zeros), at most max.
func parseCount(v string, max int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > max || strconv.FormatInt(n, 10) != v {
		return 0, fmt.Errorf("%q is not a number from 0 to %d", v, max)
	}
	return n, nil
}

// parseEnvelope reads an envelope file strictly: the exact version line,
// known keys only, each at most once and before the recipients, every
// value checked. It never guesses: whatever it cannot read is an error, and
// the runner moves the file to failed/.
func parseEnvelope(data []byte) (*Entry, error) {
	if len(data) > maxEnvelopeBytes {
		return nil, fmt.Errorf("larger than %d octets", maxEnvelopeBytes)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, errors.New("empty, or the last line is not terminated (a torn write?)")
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	if lines[0] != envVersion {
		return nil, fmt.Errorf("line 1: %q is not %q (written by another version of relaymail?)", truncate(lines[0], 40), envVersion)
	}
	e := &Entry{}
	seen := map[string]bool{}
	inRcpts, replied := false, false
	for n, line := range lines[1:] {
		lineNo := n + 2
		fail := func(format string, a ...any) (*Entry, error) {
			return nil, fmt.Errorf("line %d: %s", lineNo, fmt.Sprintf(format, a...))
		}
		if i := strings.IndexFunc(line, isControl); i >= 0 {
			return fail("control character 0x%02x", line[i])
		}
		key, v, _ := strings.Cut(line, " ")
		switch key {
		case "rcpt":
			inRcpts, replied = true, false
			if len(e.Recipients) == maxRecipients {
				return fail("more than %d recipients", maxRecipients)
			}
			st, addr, ok := strings.Cut(v, " ")
			state, known := parseState(st)
			if !ok || !known {
				return fail("a rcpt line is \"rcpt pending|delivered|failed <address>\"")
			}
			e.Recipients = append(e.Recipients, Recipient{Addr: addr, State: state})
			continue
		case "reply":
			if !inRcpts || replied {
				return fail("a reply line must follow its rcpt line, once")
			}
			if v == "" {
				return fail("empty reply")
			}
			replied = true
			e.Recipients[len(e.Recipients)-1].Reply = v
			continue
		}
		if inRcpts {
			return fail("%q after the recipients", truncate(key, 40))
		}
		if seen[key] {
			return fail("%q given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "id":
			e.ID = v
		case "arrival":
			e.Arrival, err = parseTime(v)
		case "sender":
			e.Sender = v
		case "size":
			e.Size, err = parseCount(v, 1<<62)
		case "message-id":
			if v == "" {
				err = errors.New("empty message-id")
			}
			e.MessageID = v
		case "body":
			e.Body = v
			if v == "" {
				err = errors.New("empty body type")
			}
		case "smtputf8", "bounce":
			if v != "yes" {
				err = fmt.Errorf("%s takes only the value yes", key)
			}
			if key == "smtputf8" {
				e.SMTPUTF8 = true
			} else {
				e.Bounce = true
			}
		case "dsn-ret":
			e.DSN.Ret = v
			if v == "" {
				err = errors.New("empty dsn-ret")
			}
		case "dsn-envid":
			e.DSN.EnvID, err = decodeXtext(v)
			if err == nil && v == "" {
				err = errors.New("empty dsn-envid")
			}
		case "dsn-notify":
			e.DSN.Notify = strings.Split(v, ",")
		case "attempts":
			var a int64
			a, err = parseCount(v, maxAttempts)
			e.Attempts = int(a)
		case "last-attempt":
			e.LastAttempt, err = parseTime(v)
		case "next-attempt":
			e.NextAttempt, err = parseTime(v)
		default:
			return fail("unknown key %q", truncate(key, 40))
		}
		if err != nil {
			return fail("%s: %v", key, err)
		}
	}
	for _, k := range []string{"id", "arrival", "sender", "size", "attempts"} {
		if !seen[k] {
			return nil, fmt.Errorf("no %q line", k)
		}
	}
	if err := validate(e); err != nil {
		return nil, err
	}
	return e, nil
}

// validate checks what both the writer and the reader insist on. Its
// errors have no "queue:" prefix: callers say which file or call it was.
func validate(e *Entry) error {
	if !validID(e.ID) {
		return fmt.Errorf("%q is not a queue ID", truncate(e.ID, 40))
	}
	for _, t := range []struct {
		name     string
		t        time.Time
		required bool
	}{{"arrival", e.Arrival, true}, {"last-attempt", e.LastAttempt, false}, {"next-attempt", e.NextAttempt, false}} {
		if t.t.IsZero() {
			if t.required {
				return fmt.Errorf("no %s time", t.name)
			}
			continue
		}
		if y := t.t.UTC().Year(); y < 1 || y > 9999 {
			return fmt.Errorf("%s time %v is out of range", t.name, t.t)
		}
	}
	if e.Sender != "" {
		if err := checkAddress(e.Sender); err != nil {
			return fmt.Errorf("sender: %v", err)
		}
	}
	if e.Size < 0 || e.Size > 1<<62 {
		return fmt.Errorf("impossible size %d", e.Size)
	}
	if len(e.MessageID) > maxMessageID || strings.IndexFunc(e.MessageID, isControl) >= 0 {
		return errors.New("the message-id is longer than 998 octets or has a control character")
	}
	switch e.Body {
	case "", "7BIT", "8BITMIME":
	default:
		return fmt.Errorf("body type %q is neither 7BIT nor 8BITMIME", truncate(e.Body, 40))
	}
	switch e.DSN.Ret {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("dsn-ret %q is neither FULL nor HDRS", truncate(e.DSN.Ret, 40))
	}
	if err := checkNotify(e.DSN.Notify); err != nil {
		return err
	}
	if len(e.DSN.EnvID) > maxEnvID {
		return fmt.Errorf("dsn-envid is longer than %d octets (RFC 3461 §4.4)", maxEnvID)
	}
	for i := 0; i < len(e.DSN.EnvID); i++ {
		if c := e.DSN.EnvID[i]; c < 0x20 || c > 0x7e {
			return errors.New("dsn-envid has a character that is not printable ASCII (RFC 3461 §4.4)")
		}
	}
	if e.Attempts < 0 || e.Attempts > maxAttempts {
		return fmt.Errorf("impossible number of attempts %d", e.Attempts)
	}
	if len(e.Recipients) == 0 {
		return errors.New("no recipients")
	}
	if len(e.Recipients) > maxRecipients {
		return fmt.Errorf("more than %d recipients", maxRecipients)
	}
	for _, r := range e.Recipients {
		if err := checkAddress(r.Addr); err != nil {
			return fmt.Errorf("recipient: %v", err)
		}
		if _, ok := parseState(r.State.String()); !ok {
			return fmt.Errorf("recipient %q has an unknown state %d", r.Addr, int(r.State))
		}
		if len(r.Reply) > maxReply || strings.IndexFunc(r.Reply, isControl) >= 0 {
			return fmt.Errorf("the reply for %q is longer than %d octets or has a control character", r.Addr, maxReply)
		}
	}
	return nil
}

// checkNotify accepts RFC 3461 §4.1's NOTIFY: NEVER alone, or SUCCESS,
// FAILURE and DELAY, each at most once.
func checkNotify(n []string) error {
	if len(n) == 0 {
		return nil
	}
	if len(n) == 1 && n[0] == "NEVER" {
		return nil
	}
	seen := map[string]bool{}
	for _, v := range n {
		switch v {
		case "SUCCESS", "FAILURE", "DELAY":
			if seen[v] {
				return fmt.Errorf("dsn-notify names %s twice", v)
			}
			seen[v] = true
		default:
			return fmt.Errorf("dsn-notify %q is not NEVER or a list of SUCCESS, FAILURE and DELAY (RFC 3461 §4.1)", truncate(strings.Join(n, ","), 60))
		}
	}
	return nil
}

// encodeXtext encodes s as RFC 3461 §4 xtext: "+" and "=" and every octet
// outside "!".."~" become "+" and two upper-case hex digits.
func encodeXtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func decodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", errors.New("xtext: \"+\" without two hex digits")
			}
			v, ok := unhex(s[i+1], s[i+2])
			if !ok {
				return "", errors.New("xtext: \"+\" without two upper-case hex digits (RFC 3461 §4)")
			}
			b.WriteByte(v)
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", fmt.Errorf("xtext: character 0x%02x must be written as +%02X (RFC 3461 §4)", c, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func unhex(a, b byte) (byte, bool) {
	d := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	x, ok1 := d(a)
	y, ok2 := d(b)
	return x<<4 | y, ok1 && ok2
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// oneLine makes a reply safe to store and show: control characters become
// spaces or "?", invalid UTF-8 becomes "?", runs of white space collapse,
// and the result is cut to max octets on a character boundary.
func oneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			space = true
			continue
		case isControl(r):
			r = '?'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return truncate(b.String(), max)
}

// truncate cuts s to at most max octets without splitting a UTF-8
// sequence.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
