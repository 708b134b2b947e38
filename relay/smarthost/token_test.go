package smarthost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oauth2_token_file is read for every connection: a refresher's new token
// is used at once, and a broken file fails that connection only, without
// showing the token.
func TestOAuth2TokenFile(t *testing.T) {
	u, err := Parse("smtps://alice@mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	reads := 0
	read := func(name string) ([]byte, error) {
		reads++
		return os.ReadFile(name)
	}
	so, err := u.SMTPOptions(Options{OAuth2TokenFile: path, ReadFile: read, TLSFingerprint: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if so.Auth == nil || so.Auth.User != "alice" || so.Auth.Mechanism != "xoauth2" {
		t.Fatalf("Auth = %+v", so.Auth)
	}
	for _, tok := range []string{"ya29.first", "ya29.second"} {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := so.Auth.Password()
		if err != nil || got != tok {
			t.Errorf("Password() = %q, %v; want %q", got, err, tok)
		}
	}
	if reads != 2 {
		t.Errorf("the file was read %d times, want 2", reads)
	}
	for content, want := range map[string]string{
		"":                         "is empty",
		"  \n":                     "is empty",
		"ya29.one\nya29.two\n":     "holds more than one token",
		strings.Repeat("x", 70000): "larger than",
	} {
		os.WriteFile(path, []byte(content), 0o600)
		_, err := so.Auth.Password()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("content %.20q: error %v, want %q", content, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "ya29") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	os.Remove(path)
	if _, err := so.Auth.Password(); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}

	u, _ = Parse("smtps://alice@mail.example.com?auth=plain")
	if _, err := u.SMTPOptions(Options{OAuth2TokenFile: path, TLSFingerprint: strings.Repeat("ab", 32)}); err == nil || !strings.Contains(err.Error(), "auth=plain cannot use oauth2_token_file") {
		t.Errorf("auth=plain with a token file: %v", err)
	}
}
