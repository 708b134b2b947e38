package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testHost = "host.example.org"

// env is a fake environment.
type env map[string]string

func (e env) get(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// testOptions isolates Load from the machine running the tests: no real
// environment, /etc/mailname, /etc/hosts or host name.
func testOptions(t *testing.T, e env) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		Getenv:       e.get,
		MailnamePath: filepath.Join(dir, "no-mailname"),
		HostsPath:    filepath.Join(dir, "no-hosts"),
		Hostname:     func() (string, error) { return testHost, nil },
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeSecret writes a file as a secret should be, 0600, into dir.
func writeSecret(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadString loads content as the file named by -C.
func loadString(t *testing.T, content string, e env) (*Config, error) {
	t.Helper()
	opts := testOptions(t, e)
	opts.Path = writeFile(t, "relaymail.conf", content)
	return Load(opts)
}

func raws(c *Config) []string {
	var r []string
	for _, u := range c.Smarthosts {
		r = append(r, u.Raw)
	}
	return r
}

// want is the part of a Config a test checks; zero fields take the defaults.
type want struct {
	smarthosts []string
	domain     string
	hostname   string
	from       string
	timeout    time.Duration
	log        string
}

func check(t *testing.T, c *Config, w want) {
	t.Helper()
	if w.domain == "" {
		w.domain = testHost
	}
	if w.hostname == "" {
		w.hostname = testHost
	}
	if w.timeout == 0 {
		w.timeout = 60 * time.Second
	}
	if w.log == "" {
		w.log = "syslog"
	}
	if got := raws(c); strings.Join(got, "|") != strings.Join(w.smarthosts, "|") {
		t.Errorf("smarthosts = %q, want %q", got, w.smarthosts)
	}
	if c.Domain != w.domain {
		t.Errorf("domain = %q, want %q", c.Domain, w.domain)
	}
	if c.Hostname != w.hostname {
		t.Errorf("hostname = %q, want %q", c.Hostname, w.hostname)
	}
	if c.From != w.from {
		t.Errorf("from = %q, want %q", c.From, w.from)
	}
	if c.Timeout != w.timeout {
		t.Errorf("timeout = %v, want %v", c.Timeout, w.timeout)
	}
	if c.Log != w.log {
		t.Errorf("log = %q, want %q", c.Log, w.log)
	}
}

func TestGoodFiles(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    want
	}{
		{"empty file gives every default", "", want{}},
		{"only comments and blank lines", "# a comment\n\n   # indented comment\n\t\n", want{}},
		{
			"every key",
			"smarthost smtps://user@mail.example.com\n" +
				"domain example.com\n" +
				"hostname mx1.example.com\n" +
				"from noreply@example.com\n" +
				"timeout 90s\n" +
				"log stderr\n",
			want{
				smarthosts: []string{"smtps://user@mail.example.com"},
				domain:     "example.com", hostname: "mx1.example.com",
				from: "noreply@example.com", timeout: 90 * time.Second, log: "stderr",
			},
		},
		{
			"list in order across other keys and comments",
			"smarthost qmtp://b.example.com\n# second\nlog none\nsmarthost lmtp:/run/dovecot/lmtp\n\nsmarthost smtp://a.example.com?tls=none\n",
			want{
				smarthosts: []string{"qmtp://b.example.com", "lmtp:/run/dovecot/lmtp", "smtp://a.example.com?tls=none"},
				log:        "none",
			},
		},
		{
			"white space around keys and values",
			"  \tsmarthost \t  qmtp://a.example.com  \t\n   timeout\t5m\n",
			want{smarthosts: []string{"qmtp://a.example.com"}, timeout: 5 * time.Minute},
		},
		{"a # inside a value is kept", "from us#er@example.com\n", want{from: "us#er@example.com"}},
		{"CRLF line endings", "timeout 30s\r\nlog stderr\r\n", want{timeout: 30 * time.Second, log: "stderr"}},
		{"byte order mark", "\uFEFFtimeout 30s\n", want{timeout: 30 * time.Second}},
		{"no final newline", "log none", want{log: "none"}},
		{"bare number of seconds", "timeout 120\n", want{timeout: 2 * time.Minute}},
		{"maximum timeout", "timeout 1h\n", want{timeout: time.Hour}},
		{"maximum timeout in seconds", "timeout 3600\n", want{timeout: time.Hour}},
		{"bare local sender", "from root\n", want{from: "root"}},
		{"sender with an address literal", "from root@[192.0.2.1]\n", want{from: "root@[192.0.2.1]"}},
		{"IPv4 literal", "domain [192.0.2.1]\n", want{domain: "[192.0.2.1]"}},
		{"IPv6 literal", "hostname [IPv6:2001:db8::1]\n", want{hostname: "[IPv6:2001:db8::1]"}},
		{"single-label domain", "domain localdomain\n", want{domain: "localdomain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(t, tt.content, nil)
			if err != nil {
				t.Fatal(err)
			}
			check(t, c, tt.want)
		})
	}
}

// TestValueText checks the value syntax on a key that accepts anything the
// parser hands it, since no key in the schema yet takes spaces.
func TestValueText(t *testing.T) {
	srcs, err := parse("f", []byte("from   a b  # c  \t\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := srcs["from"].values; len(got) != 1 || got[0] != "a b  # c" {
		t.Errorf("value = %q, want %q", got, "a b  # c")
	}
	_, err = loadString(t, "domain example .com\n", nil)
	if err == nil || !strings.Contains(err.Error(), `"example .com"`) {
		t.Errorf("error = %v, want it to show the whole value", err)
	}
}

func TestPath(t *testing.T) {
	c, err := loadString(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path == "" || !strings.HasSuffix(c.Path, "relaymail.conf") {
		t.Errorf("Path = %q, want the file read", c.Path)
	}
}

func TestEnvironment(t *testing.T) {
	file := "smarthost qmtp://file1.example.com\nsmarthost qmtp://file2.example.com\ntimeout 10s\nlog stderr\n"
	tests := []struct {
		name string
		env  env
		want want
	}{
		{
			"no environment",
			nil,
			want{smarthosts: []string{"qmtp://file1.example.com", "qmtp://file2.example.com"}, timeout: 10 * time.Second, log: "stderr"},
		},
		{
			"scalar overrides the file",
			env{"RELAYMAIL_TIMEOUT": "20s", "RELAYMAIL_FROM": "a@example.com"},
			want{smarthosts: []string{"qmtp://file1.example.com", "qmtp://file2.example.com"}, timeout: 20 * time.Second, log: "stderr", from: "a@example.com"},
		},
		{
			"list replaces the whole list",
			env{"RELAYMAIL_SMARTHOST": "qmtp://env.example.com"},
			want{smarthosts: []string{"qmtp://env.example.com"}, timeout: 10 * time.Second, log: "stderr"},
		},
		{
			"list split on white space and commas",
			env{"RELAYMAIL_SMARTHOST": " qmtp://a.example.com,qmtp://b.example.com  lmtp:/run/l ,\n qmtp://c.example.com "},
			want{smarthosts: []string{"qmtp://a.example.com", "qmtp://b.example.com", "lmtp:/run/l", "qmtp://c.example.com"}, timeout: 10 * time.Second, log: "stderr"},
		},
		{
			"empty variables count as unset",
			env{"RELAYMAIL_SMARTHOST": "", "RELAYMAIL_TIMEOUT": "", "RELAYMAIL_TIMEOUT_FILE": "", "RELAYMAIL_CONFIG": ""},
			want{smarthosts: []string{"qmtp://file1.example.com", "qmtp://file2.example.com"}, timeout: 10 * time.Second, log: "stderr"},
		},
		{
			"unknown RELAYMAIL_ variables are ignored",
			env{"RELAYMAIL_SMARHOST": "junk", "RELAYMAIL_": "x", "RELAYMAIL_OTHER_TOOL": "y"},
			want{smarthosts: []string{"qmtp://file1.example.com", "qmtp://file2.example.com"}, timeout: 10 * time.Second, log: "stderr"},
		},
		{
			"domain and hostname",
			env{"RELAYMAIL_DOMAIN": "example.net", "RELAYMAIL_HOSTNAME": "mx.example.net", "RELAYMAIL_LOG": "none"},
			want{smarthosts: []string{"qmtp://file1.example.com", "qmtp://file2.example.com"}, timeout: 10 * time.Second, log: "none", domain: "example.net", hostname: "mx.example.net"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(t, file, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			check(t, c, tt.want)
		})
	}
}

func TestEnvironmentWithoutFile(t *testing.T) {
	opts := testOptions(t, env{
		"RELAYMAIL_SMARTHOST": "smtps://u@mail.example.com",
		"RELAYMAIL_TIMEOUT":   "45",
	})
	opts.ReadFile = noDefaultFile
	c, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	check(t, c, want{smarthosts: []string{"smtps://u@mail.example.com"}, timeout: 45 * time.Second})
	if c.Path != "" {
		t.Errorf("Path = %q, want none", c.Path)
	}
}

// noDefaultFile reads real files, except that DefaultPath is missing, so the
// tests never depend on the machine's /etc/relaymail.conf.
func noDefaultFile(name string) ([]byte, error) {
	if name == DefaultPath {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return os.ReadFile(name)
}

func TestIgnoreEnv(t *testing.T) {
	explicit := writeFile(t, "explicit.conf", "log none\n")
	named := writeFile(t, "named.conf", "log none\n")
	opts := testOptions(t, env{
		"RELAYMAIL_CONFIG":    named,
		"RELAYMAIL_SMARTHOST": "qmtp://evil.example.com",
		"RELAYMAIL_TIMEOUT":   "5s",
	})
	opts.Path = explicit
	opts.IgnoreEnv = true
	opts.ReadFile = func(name string) ([]byte, error) {
		if name == DefaultPath {
			return []byte("timeout 7s\nsmarthost qmtp://trusted.example.com\n"), nil
		}
		return noDefaultFile(name)
	}
	c, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	check(t, c, want{smarthosts: []string{"qmtp://trusted.example.com"}, timeout: 7 * time.Second})
	if c.Path != DefaultPath {
		t.Errorf("Path = %q, want %q", c.Path, DefaultPath)
	}
}

func TestFileSelection(t *testing.T) {
	dir := t.TempDir()
	fromEnv := writeFile(t, "env.conf", "log none\n")
	fromPath := writeFile(t, "path.conf", "log stderr\n")
	missing := filepath.Join(dir, "missing.conf")
	tests := []struct {
		name     string
		path     string
		env      env
		wantLog  string
		wantPath string
		wantErr  string // a regexp
	}{
		{name: "missing default file", wantLog: "syslog"},
		{name: "RELAYMAIL_CONFIG", env: env{"RELAYMAIL_CONFIG": fromEnv}, wantLog: "none", wantPath: fromEnv},
		{name: "Path", path: fromPath, wantLog: "stderr", wantPath: fromPath},
		{name: "Path beats RELAYMAIL_CONFIG", path: fromPath, env: env{"RELAYMAIL_CONFIG": fromEnv}, wantLog: "stderr", wantPath: fromPath},
		{
			name: "missing -C file", path: missing,
			wantErr: `^` + regexp.QuoteMeta(missing) + `: cannot read the configuration file: no such file or directory \(create it, or fix the path given with -C\)$`,
		},
		{
			name: "missing RELAYMAIL_CONFIG file", env: env{"RELAYMAIL_CONFIG": missing},
			wantErr: `^` + regexp.QuoteMeta(missing) + `: cannot read the configuration file: no such file or directory \(create it, or fix or unset RELAYMAIL_CONFIG\)$`,
		},
		{
			name: "directory", path: dir,
			wantErr: `^` + regexp.QuoteMeta(dir) + `: cannot read the configuration file: is a directory \(it must be a readable regular file\)$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t, tt.env)
			opts.Path = tt.path
			opts.ReadFile = noDefaultFile
			c, err := Load(opts)
			if tt.wantErr != "" {
				matchError(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Log != tt.wantLog || c.Path != tt.wantPath {
				t.Errorf("log, path = %q, %q; want %q, %q", c.Log, c.Path, tt.wantLog, tt.wantPath)
			}
		})
	}
}

func TestUnreadableDefaultFile(t *testing.T) {
	opts := testOptions(t, nil)
	opts.ReadFile = func(name string) ([]byte, error) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	_, err := Load(opts)
	matchError(t, err, `^/etc/relaymail\.conf: cannot read the configuration file: permission denied \(make it readable by the user running sendmail, or run as a user who can read it\)$`)
}

func TestReadFileLimited(t *testing.T) {
	big := writeFile(t, "big", strings.Repeat("#", maxFileSize+1))
	if _, err := readFileLimited(big); !errors.Is(err, errTooLarge) {
		t.Errorf("reading a too large file: err = %v, want errTooLarge", err)
	}
	ok := writeFile(t, "ok", strings.Repeat("#", maxFileSize))
	if _, err := readFileLimited(ok); err != nil {
		t.Errorf("reading a file of the maximum size: %v", err)
	}
	opts := testOptions(t, nil)
	opts.Path = big
	_, err := Load(opts)
	matchError(t, err, `: cannot read the configuration file: larger than 1048576 bytes`)
}

func TestFileTwins(t *testing.T) {
	dir := t.TempDir()
	secret := func(name, content string) string { return writeSecret(t, dir, name, content) }
	hosts := secret("hosts", "qmtp://a.example.com\n\n  smtps://u@b.example.com  \r\n\nlmtp:/run/l")
	timeout := secret("timeout", "42s\n\n")
	from := secret("from", "sender@example.com\r\n")
	domain := secret("domain", "example.net")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name    string
		content string
		env     env
		want    want
	}{
		{
			"list and scalar in the file",
			"smarthost_file " + hosts + "\ntimeout_file " + timeout + "\nfrom_file " + from + "\n",
			nil,
			want{smarthosts: []string{"qmtp://a.example.com", "smtps://u@b.example.com", "lmtp:/run/l"}, timeout: 42 * time.Second, from: "sender@example.com"},
		},
		{
			"list and scalar in the environment",
			"",
			env{"RELAYMAIL_SMARTHOST_FILE": hosts, "RELAYMAIL_DOMAIN_FILE": domain},
			want{smarthosts: []string{"qmtp://a.example.com", "smtps://u@b.example.com", "lmtp:/run/l"}, domain: "example.net"},
		},
		{
			"environment _FILE overrides the file's key",
			"smarthost qmtp://file.example.com\ntimeout 1s\n",
			env{"RELAYMAIL_SMARTHOST_FILE": hosts, "RELAYMAIL_TIMEOUT_FILE": timeout},
			want{smarthosts: []string{"qmtp://a.example.com", "smtps://u@b.example.com", "lmtp:/run/l"}, timeout: 42 * time.Second},
		},
		{
			"environment key overrides the file's _file, which is not read",
			"smarthost_file " + missing + "\n",
			env{"RELAYMAIL_SMARTHOST": "qmtp://env.example.com"},
			want{smarthosts: []string{"qmtp://env.example.com"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(t, tt.content, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			check(t, c, tt.want)
		})
	}
}

func matchError(t *testing.T, err error, pattern string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one matching %s", pattern)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %v is a %T, want *Error", err, err)
	}
	if !regexp.MustCompile(pattern).MatchString(err.Error()) {
		t.Errorf("error\n\t%s\ndoes not match\n\t%s", err, pattern)
	}
}

// TestBadFiles loads every testdata/bad/*.conf and matches the error against
// the regexp in the .expected-error file next to it.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".conf") + ".expected-error")
			if err != nil {
				t.Fatal(err)
			}
			opts := testOptions(t, nil)
			opts.Path = f
			_, err = Load(opts)
			matchError(t, err, strings.TrimSpace(string(want)))
			var e *Error
			if errors.As(err, &e) && (e.File != f || e.Line == 0) {
				t.Errorf("error located at %q line %d, want %q and a line", e.File, e.Line, f)
			}
		})
	}
}

func TestEnvironmentErrors(t *testing.T) {
	dir := t.TempDir()
	secret := func(name, content string) string { return writeSecret(t, dir, name, content) }
	badList := secret("badlist", "qmtp://a.example.com\n\nfoo\n")
	empty := secret("empty", "\n\n")
	blank := secret("blank", " \n\t\n")
	missing := filepath.Join(dir, "missing")
	q := regexp.QuoteMeta

	tests := []struct {
		name    string
		file    string
		env     env
		wantErr string
	}{
		{"bad duration", "", env{"RELAYMAIL_TIMEOUT": "5x"},
			`^RELAYMAIL_TIMEOUT: "5x" is not a duration \(write e\.g\. 90s or 5m\)$`},
		{"zero timeout", "", env{"RELAYMAIL_TIMEOUT": "0"},
			`^RELAYMAIL_TIMEOUT: "0" is not a positive duration`},
		{"timeout too long", "", env{"RELAYMAIL_TIMEOUT": "61m"},
			`^RELAYMAIL_TIMEOUT: "61m" is more than the maximum of 1h \(write at most 1h\)$`},
		{"seconds too many", "", env{"RELAYMAIL_TIMEOUT": "3601"},
			`^RELAYMAIL_TIMEOUT: 3601 seconds is more than the maximum of 1h`},
		{"both key and _FILE", "", env{"RELAYMAIL_FROM": "a", "RELAYMAIL_FROM_FILE": "/x"},
			`^RELAYMAIL_FROM_FILE: both RELAYMAIL_FROM and RELAYMAIL_FROM_FILE are set \(unset one of them\)$`},
		{"list of separators only", "", env{"RELAYMAIL_SMARTHOST": " , ,"},
			`^RELAYMAIL_SMARTHOST: no value in the list \(separate values with spaces or commas, e\.g\. RELAYMAIL_SMARTHOST="smtp://mail\.example\.com"\)$`},
		{"bad smarthost in a list", "", env{"RELAYMAIL_SMARTHOST": "qmtp://a.example.com,ftp://b"},
			`^RELAYMAIL_SMARTHOST: unknown scheme "ftp" in "ftp://b"`},
		{"bad log", "", env{"RELAYMAIL_LOG": "syslg"},
			`^RELAYMAIL_LOG: "syslg" is not a log destination \(did you mean "syslog"\? use syslog, stderr or none\)$`},
		{"bad domain", "", env{"RELAYMAIL_DOMAIN": "exa_mple.com"},
			`^RELAYMAIL_DOMAIN: "exa_mple\.com" contains "_"; a domain name has only letters, digits, hyphens and dots \(write a name like mail\.example\.com`},
		{"relative _FILE", "", env{"RELAYMAIL_TIMEOUT_FILE": "secrets/t"},
			`^RELAYMAIL_TIMEOUT_FILE: "secrets/t" is not an absolute path \(sendmail runs from any directory; write e\.g\. /run/secrets/timeout\)$`},
		{"missing _FILE", "", env{"RELAYMAIL_TIMEOUT_FILE": missing},
			`^RELAYMAIL_TIMEOUT_FILE: cannot read ` + q(missing) + `: no such file or directory \(create it, or fix the path\)$`},
		{"odd _FILE path", "", env{"RELAYMAIL_TIMEOUT_FILE": "/no such/file\r"},
			`^RELAYMAIL_TIMEOUT_FILE: cannot read "/no such/file\\r": no such file or directory \(create it, or fix the path\)$`},
		{"empty scalar _FILE", "", env{"RELAYMAIL_TIMEOUT_FILE": empty},
			`^RELAYMAIL_TIMEOUT_FILE: ` + q(empty) + ` is empty \(write the timeout into it\)$`},
		{"empty list _FILE", "", env{"RELAYMAIL_SMARTHOST_FILE": blank},
			`^RELAYMAIL_SMARTHOST_FILE: ` + q(blank) + ` is empty \(write one smarthost per line into it\)$`},
		{"bad line in a list _FILE", "", env{"RELAYMAIL_SMARTHOST_FILE": badList},
			`^RELAYMAIL_SMARTHOST_FILE: ` + q(badList) + `:3: "foo" has no scheme`},
		{"bad line in a list _file in the file", "\n\nsmarthost_file " + badList + "\n", nil,
			`relaymail\.conf:3: smarthost_file: ` + q(badList) + `:3: "foo" has no scheme`},
		{"missing _file in the file", "# x\ntimeout_file " + missing + "\n", nil,
			`relaymail\.conf:2: timeout_file: cannot read ` + q(missing) + `: no such file or directory`},
		{"bad scalar _file in the file", "domain_file " + badList + "\n", nil,
			`relaymail\.conf:1: domain_file: ` + q(badList) + `: ".*" contains ":"`},
		{"file errors come before environment errors", "log x\n", env{"RELAYMAIL_TIMEOUT": "x"},
			`relaymail\.conf:1: log: "x" is not a log destination`},
		{"file errors in line order", "timeout x\nlog x\nsmarthost x\n", nil,
			`relaymail\.conf:1: timeout: "x" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(t, tt.file, tt.env)
			matchError(t, err, tt.wantErr)
			var e *Error
			if errors.As(err, &e) && tt.file == "" && (e.File != Environment || e.Line != 0) {
				t.Errorf("error located at %q line %d, want %q and no line", e.File, e.Line, Environment)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "/etc/relaymail.conf", Line: 12, Key: "smarhost", Msg: `unknown key "smarhost"`, Hint: `did you mean "smarthost"?`},
			`/etc/relaymail.conf:12: unknown key "smarhost" (did you mean "smarthost"?)`},
		{Error{File: Environment, Key: "RELAYMAIL_TIMEOUT", Msg: `"5x" is not a duration`, Hint: "write e.g. 90s or 5m"},
			`RELAYMAIL_TIMEOUT: "5x" is not a duration (write e.g. 90s or 5m)`},
		{Error{File: "/x.conf", Msg: "cannot read the configuration file: permission denied"},
			`/x.conf: cannot read the configuration file: permission denied`},
		{Error{Key: "hostname", Msg: "m", Hint: "h"}, `hostname: m (h)`},
		{Error{Msg: "m"}, `m`},
		{Error{File: "/a\tb", Line: 1, Msg: "x\ny\x00", Hint: "\u2028"}, `/a\tb:1: x\ny\x00 (\u2028)`},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestMaxHeaderSize(t *testing.T) {
	for in, want := range map[string]int64{"": 1 << 20, "2k": 2048, "4096": 4096, "3M": 3 << 20} {
		env := map[string]string{}
		if in != "" {
			env["RELAYMAIL_MAX_HEADER_SIZE"] = in
		}
		c, err := Load(Options{Path: "/dev/null", Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Hostname: func() (string, error) { return "host.example.com", nil }, MailnamePath: "/nonexistent", HostsPath: "/nonexistent"})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if c.MaxHeaderSize != want {
			t.Errorf("%q: MaxHeaderSize = %d, want %d", in, c.MaxHeaderSize, want)
		}
	}
	for _, bad := range []string{"0", "-1", "1x", "100", "65M", " 1k", "k"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestSMTPKeys(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cr#t with spaces\n"), 0o600)
	conf := filepath.Join(dir, "relaymail.conf")
	os.WriteFile(conf, []byte("smarthost smtps://u@mail.example.com\npassword_file "+pw+
		"\ntls_ca_file /etc/ssl/ca.pem\ntls_cert_file /etc/ssl/c.pem\ntls_key_file /etc/ssl/k.pem\n"+
		"tls_fingerprint AB:"+strings.Repeat("cd", 31)+"\n"), 0o644)
	c, err := Load(Options{Path: conf, Getenv: func(string) (string, bool) { return "", false },
		Hostname: func() (string, error) { return "host.example.com", nil }, MailnamePath: "/nonexistent", HostsPath: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Password != "s3cr#t with spaces" || c.TLSCAFile != "/etc/ssl/ca.pem" || c.TLSCertFile != "/etc/ssl/c.pem" ||
		c.TLSKeyFile != "/etc/ssl/k.pem" || c.TLSFingerprint != "ab"+strings.Repeat("cd", 31) {
		t.Errorf("loaded %+v", c)
	}
	for _, bad := range []string{"tls_ca_file ca.pem\n", "tls_fingerprint 12:34\n", "tls_fingerprint " + strings.Repeat("zz", 32) + "\n"} {
		os.WriteFile(conf, []byte(bad), 0o644)
		if _, err := Load(Options{Path: conf, Getenv: func(string) (string, bool) { return "", false },
			Hostname: func() (string, error) { return "host.example.com", nil }, MailnamePath: "/nonexistent", HostsPath: "/nonexistent"}); err == nil || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestQueueKeys(t *testing.T) {
	load := func(env map[string]string) (*Config, error) {
		return Load(Options{Path: "/dev/null", Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Hostname: func() (string, error) { return "host.example.com", nil }, MailnamePath: "/nonexistent", HostsPath: "/nonexistent"})
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Queue || c.QueueDir != "/var/spool/relaymail" || c.DeliveryMode != "interactive" || c.RetryMin != time.Minute ||
		c.RetryMax != time.Hour || c.QueueLifetime != 5*24*time.Hour || !c.FlushAfterSend {
		t.Errorf("defaults %+v", c)
	}
	c, err = load(map[string]string{"RELAYMAIL_QUEUE": "off", "RELAYMAIL_QUEUE_DIR": "/tmp/q", "RELAYMAIL_DELIVERY_MODE": "background",
		"RELAYMAIL_RETRY_MIN": "30s", "RELAYMAIL_RETRY_MAX": "2h", "RELAYMAIL_QUEUE_LIFETIME": "36h", "RELAYMAIL_FLUSH_AFTER_SEND": "no"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue || c.QueueDir != "/tmp/q" || c.DeliveryMode != "background" || c.RetryMin != 30*time.Second ||
		c.RetryMax != 2*time.Hour || c.QueueLifetime != 36*time.Hour || c.FlushAfterSend {
		t.Errorf("overrides %+v", c)
	}
	for k, v := range map[string]string{"RELAYMAIL_QUEUE": "yes", "RELAYMAIL_QUEUE_DIR": "spool", "RELAYMAIL_DELIVERY_MODE": "later",
		"RELAYMAIL_RETRY_MIN": "0s", "RELAYMAIL_QUEUE_LIFETIME": "5 days", "RELAYMAIL_FLUSH_AFTER_SEND": "on"} {
		if _, err := load(map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}
