// Package inject is message intake: it reads the caller's message once,
// normalises line endings, splits and rewrites the header, works out the
// envelope, and streams everything into a spool file. It never holds the
// message body in memory, and it changes no body byte except line endings and
// the sendmail dot conventions.
//
// What intake does to the header (the fields it owns):
//   - deletes Bcc, Resent-Bcc, Return-Path and Content-Length, always
//     (Postfix cleanup's message_drop_headers, qmail-inject);
//   - adds Date, Message-ID and From when missing, or Resent-Date,
//     Resent-Message-ID and Resent-From for a resent message, at the end of
//     the header as Postfix does;
//   - qualifies bare local names ("root") with the configured domain in
//     To, Cc, From, Reply-To, Sender and their Resent- twins, by inserting
//     "@domain" and touching no other byte.
//
// Every other field is written back exactly as it came in.
package inject

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// DefaultMaxHeaderBytes bounds the header so that a hostile or broken caller
// cannot make intake allocate without limit.
const DefaultMaxHeaderBytes = 1 << 20

// Options control one intake. The dialect front ends fill them in.
type Options struct {
	// Recipients are the raw recipient operands; each one is an address list.
	Recipients []string
	// Extract adds the header recipients (sendmail -t): To, Cc and Bcc, or
	// only Resent-To, Resent-Cc and Resent-Bcc once any of those is present.
	Extract bool
	// IgnoreDots is sendmail -i/-oi. Without it a line holding a single dot
	// ends the input and a leading ".." loses one dot (Sendmail 8 collect.c).
	IgnoreDots bool
	// Sender is the raw -f/-r value; SenderSet says whether one was given.
	// "" and "<>" mean the null sender.
	Sender    string
	SenderSet bool
	// DefaultSender is used when no sender is given: the configured "from",
	// or, when that is empty, User@Domain.
	DefaultSender string
	// User is the login name of the caller.
	User string
	// FullName is the display name for a generated From field (-F, NAME).
	FullName string
	// Domain qualifies bare local names, in the envelope and in the header.
	Domain string
	// Hostname is the right-hand side of generated Message-IDs.
	Hostname string
	// MaxHeaderBytes; 0 means DefaultMaxHeaderBytes.
	MaxHeaderBytes int64
	// SpoolDir receives the spool file; "" means os.TempDir().
	SpoolDir string
	// SpoolFile, when set, receives the message instead of a temporary
	// file that intake creates and unlinks: the queue passes its own
	// tmp/ file so that a deferred message is committed without a copy.
	// The caller owns it; Submission.Close does not close it.
	SpoolFile *os.File
	// Now is the clock, for tests. nil means time.Now.
	Now func() time.Time
}

// Kind classifies intake errors; the front end maps each to its exit code.
type Kind int

const (
	// KindUsage: the caller gave no usable recipients (EX_USAGE).
	KindUsage Kind = iota + 1
	// KindData: the input is unusable: a bad address, a header too large (EX_DATAERR).
	KindData
	// KindRead: standard input could not be read (EX_IOERR).
	KindRead
	// KindSpool: the spool file could not be created or written (EX_CANTCREAT).
	KindSpool
)

// Error is an intake failure. Its text is meant for the user.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func dataErr(format string, a ...any) error {
	return &Error{Kind: KindData, Msg: fmt.Sprintf(format, a...)}
}

// Submission is the result of intake: the envelope and the message, whose
// bytes live in an already-unlinked spool file, so a crash leaves nothing
// behind. Close releases it.
type Submission struct {
	Envelope  relay.Envelope
	Message   relay.Message
	MessageID string // the Message-ID (or Resent-Message-ID) field's value
	file      *os.File
}

// Close releases the spool file.
func (s *Submission) Close() error {
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

const bufSize = 64 << 10

// Intake reads the message from r and returns it spooled, with its envelope.
func Intake(r io.Reader, opts Options) (*Submission, error) {
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	in := &intake{opts: opts}

	// Addresses from the command line are checked before stdin is read, so
	// an injection attempt is refused without consuming the message.
	sender, err := in.sender()
	if err != nil {
		return nil, err
	}
	for _, arg := range opts.Recipients {
		if err := in.addArgRecipient(arg); err != nil {
			return nil, err
		}
	}

	f := opts.SpoolFile
	owned := f == nil
	if owned {
		var err error
		f, err = os.CreateTemp(opts.SpoolDir, "relaymail-intake-*")
		if err != nil {
			return nil, &Error{Kind: KindSpool, Msg: "cannot create a spool file", Err: err}
		}
		// Unlink at once: the open descriptor keeps the data, and a crash
		// or a kill leaves no stray file.
		os.Remove(f.Name())
	}
	sub := &Submission{}
	if owned {
		sub.file = f
	}
	fail := func(err error) (*Submission, error) {
		if owned {
			f.Close()
		}
		return nil, err
	}

	w := &spoolWriter{w: bufio.NewWriterSize(f, bufSize)}
	lr := &lineReader{br: bufio.NewReaderSize(newNormalizer(r, bufSize), bufSize), dots: !opts.IgnoreDots}
	if err := in.header(lr, w); err != nil {
		return fail(err)
	}
	if err := copyBody(lr, w, in.bodyComplete); err != nil {
		return fail(err)
	}
	if err := w.w.Flush(); err != nil {
		return fail(&Error{Kind: KindSpool, Msg: "cannot write the spool file", Err: err})
	}

	if len(in.rcpts) == 0 {
		msg := "recipient addresses must be specified on the command line or via the -t option"
		if opts.Extract {
			msg = "no recipient addresses found in message header"
		}
		return fail(&Error{Kind: KindUsage, Msg: msg})
	}
	sub.Envelope = in.envelope(sender)
	sub.Message = relay.Message{Data: f, Size: w.n, EightBit: w.eightBit, LongLines: w.longLines}
	sub.MessageID = in.messageID
	return sub, nil
}

// Envelope works out the sender and the argument recipients exactly as
// Intake would, without reading a message: sendmail -bv shows the rewritten
// addresses with it. Header recipients (-t) need a message and are ignored.
func Envelope(opts Options) (relay.Envelope, error) {
	in := &intake{opts: opts}
	sender, err := in.sender()
	if err != nil {
		return relay.Envelope{}, err
	}
	for _, arg := range opts.Recipients {
		if err := in.addArgRecipient(arg); err != nil {
			return relay.Envelope{}, err
		}
	}
	return in.envelope(sender), nil
}

// envelope assembles the result; a non-ASCII address needs SMTPUTF8 on the
// wire (RFC 6531).
func (in *intake) envelope(sender string) relay.Envelope {
	env := relay.Envelope{Sender: sender, Recipients: in.rcpts}
	for _, a := range append([]string{sender}, in.rcpts...) {
		if !relay.IsASCII(a) {
			env.SMTPUTF8 = true
		}
	}
	return env
}

type intake struct {
	opts      Options
	rcpts     []string
	seen      map[string]bool
	messageID string
	// envSender is the envelope sender ("" for <>); defaultAddr is the
	// caller's own address, for a From field when the sender is <>.
	envSender, defaultAddr string
	bodyComplete           bool
}

// sender works out the envelope sender: -f, else the configured from,
// else the login name, each qualified with the domain.
func (in *intake) sender() (string, error) {
	o := in.opts
	what, raw := "the configured sender", o.DefaultSender
	if raw == "" {
		what, raw = "the login name", o.User
	}
	def, defErr := in.oneAddress(what, raw)
	in.defaultAddr = def
	if !o.SenderSet {
		in.envSender = def
		return def, defErr
	}
	if t := strings.TrimSpace(o.Sender); t == "" || t == "<>" {
		// The From field of a message with the null sender needs the
		// caller's own address, so here the fallback must be good.
		in.envSender = ""
		return "", defErr
	}
	s, err := in.oneAddress("sender", o.Sender)
	if err != nil {
		return "", err
	}
	if defErr != nil {
		// A valid -f does not depend on the fallback.
		in.defaultAddr = s
	}
	in.envSender = s
	return s, nil
}

func (in *intake) oneAddress(what, raw string) (string, error) {
	if err := checkRaw(what, raw); err != nil {
		return "", err
	}
	list, err := parseAddressList(raw, false)
	if err != nil {
		return "", dataErr("%s %q is not a valid address: %s (write e.g. -f user@example.com)", what, raw, reason(err))
	}
	if len(list) != 1 {
		return "", dataErr("%s %q must be exactly one address (write e.g. -f user@example.com)", what, raw)
	}
	addr := in.qualify(list[0])
	if err := checkEnvelopeAddress(what, addr); err != nil {
		return "", err
	}
	return addr, nil
}

func reason(err error) string {
	var ae *AddressError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return err.Error()
}

func (in *intake) qualify(m mailbox) string {
	if m.domain == "" {
		return m.local + "@" + in.opts.Domain
	}
	return m.addr()
}

// checkRaw refuses control characters anywhere in a raw argument, before any
// parsing: CR and LF are how a header or SMTP command would be injected.
func checkRaw(what, raw string) error {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < ' ' || c == 0x7f {
			return dataErr("%s %q contains the control character 0x%02x; addresses may not contain CR, LF, NUL or other control characters", what, raw, c)
		}
	}
	return nil
}

// checkEnvelopeAddress applies CheckAddress and turns its verdict into a
// data error that names the address's role.
func checkEnvelopeAddress(what, addr string) error {
	if err := checkRaw(what, addr); err != nil {
		return err
	}
	if err := CheckAddress(addr); err != nil {
		if errors.Is(err, errNoDomain) {
			return dataErr("%s %q has no domain; set the domain key in relaymail.conf", what, addr)
		}
		return dataErr("%s %v", what, err)
	}
	return nil
}

var errNoDomain = errors.New("has no domain")

// CheckAddress applies the rules an envelope address must meet before it
// can go on the wire: no control characters (CR and LF would inject
// protocol commands), no angle brackets, a local part and a domain, and the
// RFC 5321 §4.5.3.1 length limits. The queue applies the same check to
// every address it reads back from the spool.
func CheckAddress(addr string) error {
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c < ' ' || c == 0x7f {
			return fmt.Errorf("%q contains the control character 0x%02x", addr, c)
		}
	}
	if strings.ContainsAny(addr, "<>") {
		return fmt.Errorf("%q contains \"<\" or \">\"", addr)
	}
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i+1:]
	}
	switch {
	case local == "":
		return fmt.Errorf("%q has an empty local part", addr)
	case len(local) > 64:
		return fmt.Errorf("%q: the local part is longer than 64 octets (RFC 5321 §4.5.3.1.1)", addr)
	case len(domain) > 255:
		return fmt.Errorf("%q: the domain is longer than 255 octets (RFC 5321 §4.5.3.1.2)", addr)
	case len(addr) > 254:
		return fmt.Errorf("%q is longer than the 256-octet path limit (RFC 5321 §4.5.3.1.3)", addr)
	case domain == "":
		return fmt.Errorf("%q %w", addr, errNoDomain)
	}
	return nil
}

func (in *intake) addArgRecipient(arg string) error {
	if err := checkRaw("recipient", arg); err != nil {
		return err
	}
	list, err := parseAddressList(arg, false)
	if err != nil {
		return dataErr("recipient %q is not a valid address list: %s (write e.g. user@example.com, or several separated by commas)", arg, reason(err))
	}
	for _, m := range list {
		if err := in.addRecipient("recipient", m); err != nil {
			return err
		}
	}
	return nil
}

func (in *intake) addRecipient(what string, m mailbox) error {
	addr := in.qualify(m)
	if err := checkEnvelopeAddress(what, addr); err != nil {
		return err
	}
	key := dedupKey(addr)
	if in.seen == nil {
		in.seen = map[string]bool{}
	}
	if in.seen[key] {
		return nil
	}
	in.seen[key] = true
	in.rcpts = append(in.rcpts, addr)
	return nil
}

// dedupKey compares local parts exactly (they may be case-sensitive, RFC
// 5321 §2.4) and domains without regard to case.
func dedupKey(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i] + "@" + strings.ToLower(addr[i+1:])
	}
	return addr
}

func newMessageID(now time.Time, host string) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("<%s.%s@%s>", now.UTC().Format("20060102150405"), hex.EncodeToString(b[:]), host)
}
