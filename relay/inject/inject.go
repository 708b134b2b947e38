// Package inject is message intake: it reads the caller's message once,
// normalises line endings, splits and rewrites the header, works out the
// envelope, and streams everything into a spool file, or keeps a message of
// at most Options.MaxMemory bytes in memory. It never holds more than that
// of a message in memory, and it changes no body byte except line endings
// and the sendmail dot conventions.
//
// What intake does to the header (the fields it owns):
//   - deletes Bcc, Resent-Bcc, Return-Path and Content-Length, always
//     (Postfix cleanup's message_drop_headers, qmail-inject);
//   - adds Date, Message-ID and From when missing, or Resent-Date,
//     Resent-Message-ID and Resent-From for a resent message, at the end of
//     the header as Postfix does;
//   - qualifies bare local names ("root") with the configured domain in
//     To, Cc, From, Reply-To, Sender and their Resent- twins, by inserting
//     "@domain" and touching no other byte;
//   - expands aliases (relay/aliases) in the envelope and in To and Cc, so
//     that the smarthost and the reader see the same address.
//
// Every other field is written back exactly as it came in.
//
// The zero value of Options is sendmail's dialect. The other dialect,
// qmail-inject(8), differs in what it does, not in how intake works, so it
// is a set of options (MboxLine, ReturnPathSetsSender, GeneratedFirst, a
// Rewrite hook, ...) that cmd/qmail-inject fills in; there is one intake.
package inject

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/aliases"
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
	// MaxMessageBytes bounds the whole message as spooled; 0 means no
	// limit.
	MaxMessageBytes int64
	// MaxMemory is how much of a message intake keeps in memory; a larger
	// message goes to a file (Spill). 0 means DefaultMaxMemory.
	MaxMemory int
	// Spill, when set, provides the file a message goes to once it
	// outgrows MaxMemory: the queue passes its own tmp/ file, so that a
	// deferred message is committed without a copy. The caller owns it;
	// Submission.Close does not close it. Without Spill, intake creates a
	// temporary file in SpoolDir and unlinks it at once.
	Spill func() (*os.File, error)
	// SpoolDir receives the temporary file; "" means os.TempDir().
	SpoolDir string
	// Now is the clock, for tests. nil means time.Now.
	Now func() time.Time

	// Dialect options. The zero value of each is sendmail's behaviour;
	// cmd/qmail-inject sets them for qmail-inject(8).

	// Strategy chooses between argument and header recipients
	// (qmail-inject -a, -h, -A, -H).
	Strategy Strategy
	// ApparentlyTo adds Apparently-To to the header recipient fields.
	ApparentlyTo bool
	// ResentRecipientsOnly takes the header recipients of a resent message
	// (one with any Resent- field) only from Resent-To, Resent-Cc and
	// Resent-Bcc, even when it has none of them (qmail-inject). Without it
	// those fields are used only when one is present (Postfix).
	ResentRecipientsOnly bool
	// TolerateBadRecipientFields leaves a header recipient field that does
	// not parse as it is and takes no recipients from it (notqmail's
	// rwmayfail); without it such a field is a data error.
	TolerateBadRecipientFields bool
	// AllowNoRecipients accepts a message without any recipient
	// (qmail-inject -n prints such a message all the same).
	AllowNoRecipients bool
	// MboxLine turns every header line that begins "From " into the field
	// "MBOX-Line: From ..." (qmail-inject's headerbody.c); without it only
	// leading such lines are recognised, and dropped (Postfix).
	MboxLine bool
	// ReturnPathSetsSender: the first Return-Path field sets the envelope
	// sender when SenderSet is false (qmail-header(5)).
	ReturnPathSetsSender bool
	// VERPSuffix is appended to an envelope sender that comes from
	// Return-Path or from the default, not from SenderSet (qmail-inject's
	// QMAILINJECT=r appends "-@[]").
	VERPSuffix string
	// DeleteFrom and DeleteMessageID drop the caller's From and
	// Message-ID fields, so that new ones are generated (QMAILINJECT f
	// and i).
	DeleteFrom, DeleteMessageID bool
	// AddCcWhenNoRecipients adds "Cc: recipient list not shown: ;" (or
	// Resent-Cc to a resent message) when there is no To and no Cc.
	AddCcWhenNoRecipients bool
	// MailFollowupTo lists mailing list addresses (QMAILMFTFILE): when To
	// or Cc names one of them, compared without regard to case, and the
	// message has no Mail-Followup-To, one is added that lists every To
	// and Cc address.
	MailFollowupTo []string
	// GeneratedFirst puts the generated fields before the caller's
	// (qmail-inject) instead of after them (Postfix).
	GeneratedFirst bool
	// DateFormat renders the value of a generated Date field; nil is the
	// RFC 5322 form in local time.
	DateFormat func(time.Time) string
	// MessageID renders a generated Message-ID, angle brackets included;
	// nil is <time.random@Hostname>.
	MessageID func(time.Time) string
	// FromAddress is the address of a generated From field; "" is the
	// envelope sender (or, for the null sender, the caller's own address).
	FromAddress string
	// FromFormat renders the value of a generated From field from the
	// display name (maybe "") and the address; nil writes the name as a
	// phrase before "<address>".
	FromFormat func(name, addr string) string
	// Rewrite, when set, replaces the qualification of bare names with
	// Domain: it rewrites every address of the envelope and of the
	// RewriteFields. Source routes are then also removed from the header.
	Rewrite func(Address) string
	// RewriteFields are the header fields whose addresses are rewritten;
	// nil is To, Cc, From, Reply-To, Sender and their Resent- twins.
	RewriteFields []string
	// StrictFields makes a rewritten field that does not parse a data
	// error, except the recipient fields (qmail-inject's "unable to parse
	// this line"); without it such a field is kept as it is.
	StrictFields bool
	// SpaceIsComma reads "a b" as "a, b" in recipient arguments and
	// address fields, and inserts the comma into the field (qmail-header(5)).
	SpaceIsComma bool

	// Local addresses, shared by both dialects.

	// Aliases expands local recipients: in the envelope, and in the To and
	// Cc fields (and their Resent- twins), where the address is replaced
	// and the display name kept.
	Aliases *aliases.Map
	// LocalDomains are the domains whose addresses Aliases applies to,
	// besides bare names: the configured domain and host name.
	LocalDomains []string
	// FromRewrite is the rewrite_from setting.
	FromRewrite FromRewrite
	// Masquerade is the address FromAlways puts into every From field and
	// the envelope sender; "" is the default sender.
	Masquerade string
	// Trace, when set, is told about each rewrite of a sender or recipient
	// address, one line each, for sendmail -bv.
	Trace func(string)
}

// Strategy says where the recipients come from.
type Strategy int

const (
	// StrategyDefault is sendmail's: the arguments, plus the header with
	// Extract (-t).
	StrategyDefault Strategy = iota
	// StrategyArgs uses only the arguments (qmail-inject -a).
	StrategyArgs
	// StrategyHeader uses only the header (qmail-inject -h).
	StrategyHeader
	// StrategyArgsOrHeader uses the arguments, or the header when there
	// are none (qmail-inject -A, its default).
	StrategyArgsOrHeader
	// StrategyBoth uses both (qmail-inject -H, sendmail -t).
	StrategyBoth
)

// FromRewrite is what intake does to the From field.
type FromRewrite int

const (
	// FromMissing fills in a missing From and qualifies a bare one (the
	// default).
	FromMissing FromRewrite = iota
	// FromNever leaves From fields as the caller wrote them and adds none.
	FromNever
	// FromAlways puts Masquerade into every From field, keeping the display
	// name, and makes it the envelope sender (the null sender stays).
	FromAlways
)

// Address is one mailbox as intake's address scanner found it, for an
// Options.Rewrite hook.
type Address struct {
	Local  string // as written: quotes kept, comments and folding removed
	Domain string // "" for a bare local name; a literal keeps its brackets
	Route  bool   // an obsolete source route (RFC 5322 §4.4) was removed
}

// String is the address as local@domain, or the bare local part.
func (a Address) String() string {
	if a.Domain == "" {
		return a.Local
	}
	return a.Local + "@" + a.Domain
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
	// Spilled is true when the message went to a file (Options.Spill or
	// a temporary one), false when it is held in memory.
	Spilled bool
	file    *os.File
}

// Close releases the temporary file, if intake made one.
func (s *Submission) Close() error {
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

const bufSize = 64 << 10

// DefaultMaxMemory is the largest message intake keeps in memory. Most mail
// a program sends (a cron report, a password reset) is far smaller, and
// such a message then costs no file at all when it is delivered at once:
// creating and removing a spool file is a journalled metadata change that
// waits behind every other writer on a busy disk. 64 KiB is one buffer's
// worth: a larger message costs one 64 KiB copy more than before, where
// 256 KiB (grown by doubling) put 0.5 MB on the peak RSS of every large
// message, against a budget of 1.2 × a small one's (bench/README.md).
const DefaultMaxMemory = bufSize

// spillWriter keeps the message in memory until it outgrows max, then moves
// what it has to the file open returns and writes on there.
type spillWriter struct {
	buf  []byte
	max  int
	open func() (*os.File, error)
	file *os.File
}

func (w *spillWriter) Write(p []byte) (int, error) {
	if w.file == nil {
		if len(w.buf)+len(p) <= w.max {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		f, err := w.open()
		if err != nil {
			return 0, &Error{Kind: KindSpool, Msg: "cannot create a spool file", Err: err}
		}
		w.file = f
		if _, err := f.Write(w.buf); err != nil {
			return 0, err
		}
		w.buf = nil
	}
	return w.file.Write(p)
}

// Intake reads the message from r and returns it spooled, with its envelope.
func Intake(r io.Reader, opts Options) (*Submission, error) {
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	in := newIntake(opts)

	// Addresses from the command line are checked before stdin is read, so
	// an injection attempt is refused without consuming the message.
	if _, err := in.sender(); err != nil {
		return nil, err
	}
	if err := in.argRecipients(); err != nil {
		return nil, err
	}

	sub := &Submission{}
	sw := &spillWriter{max: opts.MaxMemory, open: opts.Spill}
	if sw.max <= 0 {
		sw.max = DefaultMaxMemory
	}
	if sw.open == nil {
		sw.open = func() (*os.File, error) {
			f, err := os.CreateTemp(opts.SpoolDir, "relaymail-intake-*")
			if err != nil {
				return nil, err
			}
			// Unlink at once: the open descriptor keeps the data, and a
			// crash or a kill leaves no stray file.
			os.Remove(f.Name())
			sub.file = f
			return f, nil
		}
	}
	fail := func(err error) (*Submission, error) {
		sub.Close()
		return nil, err
	}

	w := &spoolWriter{w: bufio.NewWriterSize(sw, bufSize), max: opts.MaxMessageBytes}
	lr := &lineReader{br: bufio.NewReaderSize(newNormalizer(r, bufSize), bufSize), dots: !opts.IgnoreDots}
	if err := in.header(lr, w); err != nil {
		return fail(err)
	}
	if err := copyBody(lr, w, in.bodyComplete); err != nil {
		return fail(err)
	}
	if err := w.w.Flush(); err != nil {
		return fail(spoolErr(err))
	}

	if len(in.rcpts) == 0 && !opts.AllowNoRecipients {
		msg := "recipient addresses must be specified on the command line or via the -t option"
		switch {
		case opts.Extract:
			msg = "no recipient addresses found in message header"
		case opts.Strategy != StrategyDefault:
			msg = "no recipients: none given as arguments and none taken from the header (give them as arguments, or in To, Cc or Bcc)"
		}
		return fail(&Error{Kind: KindUsage, Msg: msg})
	}
	sub.Envelope = in.envelope(in.finishSender())
	sub.Message = relay.Message{Size: w.n, EightBit: w.eightBit, LongLines: w.longLines}
	if sw.file != nil {
		sub.Message.Data, sub.Spilled = sw.file, true
	} else {
		sub.Message.Data = bytes.NewReader(sw.buf)
	}
	sub.MessageID = in.messageID
	return sub, nil
}

// Envelope works out the sender and the argument recipients exactly as
// Intake would, without reading a message: sendmail -bv shows the rewritten
// addresses with it. Header recipients (-t) need a message and are ignored.
func Envelope(opts Options) (relay.Envelope, error) {
	in := newIntake(opts)
	if _, err := in.sender(); err != nil {
		return relay.Envelope{}, err
	}
	if err := in.argRecipients(); err != nil {
		return relay.Envelope{}, err
	}
	return in.envelope(in.finishSender()), nil
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
	// senderFixed: the sender came from SenderSet, so Return-Path cannot
	// change it.
	senderFixed, returnPathSeen bool
	bodyComplete                bool
	rewriteFields               map[string]bool
	resolver                    *aliases.Resolver
}

func newIntake(opts Options) *intake {
	in := &intake{opts: opts, rewriteFields: qualifyFields}
	if opts.RewriteFields != nil {
		in.rewriteFields = map[string]bool{}
		for _, k := range opts.RewriteFields {
			in.rewriteFields[textproto.CanonicalMIMEHeaderKey(k)] = true
		}
	}
	if opts.Aliases != nil && opts.Aliases.Len() > 0 {
		in.resolver = &aliases.Resolver{Map: opts.Aliases, Local: in.localName, Qualify: in.qualifyTarget}
	}
	return in
}

// localName is the alias key of addr when addr is one of ours: a bare name,
// or a name at one of LocalDomains.
func (in *intake) localName(addr string) (string, bool) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr, true
	}
	dom := addr[i+1:]
	for _, d := range in.opts.LocalDomains {
		if d != "" && strings.EqualFold(d, dom) {
			return addr[:i], true
		}
	}
	return "", false
}

// qualifyTarget turns an alias target into a full address, as any other
// address is rewritten.
func (in *intake) qualifyTarget(target string) (string, error) {
	list, err := parseAddressList(target, false)
	if err != nil {
		return "", fmt.Errorf("%q is not an address: %s", target, reason(err))
	}
	if len(list) != 1 {
		return "", fmt.Errorf("%q is not one address", target)
	}
	return in.rewriteAddr(list[0]), nil
}

func (in *intake) trace(format string, a ...any) {
	if in.opts.Trace != nil {
		in.opts.Trace(fmt.Sprintf(format, a...))
	}
}

// useArgs and useHeader apply the recipient strategy.
func (in *intake) useArgs() bool { return in.opts.Strategy != StrategyHeader }

func (in *intake) useHeader() bool {
	switch in.opts.Strategy {
	case StrategyHeader, StrategyBoth:
		return true
	case StrategyArgsOrHeader:
		return len(in.opts.Recipients) == 0
	}
	return in.opts.Extract
}

func (in *intake) argRecipients() error {
	if !in.useArgs() {
		return nil
	}
	for _, arg := range in.opts.Recipients {
		if err := in.addArgRecipient(arg); err != nil {
			return err
		}
	}
	return nil
}

// masquerade is the address rewrite_from always puts everywhere.
func (in *intake) masquerade() string {
	if in.opts.Masquerade != "" {
		if a, err := in.qualifyTarget(in.opts.Masquerade); err == nil {
			return a
		}
	}
	return in.defaultAddr
}

// finishSender applies rewrite_from always to the sender found so far and
// returns it.
func (in *intake) finishSender() string {
	if in.opts.FromRewrite == FromAlways && in.envSender != "" {
		if m := in.masquerade(); m != "" && m != in.envSender {
			in.trace("sender %s -> %s (rewrite_from always)", in.envSender, m)
			in.envSender = m
		}
	}
	return in.envSender
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
		if defErr == nil && o.VERPSuffix != "" {
			def += o.VERPSuffix
		}
		in.envSender = def
		return def, defErr
	}
	in.senderFixed = true
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
	if s != strings.TrimSpace(o.Sender) {
		in.trace("sender %s -> %s", strings.TrimSpace(o.Sender), s)
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
	addr := in.rewriteAddr(list[0])
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

// rewriteAddr is the address m stands for: the dialect's Rewrite hook, or
// sendmail's qualification of a bare name with the domain.
func (in *intake) rewriteAddr(m mailbox) string {
	if in.opts.Rewrite != nil {
		return in.opts.Rewrite(Address{Local: m.local, Domain: m.domain, Route: m.route})
	}
	if m.domain == "" {
		return m.local + "@" + in.opts.Domain
	}
	return m.addr()
}

// expand applies the aliases to addr; without aliases it stands for itself.
func (in *intake) expand(addr string) ([]string, []aliases.Step, error) {
	if in.resolver == nil {
		return []string{addr}, nil, nil
	}
	list, steps, err := in.resolver.Expand(addr)
	if err != nil {
		return nil, nil, dataErr("%v (fix %s)", err, in.opts.Aliases.File())
	}
	return list, steps, nil
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
	// A space may stand only inside a quoted local part ("john doe"@x,
	// RFC 5321 §4.1.2); anywhere else it would end the path in MAIL FROM
	// or RCPT TO, and what follows would be read as parameters.
	quoted, escaped := false, false
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			return fmt.Errorf("%q contains a space outside a quoted local part", addr)
		}
	}
	if quoted {
		return fmt.Errorf("%q has an unterminated quoted string", addr)
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
	list, err := parseAddressList(arg, in.opts.SpaceIsComma)
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
	addr := in.rewriteAddr(m)
	list, steps, err := in.expand(addr)
	if err != nil {
		return err
	}
	if in.opts.Trace != nil {
		in.traceRecipient(m.addr(), addr, list, steps)
	}
	for _, a := range list {
		if err := checkEnvelopeAddress(what, a); err != nil {
			return err
		}
		key := dedupKey(a)
		if in.seen == nil {
			in.seen = map[string]bool{}
		}
		if in.seen[key] {
			continue
		}
		in.seen[key] = true
		in.rcpts = append(in.rcpts, a)
	}
	return nil
}

// traceRecipient says how the recipient written as raw became list.
func (in *intake) traceRecipient(raw, addr string, list []string, steps []aliases.Step) {
	if len(steps) == 0 {
		if addr != raw {
			in.trace("%s -> %s (qualified)", raw, addr)
		}
		return
	}
	lines := make([]string, len(steps))
	for i, s := range steps {
		lines[i] = fmt.Sprint(s.Line)
	}
	word := "line"
	if len(lines) > 1 {
		word = "lines"
	}
	in.trace("%s -> %s (alias, %s %s %s)", raw, strings.Join(list, ", "), in.opts.Aliases.File(), word, strings.Join(lines, ", "))
}

// dedupKey compares local parts exactly (they may be case-sensitive, RFC
// 5321 §2.4) and domains without regard to case.
func dedupKey(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i] + "@" + strings.ToLower(addr[i+1:])
	}
	return addr
}

// newMessageID is the generated Message-ID, brackets included.
func (in *intake) newMessageID(now time.Time) string {
	if in.opts.MessageID != nil {
		return in.opts.MessageID(now)
	}
	host := in.opts.Hostname
	if host == "" {
		host = in.opts.Domain
	}
	return newMessageID(now, host)
}

func newMessageID(now time.Time, host string) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("<%s.%s@%s>", now.UTC().Format("20060102150405"), hex.EncodeToString(b[:]), host)
}
