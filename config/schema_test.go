package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSchema(t *testing.T) {
	kinds := map[string]bool{"url": true, "domain": true, "address": true, "duration": true, "keyword": true, "size": true, "text": true, "path": true, "fingerprint": true}
	seen := map[string]bool{}
	for _, d := range schema {
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(d.Name) {
			t.Errorf("key %q: names are lower-case words, as the environment twin upper-cases them", d.Name)
		}
		// tls_ca_file is a key of its own (exact names are looked up
		// first); it would be ambiguous only if tls_ca were a key too.
		if base, ok := strings.CutSuffix(d.Name, fileSuffix); ok && lookupKey(base) != nil {
			t.Errorf("key %q: also the file twin of key %q", d.Name, base)
		}
		if d.Name == "config" || d.Name == "config_file" {
			t.Errorf("key %q: RELAYMAIL_CONFIG selects the file", d.Name)
		}
		if seen[d.Name] {
			t.Errorf("key %q twice", d.Name)
		}
		seen[d.Name] = true
		if !kinds[d.Kind] {
			t.Errorf("key %q: unknown kind %q", d.Name, d.Kind)
		}
		if d.Doc == "" || d.set == nil {
			t.Errorf("key %q: no doc or no setter", d.Name)
		}
		if d.derived && d.Default == "" {
			t.Errorf("key %q: a derived default must say where it comes from", d.Name)
		}
		if !d.derived && d.Default != "" {
			if err := d.set(&Config{}, d.Default); err != nil {
				t.Errorf("key %q: default %q is not valid: %v", d.Name, d.Default, err)
			}
		}
	}
	ks := Keys()
	if len(ks) != len(schema) {
		t.Fatalf("Keys() has %d keys, schema %d", len(ks), len(schema))
	}
	ks[0].Name = "changed"
	if schema[0].Name == "changed" {
		t.Error("Keys() returns the schema itself, not a copy")
	}
}

func TestDefaults(t *testing.T) {
	c, err := loadString(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Smarthosts) != 0 || c.From != "" || c.Timeout != 60*time.Second || c.Log != "syslog" ||
		c.Domain != testHost || c.Hostname != testHost {
		t.Errorf("defaults = %+v", c)
	}
}

func TestSuggest(t *testing.T) {
	names := allNames()
	tests := []struct{ word, want string }{
		{"smarhost", "smarthost"},
		{"smarthosts", "smarthost"},
		{"SMARTHOST", "smarthost"},
		{"smart_host", "smarthost"},
		{"smarthost_url", "smarthost"},
		{"smarthost-file", "smarthost_file"},
		{"smarthostfile", "smarthost_file"},
		{"host", "hostname"},
		{"host_name", "hostname"},
		{"timout", "timeout"},
		{"time", "timeout"},
		{"logging", "log"},
		{"mydomain", "domain"},
		{"sender", ""},
		{"relayhost", ""},
		{"x", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.word, names); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestCheckDomain(t *testing.T) {
	good := []string{
		"example.com", "a", "localhost", "xn--bcher-kva.example", "a-b.c-d.e", "EXAMPLE.COM", "1.2.3.4.example",
		"[192.0.2.1]", "[IPv6:2001:db8::1]", "[ipv6:::1]",
		strings.Repeat("a", 63) + ".com",
		strings.Repeat(strings.Repeat("a", 49)+".", 5) + "abc", // 253 octets
	}
	bad := []string{
		"", ".", ".example.com", "example.com.", "a..b", "exa mple.com", "exa_mple.com", "bücher.example",
		"-a.example", "a-.example", strings.Repeat("a", 64) + ".com",
		strings.Repeat(strings.Repeat("a", 49)+".", 5) + "abcd", // 254 octets
		"[192.0.2.1", "[192.0.2.256]", "[2001:db8::1]", "[IPv6:192.0.2.1]", "[IPv6:fe80::1%eth0]", "[]", "[example.com]",
	}
	for _, v := range good {
		if err := checkDomain(v); err != nil {
			t.Errorf("checkDomain(%q) = %v, want ok", v, err)
		}
	}
	for _, v := range bad {
		if checkDomain(v) == nil {
			t.Errorf("checkDomain(%q) = ok, want an error", v)
		}
	}
}

func TestCheckFrom(t *testing.T) {
	good := []string{"root", "user@example.com", "first.last+tag@sub.example.com", "us#er@example.com", "jörg@example.com", "x@[192.0.2.1]"}
	bad := map[string]string{
		"":                    "empty sender",
		"a b@example.com":     "white space",
		"a\u00a0b":            "white space",
		"a\x01b":              "control character",
		"a\x7f":               "control character",
		"<user@example.com>":  "angle brackets",
		"a@b@example.com":     "more than one @",
		"@example.com":        "empty local part",
		"user@":               "empty domain name",
		"user@exa_mple.com":   `sender "user@exa_mple\.com": "exa_mple\.com" contains "_"`,
		"user@example.com.":   "ends with a dot",
		"\xff@example.com":    "not valid UTF-8",
		"User Name <u@x.com>": "white space",
	}
	for _, v := range good {
		if err := checkFrom(v); err != nil {
			t.Errorf("checkFrom(%q) = %v, want ok", v, err)
		}
	}
	for v, want := range bad {
		err := checkFrom(v)
		if err == nil || !regexp.MustCompile(want).MatchString(err.Error()) {
			t.Errorf("checkFrom(%q) = %v, want an error matching %q", v, err, want)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	good := map[string]time.Duration{
		"1": time.Second, "60": time.Minute, "3600": time.Hour, "007": 7 * time.Second,
		"90s": 90 * time.Second, "5m": 5 * time.Minute, "1h": time.Hour, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond,
	}
	for v, want := range good {
		if got, err := parseTimeout(v); err != nil || got != want {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "0", "0s", "-5s", "+5", "-5", "3601", "1h0m1s", "2h", "99999999999999999999999", "5x", "5 s", "1.5", "s"} {
		if d, err := parseTimeout(v); err == nil {
			t.Errorf("parseTimeout(%q) = %v, want an error", v, d)
		}
	}
}

// withSecretKey adds a secret key to the schema for one test, as no real
// secret key exists yet.
func withSecretKey(t *testing.T) {
	t.Helper()
	saved := schema
	schema = append(append([]keyDef(nil), schema...), keyDef{
		Key: Key{Name: "testsecret", Kind: "keyword", Doc: "a test secret", Secret: true},
		set: func(c *Config, v string) error {
			if strings.HasPrefix(v, "ok") {
				return nil
			}
			// A careless validator that shows the value in every form.
			return &valueError{"bad secret " + v + " or \"" + v + "\"", "not " + v}
		},
	})
	t.Cleanup(func() { schema = saved })
}

func TestSecretsNeverShown(t *testing.T) {
	withSecretKey(t)
	const pw = "hunter2#\"x"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		env        env
		want       string
	}{
		{"file", "testsecret " + pw + "\n", nil, `relaymail\.conf:1: testsecret: bad secret \(secret\)`},
		{"_file", "testsecret_file " + pwFile + "\n", nil, `relaymail\.conf:1: testsecret_file: .*/pw: bad secret \(secret\)`},
		{"environment", "", env{"RELAYMAIL_TESTSECRET": pw}, `^RELAYMAIL_TESTSECRET: bad secret \(secret\)`},
		{"environment _FILE", "", env{"RELAYMAIL_TESTSECRET_FILE": pwFile}, `^RELAYMAIL_TESTSECRET_FILE: .*/pw: bad secret`},
		{"equals sign", "testsecret = " + pw + "\n", nil, `:1: "=" after "testsecret" .*goes in testsecret_file`},
		{"repeated", "testsecret ok1\ntestsecret " + pw + "\n", nil, `:2: testsecret is already set on line 1`},
		{"both", "testsecret_file /x\ntestsecret " + pw + "\n", nil, `:2: testsecret is already given by testsecret_file on line 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(t, tt.file, tt.env)
			matchError(t, err, tt.want)
			if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hunter")) {
				t.Errorf("error shows the secret: %s", err)
			}
		})
	}
	// A value starting with "=" is a value, not a syntax error, when it
	// comes from the _file twin.
	eq := filepath.Join(dir, "eq")
	if err := os.WriteFile(eq, []byte("ok=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadString(t, "testsecret_file "+eq+"\n", nil); err != nil {
		t.Error(err)
	}
}

func TestRedact(t *testing.T) {
	e := &Error{Msg: `bad "a\tb" a	b`, Hint: "a\tb"}
	e.redact("a\tb")
	if e.Msg != "bad (secret) (secret)" || e.Hint != "(secret)" {
		t.Errorf("redacted = %q (%q)", e.Msg, e.Hint)
	}
	var target *Error
	if !errors.As(error(e), &target) {
		t.Error("not an *Error")
	}
}
