package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A privileged run reads the DefaultPath option (fixed when the program is
// built) and nothing the caller names: not -C, not RELAYMAIL_CONFIG, not a
// RELAYMAIL_*_FILE secret.
func TestIgnoreEnvDefaultPath(t *testing.T) {
	system := writeFile(t, "system.conf", "smarthost qmtp://trusted.example.com\n")
	evil := writeFile(t, "evil.conf", "smarthost qmtp://evil.example.com\n")
	opts := testOptions(t, env{
		"RELAYMAIL_CONFIG":        evil,
		"RELAYMAIL_SMARTHOST":     "qmtp://evil.example.com",
		"RELAYMAIL_PASSWORD_FILE": "/etc/shadow",
	})
	opts.Path = evil
	opts.DefaultPath = system
	opts.IgnoreEnv = true
	c, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	check(t, c, want{smarthosts: []string{"qmtp://trusted.example.com"}})
	if c.Path != system || c.Password != "" {
		t.Errorf("Path %q, password %q", c.Path, c.Password)
	}
}

// A secret that every user can read draws a warning: in the configuration
// file itself, in a password_file, or in the OAuth2 token file. A file of
// mode 0640 or 0600 does not, and neither does a readable configuration
// file without a password.
func TestReadableSecretWarnings(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pwOpen := file("pw-open", "hunter2\n", 0o644)
	pwClosed := file("pw-closed", "hunter2\n", 0o640)
	token := file("token", "ya29.token\n", 0o604)
	for _, tc := range []struct {
		name, conf string
		mode       os.FileMode
		want       []string // substrings, one warning each
	}{
		{"inline password, 0644", "password hunter2\n", 0o644, []string{"holds the password and every user can read it (mode 0644"}},
		{"inline password, 0640", "password hunter2\n", 0o640, nil},
		{"no secret, 0644", "log none\n", 0o644, nil},
		{"password_file 0644", "password_file " + pwOpen + "\n", 0o644, []string{pwOpen + " holds the password and every user"}},
		{"password_file 0640", "password_file " + pwClosed + "\n", 0o644, nil},
		{"token file 0604", "oauth2_token_file " + token + "\n", 0o600, []string{token + " holds the OAuth2 token and every user"}},
		{"TLS key 0644", "tls_cert_file /etc/cert.pem\ntls_key_file " + pwOpen + "\n", 0o600, []string{pwOpen + " holds the TLS private key and every user"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t, env{})
			opts.Path = file("relaymail.conf", tc.conf, tc.mode)
			c, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Warnings) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", c.Warnings, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(c.Warnings[i], w) {
					t.Errorf("warning %q lacks %q", c.Warnings[i], w)
				}
				if strings.Contains(c.Warnings[i], "hunter2") {
					t.Errorf("warning shows the secret: %q", c.Warnings[i])
				}
			}
		})
	}
}

func TestOAuth2TokenFile(t *testing.T) {
	c, err := loadString(t, "oauth2_token_file /run/relaymail/token\n", env{})
	if err != nil {
		t.Fatal(err)
	}
	if c.OAuth2TokenFile != "/run/relaymail/token" {
		t.Errorf("OAuth2TokenFile = %q", c.OAuth2TokenFile)
	}
	_, err = loadString(t, "password hunter2\noauth2_token_file /run/relaymail/token\n", env{})
	matchError(t, err, `relaymail\.conf:2: oauth2_token_file: both password and oauth2_token_file are set \(set password for a password, or oauth2_token_file for an OAuth2 token, not both\)$`)
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}
	_, err = loadString(t, "oauth2_token_file relative/token\n", env{})
	matchError(t, err, `is not an absolute path`)
	_, err = loadString(t, "password hunter2\n", env{"RELAYMAIL_OAUTH2_TOKEN_FILE": "/run/token"})
	matchError(t, err, `^RELAYMAIL_OAUTH2_TOKEN_FILE: both password and oauth2_token_file are set`)
}

// The configuration is an address source too: CR, LF, NUL and other
// control characters, angle brackets and white space are refused in from,
// whether it comes from the file or the environment, and domain and
// hostname take only DNS names.
func TestConfigAddressInjection(t *testing.T) {
	for _, v := range []string{"a@b\rc.example", "a\x00@b.example", "a@b.example\x1b[0m", "<a@b.example>", "a@b.example>", "a b@example.com"} {
		if _, err := loadString(t, "from "+v+"\n", env{}); err == nil {
			t.Errorf("from %q in the file: accepted", v)
		}
	}
	for _, v := range []string{"a@b.example\r\nRCPT TO:<x@y>", "a@b.example\n", "a\x00@b.example"} {
		if _, err := loadString(t, "", env{"RELAYMAIL_FROM": v}); err == nil {
			t.Errorf("RELAYMAIL_FROM=%q: accepted", v)
		}
	}
	for _, v := range []string{"host.example\r\n", "host\x00.example", "host example"} {
		if _, err := loadString(t, "", env{"RELAYMAIL_HOSTNAME": v}); err == nil {
			t.Errorf("RELAYMAIL_HOSTNAME=%q: accepted", v)
		}
		if _, err := loadString(t, "", env{"RELAYMAIL_DOMAIN": v}); err == nil {
			t.Errorf("RELAYMAIL_DOMAIN=%q: accepted", v)
		}
	}
}
