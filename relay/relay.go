// Package relay holds the vocabulary shared by intake, the protocol clients and
// the queue: the envelope, the message on disk, per-recipient results and the
// Relayer interface, plus ordered failover across several smarthosts.
//
// The protocol packages (relay/qmtp, relay/smtp) import this package, never the
// other way round.
package relay

import (
	"context"
	"io"
	"strings"
)

// Class is the outcome of one delivery attempt for one recipient. Every failure
// is classified once, where the server's reply is read.
type Class int

const (
	// Deferred is a temporary failure: a 4xx reply, QMTP Z, a network error, a
	// timeout, a missing reply, or anything unknown. The zero value is Deferred
	// on purpose: a result nobody filled in must never count as final.
	Deferred Class = iota
	// Delivered means the smarthost accepted responsibility for the recipient.
	Delivered
	// Failed is a permanent failure: a 5xx reply or QMTP D.
	Failed
)

func (c Class) String() string {
	switch c {
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	default:
		return "deferred"
	}
}

// Scope says what a failure applies to. A recipient rejected at RCPT time is
// RecipientScope; a sender, size or content rejection that hit every recipient
// alike is MessageScope. The exit code differs (EX_NOUSER vs EX_UNAVAILABLE).
type Scope int

const (
	RecipientScope Scope = iota
	MessageScope
)

// DSN carries the RFC 3461 parameters given with sendmail's -N, -R and -V.
// Empty fields mean "not requested": the server's default applies.
type DSN struct {
	// Notify is NEVER alone, or a subset of SUCCESS, FAILURE and DELAY, in
	// upper case as they go on the wire.
	Notify []string
	// Ret is FULL or HDRS.
	Ret string
	// EnvID is the envelope identifier, printable ASCII, at most 100 octets.
	EnvID string
}

// Envelope is what travels outside the message: the return path, the
// recipients in order, and the parameters the SMTP client turns into MAIL and
// RCPT options.
type Envelope struct {
	// Sender is the envelope sender. The empty string is the null sender <>.
	Sender string
	// Recipients in the order the caller gave them. Intake merges
	// duplicates, but the relay layer keeps whatever it is given, one
	// result per entry, because protocol replies are matched by position.
	Recipients []string
	DSN        DSN
	// Body is the body type the caller declared with -B: "7BIT", "8BITMIME",
	// or "" to let the client decide from Message.EightBit.
	Body string
	// SMTPUTF8 is set when the caller asked for it (-O SMTPUTF8=yes) or an
	// address is not ASCII.
	SMTPUTF8 bool
}

// Message is the message text after intake: LF line endings, no CR bytes,
// every line terminated. It lives in a spool file and is read through
// io.ReaderAt so that several readers (failover, pipelined packages) can
// stream it independently without holding it in memory.
type Message struct {
	Data io.ReaderAt
	Size int64
	// EightBit is true when any byte is 0x80 or above.
	EightBit bool
	// LongLines is true when any line is longer than 998 octets, the RFC 5322
	// limit that SMTP relays enforce.
	LongLines bool
}

// Reader returns a fresh reader over the whole message.
func (m *Message) Reader() io.Reader {
	return io.NewSectionReader(m.Data, 0, m.Size)
}

// TrackedReader returns a fresh reader over the whole message that
// remembers a read error. After io.Copy to a connection, a protocol client
// checks Err to tell a failing spool file (our fault: the message cannot be
// sent anywhere) from a failing connection (the server's).
func (m *Message) TrackedReader() *MessageReader {
	return &MessageReader{r: m.Reader()}
}

// MessageReader is a reader over a Message that keeps its read error.
type MessageReader struct {
	r   io.Reader
	Err error // the first read error other than io.EOF
}

func (m *MessageReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF && m.Err == nil {
		m.Err = err
	}
	return n, err
}

// Result is the outcome for one envelope recipient.
type Result struct {
	Recipient string
	Class     Class
	Scope     Scope
	// Code is the SMTP/LMTP reply code, 0 for QMTP and for local decisions.
	Code int
	// Enhanced is the RFC 3463 status code ("5.1.1"), when the server gave one.
	Enhanced string
	// Text is the server's reply text, or our own description of what went
	// wrong when there was no reply.
	Text string
	// Host names the smarthost that produced the result.
	Host string
}

// Relayer delivers one message to one smarthost.
//
// Relay returns exactly one Result per envelope recipient, in envelope order,
// even when it also returns an error. A non-nil error describes a failure of
// the session as a whole (connection refused, protocol violation, timeout);
// the recipients it left undecided are Deferred. Relay never returns Delivered
// for a recipient the server did not accept.
type Relayer interface {
	Relay(ctx context.Context, env *Envelope, msg *Message) ([]Result, error)
	// String names the smarthost for logs and error messages, without secrets.
	String() string
}

// IsASCII reports whether s has only 7-bit bytes.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ParseEnhanced finds an RFC 3463 status code at the start of text (SMTP
// style, "5.1.1 user unknown") or inside qmail's "(#5.1.1)" convention, and
// returns it with the rest of the text. It returns "" when there is none.
func ParseEnhanced(text string) string {
	if c := leadingEnhanced(text); c != "" {
		return c
	}
	if i := strings.Index(text, "(#"); i >= 0 {
		rest := text[i+2:]
		if j := strings.IndexByte(rest, ')'); j > 0 {
			if c := leadingEnhanced(rest[:j]); c == rest[:j] {
				return c
			}
		}
	}
	return ""
}

func leadingEnhanced(s string) string {
	// class "." subject "." detail, class in 2,4,5; subject 1-3 digits; detail 1-3 digits.
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return ""
	}
	i := 2
	n := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 3 {
		i, n = i+1, n+1
	}
	if n == 0 || i >= len(s) || s[i] != '.' {
		return ""
	}
	i++
	n = 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 3 {
		i, n = i+1, n+1
	}
	if n == 0 {
		return ""
	}
	if i < len(s) && s[i] != ' ' && s[i] != '\t' {
		return ""
	}
	return s[:i]
}

// ScopeOf guesses whether a permanent failure concerns the recipient or the
// whole message from its RFC 3463 code: X.1.x (addressing) other than the
// sender codes X.1.7 and X.1.8, X.2.x (mailbox) and X.7.1 (delivery not
// authorised, the usual relaying refusal) concern the recipient. Everything
// else — sender, size, content, system — concerns the message. Without a code
// the answer is RecipientScope, because a per-recipient reply is the normal
// case.
func ScopeOf(enhanced string) Scope {
	if enhanced == "" {
		return RecipientScope
	}
	parts := strings.SplitN(enhanced, ".", 3)
	if len(parts) != 3 {
		return RecipientScope
	}
	switch parts[1] {
	case "1":
		if parts[2] == "7" || parts[2] == "8" {
			return MessageScope
		}
		return RecipientScope
	case "2":
		return RecipientScope
	case "7":
		if parts[2] == "1" {
			return RecipientScope
		}
		return MessageScope
	default:
		return MessageScope
	}
}

// Session delivers several messages over one connection: queue runs use it
// so that a backlog costs one connection, not one per message. Send has the
// same contract as Relayer.Relay. After Send returns an error the session is
// unusable and the caller opens a new one.
type Session interface {
	Send(ctx context.Context, env *Envelope, msg *Message) ([]Result, error)
	Close() error
}

// SessionRelayer is a Relayer that can keep one connection open for
// several messages.
type SessionRelayer interface {
	Relayer
	Open(ctx context.Context) (Session, error)
}

// Batch is one message of a batch.
type Batch struct {
	Envelope *Envelope
	Message  *Message
}

// BatchSender is a Session that can send several messages without waiting
// for the replies in between (QMTP pipelining). It returns one result slice
// per message, in order, each complete.
type BatchSender interface {
	SendBatch(ctx context.Context, batch []Batch) ([][]Result, error)
}
