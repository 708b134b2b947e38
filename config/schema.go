package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/relaymail/relaymail/relay/smarthost"
)

// Key describes one configuration key. The man page and its test are built
// from Keys, so a key added to the schema cannot be forgotten in the docs.
type Key struct {
	Name string
	// Kind names the value syntax: "url", "domain", "address", "duration"
	// or "keyword".
	Kind string
	// Default is the value used when the key is set nowhere, as a person
	// would write it; for keys whose default is derived from the host it
	// says where it comes from.
	Default string
	Doc     string
	// List keys collect every line that sets them; the others may be set
	// once.
	List bool
	// Secret values are never shown in an error message, because those
	// messages go to stderr and logs that other people read.
	Secret bool
}

// keyDef is one row of the schema: the public description plus the code that
// turns one value into a Config field.
type keyDef struct {
	Key
	// set validates one value and stores it; for list keys it appends.
	set func(c *Config, v string) error
	// derived means Default is prose and the value is computed by Load;
	// otherwise Default itself goes through set, so the documented default
	// and the real one cannot drift apart.
	derived bool
}

// schema is the single source of truth for the keys. Keep it sorted by
// importance: it is the order of the man page.
var schema = []keyDef{
	{
		Key: Key{Name: "smarthost", Kind: "url", List: true,
			Doc: "where mail is relayed to, as a smarthost URL; several are tried in order"},
		set: func(c *Config, v string) error {
			u, err := smarthost.Parse(v)
			if err != nil {
				return err
			}
			c.Smarthosts = append(c.Smarthosts, u)
			return nil
		},
	},
	{
		Key: Key{Name: "domain", Kind: "domain", Default: "first line of /etc/mailname, else the host's FQDN",
			Doc: "the domain added to bare local names (root becomes root@domain)"},
		set:     func(c *Config, v string) error { return setDomain(&c.Domain, v) },
		derived: true,
	},
	{
		Key: Key{Name: "hostname", Kind: "domain", Default: "the host's FQDN",
			Doc: "the name this host gives itself in EHLO/LHLO and in Message-ID"},
		set:     func(c *Config, v string) error { return setDomain(&c.Hostname, v) },
		derived: true,
	},
	{
		Key: Key{Name: "from", Kind: "address",
			Doc: "the envelope sender when the caller gives no -f; a bare local part is qualified with domain"},
		set: func(c *Config, v string) error {
			if err := checkFrom(v); err != nil {
				return err
			}
			c.From = v
			return nil
		},
	},
	{
		Key: Key{Name: "timeout", Kind: "duration", Default: "60s",
			Doc: "network timeout for each read and each write; a duration (90s, 5m) or a number of seconds"},
		set: func(c *Config, v string) error {
			d, err := parseTimeout(v)
			if err != nil {
				return err
			}
			c.Timeout = d
			return nil
		},
	},
	{
		Key: Key{Name: "password", Kind: "text", Secret: true,
			Doc: "the SMTP AUTH password (or OAuth2 bearer token with auth=xoauth2) for the user named in the smarthost URL; best given as password_file or RELAYMAIL_PASSWORD_FILE"},
		set: func(c *Config, v string) error {
			c.Password = v
			return nil
		},
	},
	{
		Key: Key{Name: "oauth2_token_file", Kind: "path",
			Doc: "a file holding an OAuth2 bearer token for the user named in the smarthost URL, read again for every connection so that a token refresher may replace it at any time; it implies auth=xoauth2, and excludes password"},
		set: func(c *Config, v string) error { return setPath(&c.OAuth2TokenFile, v) },
	},
	{
		Key: Key{Name: "tls_ca_file", Kind: "path",
			Doc: "PEM file of the certificate authorities that may sign the smarthost's certificate, instead of the system roots"},
		set: func(c *Config, v string) error { return setPath(&c.TLSCAFile, v) },
	},
	{
		Key: Key{Name: "tls_cert_file", Kind: "path",
			Doc: "PEM client certificate to present to the smarthost (with tls_key_file)"},
		set: func(c *Config, v string) error { return setPath(&c.TLSCertFile, v) },
	},
	{
		Key: Key{Name: "tls_key_file", Kind: "path",
			Doc: "PEM private key of tls_cert_file"},
		set: func(c *Config, v string) error { return setPath(&c.TLSKeyFile, v) },
	},
	{
		Key: Key{Name: "tls_fingerprint", Kind: "fingerprint",
			Doc: "SHA-256 fingerprint of the smarthost's certificate, in hex with or without colons; when set, the certificate must match it"},
		set: func(c *Config, v string) error {
			hex := strings.ToLower(strings.ReplaceAll(v, ":", ""))
			if len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
				return &valueError{fmt.Sprintf("%q is not a SHA-256 fingerprint", v), "write 64 hex digits, e.g. from: openssl x509 -noout -fingerprint -sha256 -in cert.pem"}
			}
			c.TLSFingerprint = hex
			return nil
		},
	},
	{
		Key: Key{Name: "queue", Kind: "keyword", Default: "on",
			Doc: "on: keep deferred mail in queue_dir and deliver it later; off: no queue, a temporary failure exits 75 and nothing is kept (msmtp's behaviour)"},
		set: func(c *Config, v string) error {
			b, err := parseSwitch(v, "on", "off")
			c.Queue = b
			return err
		},
	},
	{
		Key: Key{Name: "queue_dir", Kind: "path", Default: "/var/spool/relaymail",
			Doc: "the spool directory of the queue (see relaymail-queue(5))"},
		set: func(c *Config, v string) error { return setPath(&c.QueueDir, v) },
	},
	{
		Key: Key{Name: "delivery_mode", Kind: "keyword", Default: "interactive",
			Doc: "interactive: try at once and queue what is deferred (-odi); background: queue and deliver from a detached process (-odb); queue: only queue (-odq)"},
		set: func(c *Config, v string) error {
			switch v {
			case "interactive", "background", "queue":
				c.DeliveryMode = v
				return nil
			}
			return &valueError{fmt.Sprintf("%q is not a delivery mode", v), "use interactive, background or queue"}
		},
	},
	{
		Key: Key{Name: "retry_min", Kind: "duration", Default: "1m",
			Doc: "the wait before the first retry of a deferred message; each later wait doubles"},
		set: func(c *Config, v string) error { return setLongDuration(&c.RetryMin, v) },
	},
	{
		Key: Key{Name: "retry_max", Kind: "duration", Default: "1h",
			Doc: "the longest wait between two tries"},
		set: func(c *Config, v string) error { return setLongDuration(&c.RetryMax, v) },
	},
	{
		Key: Key{Name: "queue_lifetime", Kind: "duration", Default: "5d",
			Doc: "how long a message may stay queued before its pending recipients fail and the sender gets a bounce"},
		set: func(c *Config, v string) error { return setLongDuration(&c.QueueLifetime, v) },
	},
	{
		Key: Key{Name: "flush_after_send", Kind: "keyword", Default: "yes",
			Doc: "after a successful delivery, start a detached queue run when the queue is not empty, so a container without cron still drains it"},
		set: func(c *Config, v string) error {
			b, err := parseSwitch(v, "yes", "no")
			c.FlushAfterSend = b
			return err
		},
	},
	{
		Key: Key{Name: "max_header_size", Kind: "size", Default: "1M",
			Doc: "the largest message header accepted; a bigger one is refused with exit 65; bytes, or with a k or M suffix"},
		set: func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			c.MaxHeaderSize = n
			return nil
		},
	},
	{
		Key: Key{Name: "max_message_size", Kind: "size", Default: "0",
			Doc: "the largest message accepted, header and body; 0 means no limit of relaymail's own (the smarthost still has its own)"},
		set: func(c *Config, v string) error {
			if v == "0" {
				c.MaxMessageSize = 0
				return nil
			}
			n, err := parseSizeUpTo(v, 1<<40)
			c.MaxMessageSize = n
			return err
		},
	},
	{
		Key: Key{Name: "aliases", Kind: "path", Default: "/etc/aliases",
			Doc: "the aliases(5) file applied to local recipients (root, postmaster, ...) in the envelope and in To and Cc; a missing /etc/aliases means no aliases"},
		set: func(c *Config, v string) error { return setPath(&c.Aliases, v) },
	},
	{
		Key: Key{Name: "rewrite_from", Kind: "keyword", Default: "missing",
			Doc: "never: leave From as the caller wrote it; missing: add a missing From and qualify a bare one; always: put the from address into every From (keeping the display name) and make it the envelope sender"},
		set: func(c *Config, v string) error {
			switch v {
			case "never", "missing", "always":
				c.RewriteFrom = v
				return nil
			}
			return &valueError{fmt.Sprintf("%q is not a rewrite_from mode", v), "use never, missing or always"}
		},
	},
	{
		Key: Key{Name: "allow_from_override", Kind: "keyword", Default: "yes",
			Doc: "yes: the caller's -f or -r (qmail-inject: -f, Return-Path, QMAILSUSER) sets the envelope sender; no: it is ignored and the sender is from, or the login name"},
		set: func(c *Config, v string) error {
			b, err := parseSwitch(v, "yes", "no")
			c.AllowFromOverride = b
			return err
		},
	},
	{
		Key: Key{Name: "log", Kind: "keyword", Default: "syslog",
			Doc: "where the per-message log line goes: syslog (stderr when there is no /dev/log), stderr or none"},
		set: func(c *Config, v string) error {
			switch v {
			case "syslog", "stderr", "none":
				c.Log = v
				return nil
			}
			hint := "use syslog, stderr or none"
			if s := suggest(v, []string{"syslog", "stderr", "none"}); s != "" {
				hint = fmt.Sprintf("did you mean %q? use syslog, stderr or none", s)
			}
			return &valueError{fmt.Sprintf("%q is not a log destination", v), hint}
		},
	},
}

// Keys returns the schema in documentation order. The result is a copy.
func Keys() []Key {
	ks := make([]Key, len(schema))
	for i, d := range schema {
		ks[i] = d.Key
	}
	return ks
}

func lookupKey(name string) *keyDef {
	for i := range schema {
		if schema[i].Name == name {
			return &schema[i]
		}
	}
	return nil
}

// valueError is a validation failure with the correction kept apart, so that
// Error can render it as a hint.
type valueError struct{ msg, hint string }

func (e *valueError) Error() string { return e.msg + " (" + e.hint + ")" }

// maxTimeout bounds timeout because a larger value is almost always a unit
// mistake (90 read as minutes) and would leave a stuck sendmail hanging for
// hours in front of a cron job.
const maxTimeout = time.Hour

func parseTimeout(v string) (time.Duration, error) {
	var d time.Duration
	if v != "" && strings.Trim(v, "0123456789") == "" {
		// A bare number is seconds, as in most MTAs' configuration.
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(maxTimeout/time.Second) {
			return 0, &valueError{fmt.Sprintf("%s seconds is more than the maximum of 1h", v), "write at most 3600 or 1h"}
		}
		d = time.Duration(n) * time.Second
	} else {
		var err error
		d, err = time.ParseDuration(v)
		if err != nil {
			return 0, &valueError{fmt.Sprintf("%q is not a duration", v), "write e.g. 90s or 5m"}
		}
	}
	if d <= 0 {
		return 0, &valueError{fmt.Sprintf("%q is not a positive duration", v), "write e.g. 90s or 5m"}
	}
	if d > maxTimeout {
		return 0, &valueError{fmt.Sprintf("%q is more than the maximum of 1h", v), "write at most 1h"}
	}
	return d, nil
}

// parseSwitch reads a two-valued keyword.
func parseSwitch(v, yes, no string) (bool, error) {
	switch v {
	case yes:
		return true, nil
	case no:
		return false, nil
	}
	return false, &valueError{fmt.Sprintf("%q is neither %s nor %s", v, yes, no), "write " + yes + " or " + no}
}

// setLongDuration reads a duration that may be days long ("5d", "36h",
// "90m"), for the queue's schedule.
func setLongDuration(dst *time.Duration, v string) error {
	bad := &valueError{fmt.Sprintf("%q is not a duration", v), "write e.g. 90s, 30m, 2h or 5d"}
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 365 {
			return bad
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return bad
		}
	}
	if d < time.Second {
		return &valueError{fmt.Sprintf("%q is too short", v), "write at least 1s"}
	}
	*dst = d
	return nil
}

// setPath accepts an absolute path: sendmail runs from any directory, so a
// relative one would mean something different for every caller.
func setPath(dst *string, v string) error {
	if !strings.HasPrefix(v, "/") {
		return &valueError{fmt.Sprintf("%q is not an absolute path", v), "write the full path, e.g. /etc/ssl/certs/relay-ca.pem"}
	}
	*dst = v
	return nil
}

// parseSize reads a byte count with an optional k or M suffix (powers of
// 1024). The header limit exists to bound memory, so it is capped at 64M.
func parseSize(v string) (int64, error) {
	return parseSizeUpTo(v, 64<<20)
}

// parseSizeUpTo reads a byte count with an optional k, M or G suffix
// (powers of 1024), at least 1k and at most limit.
func parseSizeUpTo(v string, limit int64) (int64, error) {
	num, mult := v, int64(1)
	switch {
	case strings.HasSuffix(v, "k"), strings.HasSuffix(v, "K"):
		num, mult = v[:len(v)-1], 1<<10
	case strings.HasSuffix(v, "M"), strings.HasSuffix(v, "m"):
		num, mult = v[:len(v)-1], 1<<20
	case strings.HasSuffix(v, "G"), strings.HasSuffix(v, "g"):
		num, mult = v[:len(v)-1], 1<<30
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || num != strings.TrimSpace(num) {
		return 0, &valueError{fmt.Sprintf("%q is not a size", v), "write a number of bytes, or one with a k, M or G suffix, e.g. 512k, 1M or 2G"}
	}
	if n > limit/mult {
		return 0, &valueError{fmt.Sprintf("%q is too large", v), fmt.Sprintf("the most is %dM", limit>>20)}
	}
	if n*mult < 1024 {
		return 0, &valueError{fmt.Sprintf("%q is too small", v), "a header needs at least 1k"}
	}
	return n * mult, nil
}

func setDomain(dst *string, v string) error {
	if err := checkDomain(v); err != nil {
		return err
	}
	*dst = v
	return nil
}

// checkDomain accepts what SMTP accepts after EHLO and after the @ of an
// address: a DNS name or an address literal (RFC 5321 §4.1.3). Names are
// checked by the rules of RFC 1123 §2.1 because a strict server rejects an
// EHLO that breaks them, and a bad name is better caught here than as a
// bounce.
func checkDomain(v string) error {
	const hint = "write a name like mail.example.com or an address literal like [192.0.2.1]"
	if v == "" {
		return &valueError{"empty domain name", hint}
	}
	if strings.HasPrefix(v, "[") {
		if lit, ok := strings.CutSuffix(v[1:], "]"); ok {
			ip := lit
			if rest, ok := cutPrefixFold(lit, "IPv6:"); ok {
				ip = rest
			}
			a, err := netip.ParseAddr(ip)
			if err == nil && a.Zone() == "" && a.Is6() == (ip != lit) {
				return nil
			}
		}
		return &valueError{fmt.Sprintf("%q is not an address literal", v), "write [192.0.2.1] or [IPv6:2001:db8::1]"}
	}
	if len(v) > 253 {
		return &valueError{fmt.Sprintf("%q is longer than 253 characters", v), hint}
	}
	if strings.HasPrefix(v, ".") || strings.HasSuffix(v, ".") {
		return &valueError{fmt.Sprintf("%q starts or ends with a dot", v), "remove the dot"}
	}
	for _, label := range strings.Split(v, ".") {
		if label == "" {
			return &valueError{fmt.Sprintf("%q has two dots in a row", v), hint}
		}
		if len(label) > 63 {
			return &valueError{fmt.Sprintf("%q has a label longer than 63 characters", v), hint}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return &valueError{fmt.Sprintf("%q has a label that starts or ends with a hyphen", v), hint}
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				h := hint
				if c >= utf8.RuneSelf {
					h = "write an internationalised name in its xn-- form"
				}
				return &valueError{fmt.Sprintf("%q contains %q; a domain name has only letters, digits, hyphens and dots", v, firstRune(label[i:])), h}
			}
		}
	}
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func firstRune(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n <= 1 {
		return s[:1]
	}
	return string(r)
}

// checkFrom is deliberately loose: quoting and the finer rules of RFC 5321
// §4.1.2 are the smarthost's business. It only rejects what would break the
// SMTP command line or what is surely a typing mistake.
func checkFrom(v string) error {
	const hint = "write an address like user@example.com or a bare user name"
	if v == "" {
		return &valueError{"empty sender address", hint}
	}
	if !utf8.ValidString(v) {
		return &valueError{fmt.Sprintf("sender %q is not valid UTF-8", v), hint}
	}
	for _, r := range v {
		switch {
		case unicode.IsSpace(r):
			return &valueError{fmt.Sprintf("sender %q contains white space", v), hint}
		case unicode.IsControl(r):
			return &valueError{fmt.Sprintf("sender %q contains a control character", v), hint}
		case r == '<' || r == '>':
			return &valueError{fmt.Sprintf("sender %q contains angle brackets", v), "write the bare address without < and >"}
		}
	}
	local, domain, hasAt := strings.Cut(v, "@")
	if strings.Contains(domain, "@") {
		return &valueError{fmt.Sprintf("sender %q contains more than one @", v), hint}
	}
	if local == "" {
		return &valueError{fmt.Sprintf("sender %q has an empty local part", v), hint}
	}
	if hasAt {
		if err := checkDomain(domain); err != nil {
			ve := err.(*valueError)
			return &valueError{fmt.Sprintf("sender %q: %s", v, ve.msg), ve.hint}
		}
	}
	return nil
}
