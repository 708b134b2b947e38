package smtp

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/relaymail/relaymail/relay"
)

// saslClient is the client side of one SASL mechanism, as SMTP AUTH
// (RFC 4954) runs it.
type saslClient interface {
	// start returns the initial response, sent with the AUTH command, and
	// whether the mechanism has one.
	start() (ir []byte, ok bool)
	// next answers a 334 challenge (base64-decoded when it decodes).
	next(challenge []byte) ([]byte, error)
}

var errUnexpectedChallenge = errors.New("unexpected challenge from the server")

// plainAuth is PLAIN (RFC 4616 §2): [authzid] NUL authcid NUL passwd, sent as
// the initial response, with an empty authzid.
type plainAuth struct{ user, pass string }

func (a *plainAuth) start() ([]byte, bool) {
	return []byte("\x00" + a.user + "\x00" + a.pass), true
}
func (a *plainAuth) next([]byte) ([]byte, error) { return nil, errUnexpectedChallenge }

// loginAuth is LOGIN (draft-murchison-sasl-login): the server prompts
// "Username:" and "Password:" in two 334 challenges. Servers vary the
// prompts ("User Name", "Password", localised text, or none at all), so a
// prompt that names the password or the user decides, and otherwise the
// order does: user first, then password.
type loginAuth struct {
	user, pass string
	step       int
}

func (a *loginAuth) start() ([]byte, bool) { return nil, false }
func (a *loginAuth) next(ch []byte) ([]byte, error) {
	a.step++
	if a.step > 3 {
		return nil, errUnexpectedChallenge
	}
	p := strings.ToLower(string(ch))
	switch {
	case strings.Contains(p, "pass"):
		return []byte(a.pass), nil
	case strings.Contains(p, "user") || strings.Contains(p, "name"):
		return []byte(a.user), nil
	case a.step == 1:
		return []byte(a.user), nil
	case a.step == 2:
		return []byte(a.pass), nil
	}
	return nil, errUnexpectedChallenge
}

// cramMD5Auth is CRAM-MD5 (RFC 2195 §2): the response is the user name, a
// space, and the lower-case hex HMAC-MD5 of the challenge keyed with the
// password.
type cramMD5Auth struct {
	user, pass string
	done       bool
}

func (a *cramMD5Auth) start() ([]byte, bool) { return nil, false }
func (a *cramMD5Auth) next(ch []byte) ([]byte, error) {
	if a.done {
		return nil, errUnexpectedChallenge
	}
	a.done = true
	return []byte(cramMD5(a.user, a.pass, ch)), nil
}

func cramMD5(user, pass string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(pass))
	m.Write(challenge)
	return user + " " + hex.EncodeToString(m.Sum(nil))
}

// xoauth2Auth is Google's XOAUTH2: the initial response is
// "user=" U ^A "auth=Bearer " token ^A ^A. A refused token draws a 334 with a
// base64 JSON error; the client answers it with an empty line and then gets
// the final 5xx reply.
type xoauth2Auth struct {
	user, token string
	serverError string // the JSON of the 334 error challenge
}

func (a *xoauth2Auth) start() ([]byte, bool) {
	return []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), true
}
func (a *xoauth2Auth) next(ch []byte) ([]byte, error) {
	if a.serverError != "" {
		return nil, errUnexpectedChallenge
	}
	a.serverError = sanitize(string(ch))
	if a.serverError == "" {
		a.serverError = "(empty)"
	}
	return []byte{}, nil
}

// secure reports whether a password may be sent: inside TLS, over a unix
// socket, or to a loopback address when TLS was explicitly turned off.
func (c *Client) secure() bool {
	if c.tlsState != nil {
		return true
	}
	if c.opts.Network == "unix" {
		return true
	}
	if ra := c.raw.RemoteAddr(); ra != nil && ra.Network() == "unix" {
		return true
	}
	if c.opts.TLS == TLSNone {
		if ta, ok := c.raw.RemoteAddr().(*net.TCPAddr); ok && ta.IP.IsLoopback() {
			return true
		}
	}
	return false
}

// authPreference is the order for Auth.Mechanism "": CRAM-MD5 keeps the
// password off the wire even inside TLS; PLAIN costs one round trip, LOGIN
// two or three.
var authPreference = []string{"CRAM-MD5", "PLAIN", "LOGIN"}

// authenticate runs AUTH (RFC 4954) when a password is configured.
func (c *Client) authenticate() *failure {
	a := c.opts.Auth
	if a == nil || a.Password == nil {
		return nil
	}
	if !c.secure() {
		return &failure{class: relay.Failed, msg: fmt.Sprintf(
			"refusing to send the password of %q to %s over a connection without TLS "+
				"(use smtps:// or smtp:// with STARTTLS; AUTH without TLS is allowed only over a unix socket, "+
				"or to a loopback address with tls=none)", a.User, c.host)}
	}
	params, offered := c.ext["AUTH"]
	if !offered {
		extra := ""
		if c.helo {
			extra = " (it refused EHLO, so it offers no extensions at all)"
		}
		return &failure{msg: fmt.Sprintf("%s does not offer AUTH%s, but relaymail is configured to log in as %q "+
			"(if this relay needs no login, remove the user name from the smarthost URL)", c.host, extra, a.User)}
	}
	mechs := strings.Fields(strings.ToUpper(params))
	var mech string
	if want := strings.ToUpper(a.Mechanism); want != "" {
		if !slices.Contains(mechs, want) {
			return &failure{msg: fmt.Sprintf("%s does not offer AUTH %s (it offers %s); choose one of those with auth= in the smarthost URL",
				c.host, want, offeredList(mechs))}
		}
		mech = want
	} else {
		for _, m := range authPreference {
			if slices.Contains(mechs, m) {
				mech = m
				break
			}
		}
		if mech == "" {
			return &failure{msg: fmt.Sprintf("%s offers AUTH %s, none of which relaymail supports (CRAM-MD5, PLAIN, LOGIN; XOAUTH2 with auth=xoauth2)",
				c.host, offeredList(mechs))}
		}
	}
	pass, err := a.Password()
	if err != nil {
		return &failure{msg: fmt.Sprintf("cannot read the password for %q on %s: %v", a.User, c.host, err), err: err}
	}
	var sc saslClient
	switch mech {
	case "PLAIN":
		sc = &plainAuth{user: a.User, pass: pass}
	case "LOGIN":
		sc = &loginAuth{user: a.User, pass: pass}
	case "CRAM-MD5":
		sc = &cramMD5Auth{user: a.User, pass: pass}
	case "XOAUTH2":
		sc = &xoauth2Auth{user: a.User, token: pass}
	}
	return c.runSASL(mech, sc)
}

func offeredList(mechs []string) string {
	if len(mechs) == 0 {
		return "no mechanisms"
	}
	return strings.Join(mechs, " ")
}

// maxSASLSteps bounds the challenges of one exchange: no mechanism here
// needs more than two, and a server must not keep the client looping.
const maxSASLSteps = 5

// runSASL runs one AUTH exchange. Every line the client sends after AUTH
// carries credentials and is redacted in the transcript.
func (c *Client) runSASL(mech string, sc saslClient) *failure {
	line, shown := "AUTH "+mech, "AUTH "+mech
	if ir, ok := sc.start(); ok {
		enc := "=" // RFC 4954 §4: an empty initial response is sent as "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
		}
		line += " " + enc
		shown += " [redacted]"
	}
	c.cmdSecret(line, shown)
	if f := c.flush(c.opts.Timeouts.Command, "AUTH"); f != nil {
		return f
	}
	for step := 0; ; step++ {
		r, f := c.read(c.opts.Timeouts.Command, "AUTH")
		if f != nil {
			return f
		}
		switch {
		case r.Code == 235:
			c.authMech, c.authOK = mech, true
			return nil
		case r.Code == 334 && step < maxSASLSteps:
			text := ""
			if len(r.Lines) > 0 {
				text = strings.TrimSpace(r.Lines[0])
			}
			ch, err := base64.StdEncoding.DecodeString(text)
			if err != nil {
				ch = []byte(text) // lenient: some servers send LOGIN prompts in clear
			}
			resp, err := sc.next(ch)
			if err != nil {
				// RFC 4954 §4: "*" cancels the exchange; the server
				// answers 501.
				c.cmd("*")
				if f := c.flush(c.opts.Timeouts.Command, "AUTH"); f != nil {
					return f
				}
				if _, f := c.read(c.opts.Timeouts.Command, "AUTH"); f != nil {
					return f
				}
				return &failure{msg: fmt.Sprintf("AUTH %s with %s failed: %v (challenge %q)", mech, c.host, err, clip(sanitize(string(ch)), 80)), err: err}
			}
			enc := ""
			if len(resp) > 0 {
				enc = base64.StdEncoding.EncodeToString(resp)
			}
			c.cmdSecret(enc, "[redacted]")
			if f := c.flush(c.opts.Timeouts.Command, "AUTH"); f != nil {
				return f
			}
		default:
			return c.authFailure(mech, sc, r)
		}
	}
}

// authFailure explains a refused AUTH (RFC 4954 §6): 535 bad credentials,
// 534 mechanism too weak, 538 encryption required, 530 authentication
// required are permanent; 454 is a temporary failure at the server.
func (c *Client) authFailure(mech string, sc saslClient, r *reply) *failure {
	user := c.opts.Auth.User
	secret := "password"
	if mech == "XOAUTH2" {
		secret = "token"
	}
	extra := ""
	if x, ok := sc.(*xoauth2Auth); ok && x.serverError != "" {
		extra = fmt.Sprintf(" (server said %s)", clip(x.serverError, 200))
	}
	var msg string
	switch r.Code {
	case 535:
		msg = fmt.Sprintf("authentication failed: %s rejected user %q's %s: %s%s (check the %s, password or password_file)",
			c.host, user, secret, r, extra, secret)
	case 534:
		msg = fmt.Sprintf("authentication failed: %s finds AUTH %s too weak for user %q: %s (choose another mechanism with auth=)",
			c.host, mech, user, r)
	case 538:
		msg = fmt.Sprintf("authentication failed: %s requires a stronger encryption for AUTH %s: %s", c.host, mech, r)
	case 530:
		msg = fmt.Sprintf("authentication failed: %s requires authentication that AUTH %s did not satisfy: %s", c.host, mech, r)
	case 454:
		msg = fmt.Sprintf("temporary authentication failure at %s for user %q: %s", c.host, user, r)
	default:
		msg = fmt.Sprintf("authentication failed: %s answered AUTH %s for user %q with %s%s", c.host, mech, user, r, extra)
	}
	return c.replyFailure("AUTH", r, msg)
}
