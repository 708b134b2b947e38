package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// Send delivers one message in one mail transaction, or in several when the
// server limits the recipients per transaction (452 "too many recipients"),
// on this connection. It may be called again for further messages; a
// transaction after the first starts with RSET.
//
// It returns one Result per envelope recipient, in envelope order,
// duplicates included, also when it returns an error. The error reports a
// failure of the session as a whole (lost connection, timeout, 421,
// protocol error, an unreadable spool file); the recipients it left
// undecided are Deferred, and the client is unusable afterwards. Refusals of
// the sender, of recipients or of the message are in the Results, with a nil
// error.
func (c *Client) Send(ctx context.Context, env *relay.Envelope, msg *relay.Message) ([]relay.Result, error) {
	return c.run(ctx, env, msg, false)
}

// Verify asks the server about the recipients without sending a message
// (sendmail -bv): MAIL, every RCPT, then RSET. A recipient the server
// accepted comes back Delivered, meaning only "accepted at RCPT".
func (c *Client) Verify(ctx context.Context, env *relay.Envelope) ([]relay.Result, error) {
	return c.run(ctx, env, nil, true)
}

// sender is the state of one Send or Verify.
type sender struct {
	c      *Client
	env    *relay.Envelope
	msg    *relay.Message
	verify bool
	res    []relay.Result
	final  []bool // res[i] is decided

	mailParams string
	rcptParams []string // per recipient index
	size       int64    // the message as SMTP text without dot-stuffing, -1 if not counted
	// tooMany holds the "too many recipients" reply each overflowing
	// recipient got, for when no further transaction can take it.
	tooMany map[int]*reply
}

func (c *Client) run(ctx context.Context, env *relay.Envelope, msg *relay.Message, verify bool) ([]relay.Result, error) {
	if env == nil {
		return nil, relay.Permanentf("%s: not sent: no envelope", c.proto)
	}
	s := &sender{c: c, env: env, msg: msg, verify: verify, size: -1}
	s.res = make([]relay.Result, len(env.Recipients))
	s.final = make([]bool, len(env.Recipients))
	s.rcptParams = make([]string, len(env.Recipients))
	for i, r := range env.Recipients {
		s.res[i] = relay.Result{Recipient: r, Class: relay.Deferred, Host: c.opts.Name}
	}
	notSent := func(err error) ([]relay.Result, error) {
		s.deferRest(nil, c.proto+": not sent: "+strings.TrimPrefix(err.Error(), c.proto+": "))
		return s.res, err
	}
	switch {
	case len(env.Recipients) == 0:
		return notSent(relay.Permanentf("%s: no recipients", c.proto))
	case !verify && (msg == nil || msg.Data == nil):
		return notSent(relay.Permanentf("%s: no message", c.proto))
	case !verify && msg.Size < 0:
		return notSent(relay.Permanentf("%s: impossible message size %d", c.proto, msg.Size))
	case c.closed.Load():
		return notSent(relay.Temporaryf("%s: %s: connection already closed", c.proto, c.host))
	case c.broken != nil:
		return notSent(relay.Temporaryf("%s: %s: session unusable after an earlier failure: %v", c.proto, c.host, c.broken))
	case ctx.Err() != nil:
		return notSent(relay.Temporary(c.proto, ctx.Err()))
	}

	stop := context.AfterFunc(ctx, c.abort)
	f := s.prepare()
	if f == nil {
		f = s.transactions()
	}
	if !stop() && f == nil {
		// Canceled after the last reply: the results stand, the
		// connection is gone.
		c.broken = ctx.Err()
	}
	if f == nil {
		return s.res, nil
	}
	if ctx.Err() != nil {
		f = &failure{msg: fmt.Sprintf("%s: canceled: %v", c.host, ctx.Err()), err: ctx.Err()}
	}
	err := c.wrap(f)
	c.broken = err
	c.closeConn(c.raw)
	s.deferRest(f.reply, c.proto+": "+f.msg)
	return s.res, err
}

// deferRest marks every undecided recipient Deferred, with the reply that
// ended the session (a 421) or with text.
func (s *sender) deferRest(r *reply, text string) {
	for i := range s.res {
		if s.final[i] {
			continue
		}
		res := &s.res[i]
		res.Class = relay.Deferred
		if r != nil {
			res.Code, res.Enhanced, res.Text = r.Code, r.Enhanced, r.Text()
		} else {
			res.Code, res.Enhanced, res.Text = 0, "", text
		}
	}
}

// set decides recipient i from reply r. scope applies to a 5xx; a 2xx is
// Delivered, anything else (4xx, or a reply that makes no sense here)
// Deferred.
func (s *sender) set(i int, r *reply, scope relay.Scope) {
	res := &s.res[i]
	res.Code, res.Enhanced, res.Text = r.Code, r.Enhanced, r.Text()
	res.Class = class(r.Code)
	res.Scope = relay.RecipientScope
	if res.Class == relay.Failed {
		res.Scope = scope
	}
	s.final[i] = true
}

// local decides recipient i without a reply (Code 0).
func (s *sender) local(i int, cl relay.Class, scope relay.Scope, enhanced, text string) {
	s.res[i] = relay.Result{Recipient: s.res[i].Recipient, Host: s.res[i].Host,
		Class: cl, Scope: scope, Enhanced: enhanced, Text: s.c.proto + ": " + text}
	s.final[i] = true
}

func (s *sender) localAll(cl relay.Class, scope relay.Scope, enhanced, text string) {
	for i := range s.res {
		if !s.final[i] {
			s.local(i, cl, scope, enhanced, text)
		}
	}
}

// checkAddress refuses what must never reach a command line: control
// characters (CR and LF would inject commands), angle brackets, and white
// space outside a quoted local part.
func checkAddress(a string) string {
	if len(a) > 998 {
		return "longer than 998 octets"
	}
	quoted := strings.HasPrefix(a, "\"")
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c < ' ' || c == 0x7f:
			return "contains a control character"
		case c == '<' || c == '>':
			return "contains an angle bracket"
		case c == ' ' && !quoted:
			return "contains a space"
		}
	}
	return ""
}

// prepare works out the MAIL and RCPT parameters and settles what can be
// settled without the server: invalid addresses, SMTPUTF8 that the server
// lacks, a message over the SIZE limit. Nothing is sent.
func (s *sender) prepare() *failure {
	c, env := s.c, s.env
	if why := checkAddress(env.Sender); why != "" {
		s.localAll(relay.Failed, relay.MessageScope, "5.1.7", fmt.Sprintf("not sent: the sender address %q %s", clip(sanitize(env.Sender), 80), why))
		return nil
	}
	for i, r := range env.Recipients {
		if r == "" {
			s.local(i, relay.Failed, relay.RecipientScope, "5.1.3", "not sent: empty recipient address")
		} else if why := checkAddress(r); why != "" {
			s.local(i, relay.Failed, relay.RecipientScope, "5.1.3", fmt.Sprintf("not sent: the recipient address %q %s", clip(sanitize(r), 80), why))
		}
	}

	// SMTPUTF8 (RFC 6531 §3.4): needed for a non-ASCII address, or when
	// the caller asked for it (UTF-8 in the header).
	needUTF8 := env.SMTPUTF8 || !relay.IsASCII(env.Sender)
	for _, r := range env.Recipients {
		needUTF8 = needUTF8 || !relay.IsASCII(r)
	}
	var params []string
	utf8 := false
	if needUTF8 {
		switch {
		case c.has("SMTPUTF8"):
			utf8 = true
		case !relay.IsASCII(env.Sender):
			s.localAll(relay.Failed, relay.MessageScope, "5.6.7", fmt.Sprintf(
				"not sent: the sender address %q is not ASCII, and %s does not support SMTPUTF8 (RFC 6531)", env.Sender, c.host))
			return nil
		default:
			for i, r := range env.Recipients {
				if !s.final[i] && !relay.IsASCII(r) {
					s.local(i, relay.Failed, relay.RecipientScope, "5.6.7", fmt.Sprintf(
						"not sent: the address is not ASCII, and %s does not support SMTPUTF8 (RFC 6531)", c.host))
				}
			}
			if env.SMTPUTF8 {
				c.warn("%s does not support SMTPUTF8; the message is sent without it (its header may contain UTF-8)", c.host)
			}
		}
	}
	if s.allFinal() {
		return nil
	}

	if !s.verify {
		if c.has("SIZE") || c.has("CHUNKING") {
			n, err := wireSize(s.msg.Reader())
			if err != nil {
				return &failure{msg: fmt.Sprintf("reading the message from the spool failed: %v", err), err: err}
			}
			s.size = n
		}
		if c.has("SIZE") {
			// RFC 1870 §6: a client must not send a message larger than
			// the fixed maximum the server announced.
			if max := sizeLimit(c.ext["SIZE"]); max > 0 && s.size > max {
				s.localAll(relay.Failed, relay.MessageScope, "5.3.4", fmt.Sprintf(
					"not sent: the message is %d octets, over the limit of %d octets that %s announces (RFC 1870)", s.size, max, c.host))
				return nil
			}
			params = append(params, "SIZE="+strconv.FormatInt(s.size, 10))
		}
		// BODY= (RFC 6152 §2) exists only with 8BITMIME. An 8-bit body
		// is always declared 8BITMIME, whatever -B said.
		switch {
		case s.msg.EightBit && c.has("8BITMIME"):
			params = append(params, "BODY=8BITMIME")
		case s.msg.EightBit:
			// RFC 5321 §2.4 forbids this; downgrading (re-encoding the
			// MIME parts) would change the message, refusing it would
			// lose mail that most servers take anyway.
			c.warn("%s does not offer 8BITMIME; the message has 8-bit bytes and is sent unchanged", c.host)
		case strings.EqualFold(env.Body, "7BIT") && c.has("8BITMIME"):
			params = append(params, "BODY=7BIT")
		}
	}
	if utf8 {
		params = append(params, "SMTPUTF8")
	}
	if !s.verify {
		params = append(params, s.dsnParams()...)
	}
	if len(params) > 0 {
		s.mailParams = " " + strings.Join(params, " ")
	}
	return nil
}

func (s *sender) allFinal() bool {
	for _, f := range s.final {
		if !f {
			return false
		}
	}
	return true
}

// dsnParams builds the RFC 3461 parameters: RET and ENVID for MAIL, which
// it returns, and NOTIFY and ORCPT for each RCPT, which it stores. They
// are sent only when DSN was asked for and the server offers it; ORCPT only
// for ASCII addresses (the utf-8 address type of RFC 6533 is not
// implemented).
func (s *sender) dsnParams() []string {
	c, d := s.c, s.env.DSN
	if len(d.Notify) == 0 && d.Ret == "" && d.EnvID == "" {
		return nil
	}
	if !c.has("DSN") {
		c.warn("%s does not support DSN (RFC 3461); the delivery status notification request (-N, -R, -V) is not passed on", c.host)
		return nil
	}
	var params []string
	switch ret := strings.ToUpper(d.Ret); ret {
	case "":
	case "FULL", "HDRS":
		params = append(params, "RET="+ret)
	default:
		c.warn("DSN RET=%q is neither FULL nor HDRS; left out", clip(sanitize(d.Ret), 40))
	}
	if d.EnvID != "" {
		params = append(params, "ENVID="+xtext(d.EnvID))
	}
	var notify []string
	for _, n := range d.Notify {
		switch n = strings.ToUpper(n); n {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
			notify = append(notify, n)
		default:
			c.warn("DSN NOTIFY=%q is not one of NEVER, SUCCESS, FAILURE, DELAY; left out", clip(sanitize(n), 40))
		}
	}
	for i, r := range s.env.Recipients {
		var p string
		if len(notify) > 0 {
			p += " NOTIFY=" + strings.Join(notify, ",")
		}
		if relay.IsASCII(r) {
			p += " ORCPT=rfc822;" + xtext(r)
		}
		s.rcptParams[i] = p
	}
	return params
}

// xtext encodes s as RFC 3461 §4 xtext: "+" and "=" and every octet outside
// "!" (33) to "~" (126) become "+" and two upper-case hex digits.
func xtext(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// transactions runs mail transactions until every recipient is decided.
// A recipient refused with "too many recipients" (RFC 5321 §4.5.3.1.10)
// goes into a further transaction on the same connection, as long as the
// previous one made progress; otherwise it stays Deferred.
func (s *sender) transactions() *failure {
	var pending []int
	for i := range s.res {
		if !s.final[i] {
			pending = append(pending, i)
		}
	}
	for len(pending) > 0 {
		overflow, progress, f := s.transaction(pending)
		if f != nil {
			return f
		}
		if !progress {
			// Nothing was accepted: the limit is not per transaction,
			// so another transaction now would only loop.
			for _, i := range overflow {
				s.set(i, s.tooMany[i], relay.RecipientScope)
				s.res[i].Class = relay.Deferred // RFC 5321 §4.5.3.1.10: treat 552 here as temporary
			}
			return nil
		}
		pending = overflow
	}
	return nil
}

// isTooMany recognises a "too many recipients" refusal of RCPT: 452 (or
// 552, which RFC 5321 §4.5.3.1.10 says to treat alike) with the RFC 3463
// code X.5.3 or the words in its text.
func isTooMany(r *reply) bool {
	if r.Code != 452 && r.Code != 552 {
		return false
	}
	if strings.HasSuffix(r.Enhanced, ".5.3") {
		return true
	}
	return strings.Contains(strings.ToLower(r.Text()), "too many recipients")
}

// transaction runs one mail transaction for the recipients idx.
//
// With PIPELINING (RFC 2920) the commands go out in one group: [RSET,]
// MAIL, every RCPT, then DATA, or with CHUNKING "BDAT <n> LAST" and the
// whole message (RFC 3030 §4.2 allows BDAT in a group; §2 no dot-stuffing),
// and then every reply is read and checked in order. Without PIPELINING
// each command waits for its reply, and the transaction stops early when
// MAIL fails or no RCPT is accepted.
//
// It returns the recipients refused as "too many", whether any recipient
// was accepted, and a failure when the session cannot go on.
func (s *sender) transaction(idx []int) (overflow []int, progress bool, f *failure) {
	c := s.c
	t := c.opts.Timeouts
	pipe := c.has("PIPELINING")
	chunk := !s.verify && c.has("CHUNKING")
	rset := c.needReset
	mail := "MAIL FROM:<" + s.env.Sender + ">" + s.mailParams
	rcpt := func(i int) string { return "RCPT TO:<" + s.env.Recipients[i] + ">" + s.rcptParams[i] }
	bdat := func() string { return "BDAT " + strconv.FormatInt(s.size, 10) + " LAST" }

	if pipe {
		if rset {
			c.cmd("RSET")
		}
		c.cmd(mail)
		for _, i := range idx {
			c.cmd(rcpt(i))
		}
		flushTimeout, what := t.Command, "commands"
		switch {
		case s.verify:
			c.cmd("RSET")
		case chunk:
			c.cmd(bdat())
			if f := s.writeBody(false); f != nil {
				return nil, false, f
			}
			flushTimeout, what = t.DataBlock, "the message"
		default:
			c.cmd("DATA")
		}
		if f := c.flush(flushTimeout, what); f != nil {
			return nil, false, f
		}
	}
	c.needReset = true

	// step sends one command when not pipelining, and reads its reply.
	step := func(line, cmd string, d time.Duration) (*reply, *failure) {
		if !pipe {
			c.cmd(line)
			if f := c.flush(t.Command, cmd); f != nil {
				return nil, f
			}
		}
		return c.readOne(d, cmd)
	}

	rsetFailed := false
	if rset {
		r, f := step("RSET", "RSET", t.Command)
		if f != nil {
			return nil, false, f
		}
		rsetFailed = !r.positive()
	}
	mr, f := step(mail, "MAIL", t.Command)
	if f != nil {
		return nil, false, f
	}
	mailOK := mr.positive()
	// failMail decides every recipient from the refusal of MAIL. After a
	// refused RSET a refused MAIL may just be "nested MAIL command", so it
	// is not trusted to be final.
	failMail := func() {
		for _, i := range idx {
			s.set(i, mr, relay.MessageScope)
			if rsetFailed && s.res[i].Class == relay.Failed {
				s.res[i].Class = relay.Deferred
				s.res[i].Text += " (after a refused RSET)"
			}
		}
		if rsetFailed {
			c.broken = errors.New("RSET refused")
		}
	}
	if !mailOK && !pipe {
		failMail()
		return nil, false, nil
	}

	var accepted []int
	tooMany := false
	for _, i := range idx {
		if !pipe && tooMany {
			overflow = append(overflow, i)
			continue
		}
		r, f := step(rcpt(i), "RCPT", t.Command)
		if f != nil {
			return nil, false, f
		}
		switch {
		case r.positive():
			accepted = append(accepted, i)
			if s.verify {
				s.set(i, r, relay.RecipientScope)
			}
		case isTooMany(r):
			tooMany = true
			overflow = append(overflow, i)
			if s.tooMany == nil {
				s.tooMany = map[int]*reply{}
			}
			s.tooMany[i] = r
		case mailOK:
			s.set(i, r, relay.ScopeOf(r.Enhanced))
		}
	}
	if mailOK && !pipe {
		// Recipients not sent because of an earlier "too many" get its
		// reply, should no further transaction happen.
		for _, i := range overflow {
			if _, ok := s.tooMany[i]; !ok {
				s.tooMany[i] = s.tooMany[overflow[0]]
			}
		}
	}
	deliverable := mailOK && len(accepted) > 0

	// replies is how many replies follow the end of the message: one per
	// accepted RCPT in LMTP (RFC 2033 §4.2, also for BDAT LAST, §4.3),
	// else one.
	replies := 1
	if c.opts.LMTP {
		replies = len(accepted)
	}

	switch {
	case s.verify:
		r, f := step("RSET", "RSET", t.Command)
		if f != nil {
			return nil, false, f
		}
		if r.positive() {
			c.needReset = false
		}
	case !pipe && !deliverable:
		// Nothing more was sent; the next transaction starts with RSET.
	case chunk:
		if !pipe {
			c.cmd(bdat())
			if f := s.writeBody(false); f != nil {
				return nil, false, f
			}
			if f := c.flush(t.DataBlock, "the message"); f != nil {
				return nil, false, f
			}
		}
		if !deliverable {
			// The server refuses the chunk with one reply (RFC 3030 §3).
			if _, f := c.readOne(t.DataEnd, "BDAT"); f != nil {
				return nil, false, f
			}
			break
		}
		if f := s.endReplies(accepted, replies, "BDAT"); f != nil {
			return nil, false, f
		}
	default:
		r, f := step("DATA", "DATA", t.DataInit)
		if f != nil {
			return nil, false, f
		}
		switch {
		case r.Code == 354 && deliverable:
			if f := s.writeBody(true); f != nil {
				return nil, false, f
			}
			c.cmd(".")
			if f := c.flush(t.DataBlock, "the message"); f != nil {
				return nil, false, f
			}
			if f := s.endReplies(accepted, replies, "end of data"); f != nil {
				return nil, false, f
			}
		case r.Code == 354:
			// RFC 2920 §3.1: every RCPT failed (or MAIL did) but DATA
			// was accepted: send an empty message, "." alone, whose
			// reply is then ignored.
			c.cmd(".")
			if f := c.flush(t.Command, "the end of data"); f != nil {
				return nil, false, f
			}
			if replies == 0 {
				// LMTP with no accepted recipient cannot answer an
				// empty message sensibly (RFC 2033 §4.2 demands 503
				// to DATA); its state is unknown now.
				c.broken = errors.New("LMTP server accepted DATA without recipients")
				break
			}
			for range replies {
				if _, f := c.readOne(t.DataEnd, "end of data"); f != nil {
					return nil, false, f
				}
			}
		case deliverable:
			// DATA refused (503, 554, 451): it applies to every
			// accepted recipient, and the next transaction starts with
			// RSET.
			for _, i := range accepted {
				s.set(i, r, relay.MessageScope)
			}
		}
	}
	if !mailOK {
		failMail()
		return nil, false, nil
	}
	return overflow, len(accepted) > 0, nil
}

// readOne reads the reply to cmd. A 421 (RFC 5321 §3.8) ends the session:
// it becomes a failure, and every undecided recipient is Deferred with it.
func (c *Client) readOne(d time.Duration, cmd string) (*reply, *failure) {
	r, f := c.read(d, cmd)
	if f != nil {
		return nil, f
	}
	if r.Code == 421 {
		return nil, c.replyFailure(cmd, r, fmt.Sprintf("%s is closing the session: %s", c.host, r))
	}
	return r, nil
}

// endReplies reads the replies after the message: one per accepted
// recipient in LMTP, in RCPT order even for duplicates (RFC 2033 §4.2), or
// one for all in SMTP, which then applies to every accepted recipient
// (MessageScope for a 5xx).
func (s *sender) endReplies(accepted []int, replies int, cmd string) *failure {
	c := s.c
	for k := 0; k < replies; k++ {
		r, f := c.read(c.opts.Timeouts.DataEnd, cmd)
		if f != nil {
			return f
		}
		if c.opts.LMTP {
			i := accepted[k]
			s.set(i, r, relay.ScopeOf(r.Enhanced))
			if r.Code == 421 {
				s.res[i].Class = relay.Deferred
				return c.replyFailure(cmd, r, fmt.Sprintf("%s is closing the session: %s", c.host, r))
			}
			continue
		}
		if r.Code == 421 {
			return c.replyFailure(cmd, r, fmt.Sprintf("%s is closing the session: %s", c.host, r))
		}
		for _, i := range accepted {
			s.set(i, r, relay.MessageScope)
		}
	}
	return nil
}

// writeBody streams the message into the write buffer as SMTP text (see
// bodyWriter), dot-stuffed for DATA. Full buffers are written with the
// DataBlock write deadline. For BDAT the octet count must come out exactly
// as announced, or the session is out of step and is abandoned.
func (s *sender) writeBody(dot bool) *failure {
	c := s.c
	c.wtimeout = c.opts.Timeouts.DataBlock
	defer func() { c.wtimeout = c.opts.Timeouts.Command }()
	mr := s.msg.TrackedReader()
	bw := newBodyWriter(c.bw, dot)
	n, err := io.Copy(bw, mr)
	if err == nil {
		err = bw.Close()
	}
	switch {
	case mr.Err != nil:
		return &failure{msg: fmt.Sprintf("reading the message from the spool failed: %v", mr.Err), err: mr.Err}
	case err != nil:
		return c.writeFailure(err, "the message", c.opts.Timeouts.DataBlock)
	case n != s.msg.Size:
		err := fmt.Errorf("the message is %d bytes, not the %d bytes declared", n, s.msg.Size)
		return &failure{msg: err.Error(), err: err}
	case !dot && s.size >= 0 && bw.out != s.size:
		err := fmt.Errorf("the message changed while it was sent (%d octets, %d announced)", bw.out, s.size)
		return &failure{msg: err.Error(), err: err}
	}
	c.trace("> ", fmt.Sprintf("[message: %d octets]", bw.out))
	return nil
}
