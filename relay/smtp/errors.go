package smtp

import (
	"fmt"

	"github.com/relaymail/relaymail/relay"
)

// ReplyError is a server reply that refused a command, or a reply the client
// did not expect. The errors returned by Dial, Send and Verify wrap it, inside
// a relay.Error that carries the class (relay.ClassOf), whenever the failure
// came with a reply; find it with errors.As.
type ReplyError struct {
	Code     int
	Enhanced string // RFC 3463 code ("5.7.8"), "" when the server gave none
	Text     string // the reply text, on one line, without code and enhanced code
	// Command is the command that was refused, without its arguments
	// ("EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET"),
	// "greeting" for the server's first reply, or "end of data" for the
	// reply after the message.
	Command string
	lmtp    bool
}

func newReplyError(cmd string, r *reply, lmtp bool) *ReplyError {
	return &ReplyError{Code: r.Code, Enhanced: r.Enhanced, Text: r.Text(), Command: cmd, lmtp: lmtp}
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("%s: %s: %s", protoName(e.lmtp), e.Command, e.reply())
}

// reply renders "550 5.1.1 text".
func (e *ReplyError) reply() string {
	s := fmt.Sprint(e.Code)
	if e.Enhanced != "" {
		s += " " + e.Enhanced
	}
	if e.Text != "" {
		s += " " + e.Text
	}
	return s
}

// Temporary reports whether the reply was a transient (4xx) failure
// (RFC 5321 §4.2.1).
func (e *ReplyError) Temporary() bool { return e.Code/100 == 4 }

// class is the relay class of a reply code: 2xx delivered, 5xx failed, and
// everything else, 4xx or unexpected, deferred (a relay never drops mail on
// a surprise).
func class(code int) relay.Class {
	switch code / 100 {
	case 2:
		return relay.Delivered
	case 5:
		return relay.Failed
	default:
		return relay.Deferred
	}
}

func protoName(lmtp bool) string {
	if lmtp {
		return "lmtp"
	}
	return "smtp"
}

// sessionError is the unclassified error inside the relay.Error a Client
// returns: a complete description (it names the server) and the cause, for
// errors.Is and errors.As (io.EOF, os.ErrDeadlineExceeded, *ReplyError,
// x509 errors, ...).
type sessionError struct {
	msg string
	err error
}

func (e *sessionError) Error() string { return e.msg }
func (e *sessionError) Unwrap() error { return e.err }

// failure says why a session cannot go on, or why a step of it failed. It
// becomes a classified error at the API boundary (Client.wrap).
type failure struct {
	class relay.Class // Deferred unless a reply or a local rule says permanent
	msg   string      // the complete description, without the "smtp: " prefix
	err   error       // the cause
	reply *reply      // the reply that caused it, if any (e.g. a 421)
}

func (f *failure) Error() string { return f.msg }
