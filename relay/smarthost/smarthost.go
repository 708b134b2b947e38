// Package smarthost parses smarthost URLs and turns each into a
// relay.Relayer.
//
//	qmtp://mx.example.com[:209]            QMTP over TCP
//	qmtp:/run/qmtp.sock                    QMTP over a unix socket
//	lmtp://127.0.0.1[:24]                  LMTP over TCP
//	lmtp:/run/dovecot/lmtp                 LMTP over a unix socket
//	smtp://[user@]mail.example.com[:587]   SMTP with STARTTLS required (?tls=none to opt out)
//	smtps://[user@]mail.example.com[:465]  SMTP inside implicit TLS
//
// A password never appears in a URL: URLs end up in logs and in ps output of
// wrappers, so the password has its own (secret) configuration key.
package smarthost

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Scheme is the protocol of a smarthost.
type Scheme string

const (
	QMTP  Scheme = "qmtp"
	LMTP  Scheme = "lmtp"
	SMTP  Scheme = "smtp"
	SMTPS Scheme = "smtps"
)

var defaultPort = map[Scheme]int{QMTP: 209, LMTP: 24, SMTP: 587, SMTPS: 465}

// TLSMode says how the connection is protected.
type TLSMode string

const (
	TLSNone     TLSMode = "none"     // plain text; only by explicit choice
	TLSStartTLS TLSMode = "starttls" // STARTTLS, required
	TLSImplicit TLSMode = "implicit" // TLS from the first byte
)

// URL is a parsed, validated smarthost.
type URL struct {
	Scheme  Scheme
	Network string // "tcp" or "unix"
	Host    string // host name or IP literal without brackets; "" for unix
	Port    int    // 0 for unix
	Path    string // socket path for unix
	User    string // SMTP AUTH user name, "" for none
	TLS     TLSMode
	Verify  bool   // verify the server certificate (default true)
	Auth    string // forced SASL mechanism, "" for the strongest offered
	Raw     string // the URL as written
}

// Address returns the dial address: host:port or the socket path.
func (u *URL) Address() string {
	if u.Network == "unix" {
		return u.Path
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// String names the smarthost for logs: the scheme and address, and the user
// name, never a secret.
func (u *URL) String() string {
	if u.Network == "unix" {
		return string(u.Scheme) + ":" + u.Path
	}
	user := ""
	if u.User != "" {
		user = u.User + "@"
	}
	return string(u.Scheme) + "://" + user + u.Address()
}

var queryKeys = map[string][]string{
	"tls":    {"none", "starttls", "implicit"},
	"verify": {"yes", "no"},
	"auth":   {"plain", "login", "cram-md5", "xoauth2"},
}

// Parse parses and validates one smarthost URL. Its errors say what is wrong
// and show a correct form.
func Parse(raw string) (*URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, errors.New("empty smarthost URL (write e.g. smtp://mail.example.com)")
	}
	if !strings.Contains(s, ":") {
		return nil, fmt.Errorf("%q has no scheme (write e.g. %q or %q)", s, "smtp://"+s, "qmtp://"+s)
	}
	pu, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%q is not a valid URL: %v", s, err)
	}
	u := &URL{Scheme: Scheme(strings.ToLower(pu.Scheme)), Raw: raw, Verify: true}
	port, ok := defaultPort[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("unknown scheme %q in %q (use qmtp, lmtp, smtp or smtps)", pu.Scheme, s)
	}
	if pu.User != nil {
		if _, has := pu.User.Password(); has {
			return nil, fmt.Errorf("%q carries a password; remove it from the URL: a password never belongs in a URL, and SMTP authentication reads it from its own secret setting", u.redacted(pu))
		}
		u.User = pu.User.Username()
	}
	if pu.Fragment != "" {
		return nil, fmt.Errorf("%q has a #fragment, which means nothing for a smarthost", s)
	}
	switch {
	case pu.Opaque != "":
		return nil, fmt.Errorf("%q: a unix socket path must be absolute (write %s:/path/to/socket)", s, u.Scheme)
	case pu.Host == "" && pu.Path != "":
		if u.Scheme != QMTP && u.Scheme != LMTP {
			return nil, fmt.Errorf("%q: only qmtp and lmtp smarthosts can be unix sockets", s)
		}
		u.Network, u.Path = "unix", pu.Path
	case pu.Host != "":
		if pu.Path != "" && pu.Path != "/" {
			return nil, fmt.Errorf("%q: unexpected path %q after the host (a smarthost URL is scheme://host[:port])", s, pu.Path)
		}
		u.Network, u.Host = "tcp", pu.Hostname()
		if u.Host == "" {
			return nil, fmt.Errorf("%q has no host name", s)
		}
		if p := pu.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, p)
			}
			port = n
		}
		u.Port = port
	default:
		return nil, fmt.Errorf("%q has neither a host nor a socket path (write e.g. %s://mail.example.com)", s, u.Scheme)
	}
	switch u.Scheme {
	case SMTP:
		u.TLS = TLSStartTLS
	case SMTPS:
		u.TLS = TLSImplicit
	default:
		u.TLS = TLSNone
	}
	q, err := url.ParseQuery(pu.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%q: bad query string: %v", s, err)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		allowed, known := queryKeys[k]
		if !known {
			return nil, fmt.Errorf("%q: unknown option %q (known options: auth, tls, verify)", s, k)
		}
		if len(q[k]) != 1 {
			return nil, fmt.Errorf("%q: option %q is given more than once", s, k)
		}
		v := strings.ToLower(q[k][0])
		if !contains(allowed, v) {
			return nil, fmt.Errorf("%q: %s=%q is not valid (use one of: %s)", s, k, q[k][0], strings.Join(allowed, ", "))
		}
		switch k {
		case "tls":
			u.TLS = TLSMode(v)
		case "verify":
			u.Verify = v == "yes"
		case "auth":
			u.Auth = v
		}
	}
	if u.Scheme == SMTPS && u.TLS != TLSImplicit {
		return nil, fmt.Errorf("%q: smtps always uses implicit TLS; use smtp://...?tls=%s instead", s, u.TLS)
	}
	if u.Scheme == SMTP && u.TLS == TLSImplicit {
		return nil, fmt.Errorf("%q: for implicit TLS write smtps://%s", s, strings.TrimPrefix(s, pu.Scheme+"://"))
	}
	if u.Scheme == QMTP && (u.TLS != TLSNone || u.User != "" || u.Auth != "") {
		return nil, fmt.Errorf("%q: QMTP has no TLS and no authentication", s)
	}
	return u, nil
}

func (u *URL) redacted(pu *url.URL) string {
	c := *pu
	c.User = url.User(pu.User.Username())
	return c.String() + " (password removed)"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
