// Package config loads relaymail's settings from /etc/relaymail.conf and the
// environment.
//
// The file has one "key value" per line. The value is the rest of the line
// without the white space around it, so it may contain spaces. A line whose
// first non-blank character is # is a comment, but a # later in a line is
// part of the value: passwords and URLs may contain one, and a trailing
// comment would silently cut them short. "key = value" and "key=value" are
// errors rather than guesses, so a value in the file never starts with "="
// (a <key>_file may hold one). A list key (smarthost) may be given on several
// lines, in order; any other key may appear once, so that a forgotten earlier
// line cannot quietly win or lose.
//
// Every key has an environment twin RELAYMAIL_<KEY> that overrides the file,
// so a container needs no file at all; for a list key the variable holds the
// whole list, separated by white space or commas. An empty variable counts as
// unset, because container tools often define variables they leave blank.
// Unknown RELAYMAIL_* variables are ignored, as other tools may share the
// prefix.
//
// Every key also has a <key>_file twin (RELAYMAIL_<KEY>_FILE in the
// environment) naming a file that holds the value, the "secrets" convention of
// container platforms: the content without its trailing newlines, or for a
// list one value per non-empty line. The path must be absolute because
// sendmail is run from any directory.
//
// RELAYMAIL_CONFIG, or -C, names another file, which must then exist. The
// default file may be missing: then only defaults and the environment apply.
//
// Load reports the first mistake as an *Error located at file:line or at the
// variable, saying what is wrong and what would be right. Values of keys
// marked Secret never appear in an error.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/relaymail/relaymail/relay/smarthost"
)

// DefaultPath is the configuration file read when no other is named.
const DefaultPath = "/etc/relaymail.conf"

const (
	envPrefix  = "RELAYMAIL_"
	envConfig  = "RELAYMAIL_CONFIG"
	fileSuffix = "_file"
	// maxFileSize stops a mistaken path such as /dev/zero from eating all
	// memory; real configuration and secret files are tiny.
	maxFileSize = 1 << 20
)

// Config is the loaded, validated configuration.
type Config struct {
	Smarthosts []*smarthost.URL // in failover order; empty for none
	Domain     string           // added to bare local names
	Hostname   string           // EHLO/LHLO name and Message-ID right-hand side
	From       string           // default envelope sender; "" for the login name
	// Aliases is the aliases(5) file; RewriteFrom is "never", "missing"
	// or "always"; AllowFromOverride lets -f set the envelope sender.
	Aliases           string
	RewriteFrom       string
	AllowFromOverride bool
	Timeout           time.Duration
	// MaxHeaderSize bounds the message header intake accepts, in bytes.
	MaxHeaderSize int64
	// MaxMessageSize bounds the whole message, in bytes; 0 for no limit.
	MaxMessageSize int64
	// Password is the SMTP AUTH secret; never print it.
	Password string
	// OAuth2TokenFile holds the OAuth2 bearer token for auth=xoauth2; it is
	// read again for every connection, so that a token refresher can
	// replace it while relaymail runs.
	OAuth2TokenFile string
	// TLS material for the smarthost connections; "" for none.
	TLSCAFile, TLSCertFile, TLSKeyFile string
	TLSFingerprint                     string // lower-case hex SHA-256, no colons
	// The queue (relaymail-queue(5)).
	Queue              bool
	QueueDir           string
	DeliveryMode       string // "interactive" | "background" | "queue"
	RetryMin, RetryMax time.Duration
	QueueLifetime      time.Duration
	FlushAfterSend     bool
	Log                string // "syslog" | "stderr" | "none"
	Path               string // the file that was read, "" if none
	// Warnings are problems that do not stop the run, such as a secret
	// that every user can read; the program reports each once, on stderr
	// and in the log.
	Warnings []string
}

// Options says where Load looks. The zero value is right for an ordinary run.
type Options struct {
	// Path is the file named by -C. "" means RELAYMAIL_CONFIG, else
	// DefaultPath.
	Path string
	// DefaultPath replaces the package's DefaultPath: the file read when
	// none is named, and the only one a privileged run reads. Programs set
	// it from a value fixed when they are built, never at run time.
	DefaultPath string
	// Getenv looks up environment variables; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// IgnoreEnv is for a privileged (setgid) run: the caller's environment
	// and -C are under an untrusted user's control, so only DefaultPath
	// (or the DefaultPath option) and the files it names are used.
	IgnoreEnv bool

	// Test hooks. "" or nil selects the real thing.
	MailnamePath string                            // /etc/mailname
	HostsPath    string                            // /etc/hosts
	Hostname     func() (string, error)            // os.Hostname
	ReadFile     func(string) ([]byte, error)      // reads every file Load reads
	Stat         func(string) (fs.FileInfo, error) // os.Stat, for the warnings about modes
}

type loader struct {
	getenv       func(string) (string, bool)
	readFile     func(string) ([]byte, error)
	stat         func(string) (fs.FileInfo, error)
	defaultPath  string
	hostname     func() (string, error)
	mailnamePath string
	hostsPath    string
	ignoreEnv    bool

	fqdnDone bool
	fqdnName string
	fqdnErr  error
}

// source is where the value of one key comes from: lines of the file, or
// one environment variable.
type source struct {
	def    *keyDef
	file   string   // the configuration file, or Environment
	name   string   // the key or variable as written
	values []string // the values, or the one path for a _file twin
	lines  []int    // the line of each value; nil for the environment
	path   bool     // values[0] is a file to read the value from
}

// Load reads the configuration. All errors are *Error.
func Load(opts Options) (*Config, error) {
	l := &loader{
		getenv:       opts.Getenv,
		readFile:     opts.ReadFile,
		stat:         opts.Stat,
		defaultPath:  opts.DefaultPath,
		hostname:     opts.Hostname,
		mailnamePath: opts.MailnamePath,
		hostsPath:    opts.HostsPath,
		ignoreEnv:    opts.IgnoreEnv,
	}
	if l.getenv == nil {
		l.getenv = os.LookupEnv
	}
	if l.readFile == nil {
		l.readFile = readFileLimited
	}
	if l.stat == nil {
		l.stat = os.Stat
	}
	if l.defaultPath == "" {
		l.defaultPath = DefaultPath
	}
	if l.hostname == nil {
		l.hostname = os.Hostname
	}
	if l.mailnamePath == "" {
		l.mailnamePath = "/etc/mailname"
	}
	if l.hostsPath == "" {
		l.hostsPath = "/etc/hosts"
	}
	if l.ignoreEnv {
		opts.Path = ""
	}
	return l.load(opts.Path)
}

func (l *loader) env(name string) (string, bool) {
	if l.ignoreEnv {
		return "", false
	}
	v, ok := l.getenv(name)
	return v, ok && v != ""
}

func (l *loader) load(explicit string) (*Config, error) {
	path, namedBy := explicit, "-C"
	if path == "" {
		if p, ok := l.env(envConfig); ok {
			path, namedBy = p, envConfig
		} else {
			path, namedBy = l.defaultPath, ""
		}
	}
	c := &Config{}
	sources := map[string]*source{}
	data, err := l.readFile(path)
	switch {
	case err == nil:
		c.Path = path
		if sources, err = parse(path, data); err != nil {
			return nil, err
		}
		if s := sources["password"]; s != nil && !s.path {
			l.warnReadable(c, path, "holds the password")
		}
	case namedBy == "" && errors.Is(err, fs.ErrNotExist):
		// No file is a valid setup: defaults plus the environment.
	default:
		return nil, &Error{File: path, Msg: "cannot read the configuration file: " + reason(err), Hint: readHint(err, namedBy)}
	}
	if err := l.fromEnv(sources); err != nil {
		return nil, err
	}

	// Report mistakes in the order the user reads them: the file from top to
	// bottom, then the environment.
	order := make([]*source, 0, len(sources))
	for _, s := range sources {
		order = append(order, s)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if (a.file == Environment) != (b.file == Environment) {
			return b.file == Environment
		}
		if a.file != Environment {
			return a.lines[0] < b.lines[0]
		}
		return a.name < b.name
	})
	for _, s := range order {
		if err := l.apply(c, s); err != nil {
			return nil, err
		}
	}
	for i := range schema {
		d := &schema[i]
		if sources[d.Name] == nil && !d.derived && d.Default != "" {
			if err := d.set(c, d.Default); err != nil {
				panic("config: bad default for " + d.Name + ": " + err.Error())
			}
		}
	}
	if c.Hostname == "" {
		h, err := l.derived("hostname")
		if err != nil {
			return nil, err
		}
		c.Hostname = h
	}
	if c.Domain == "" {
		if c.Domain = l.mailname(); c.Domain == "" {
			d, err := l.derived("domain")
			if err != nil {
				return nil, err
			}
			c.Domain = d
		}
	}
	if c.OAuth2TokenFile != "" {
		if c.Password != "" {
			s := sources["oauth2_token_file"]
			e := &Error{File: s.file, Key: s.name, Msg: "both password and oauth2_token_file are set",
				Hint: "set password for a password, or oauth2_token_file for an OAuth2 token, not both"}
			if s.lines != nil {
				e.Line = s.lines[0]
			}
			if s.file != Environment {
				e.Msg = s.name + ": " + e.Msg
			}
			return nil, e
		}
		l.warnReadable(c, c.OAuth2TokenFile, "holds the OAuth2 token")
	}
	if c.TLSKeyFile != "" {
		l.warnReadable(c, c.TLSKeyFile, "holds the TLS private key")
	}
	return c, nil
}

// warnReadable adds a warning when every user may read path, which holds a
// secret (what says which). The file is fine for relaymail either way: the
// warning is for the administrator, once per run.
func (l *loader) warnReadable(c *Config, path, what string) {
	fi, err := l.stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	c.Warnings = append(c.Warnings, fmt.Sprintf("%s %s and every user can read it (mode %04o; make it 0640 root:relaymail, or 0600 for a single user)",
		showPath(path), what, fi.Mode().Perm()))
}

// derived returns the host's FQDN as the default of key, or an error telling
// the user to set key, since there is nothing else they can do about a host
// name the system gives.
func (l *loader) derived(key string) (string, error) {
	where := l.defaultPath
	if !l.ignoreEnv {
		where += " or " + envPrefix + strings.ToUpper(key)
	}
	hint := fmt.Sprintf("set %s in %s", key, where)
	name, err := l.fqdn()
	if err != nil {
		return "", &Error{Key: key, Msg: "cannot find the host name for the default: " + err.Error(), Hint: hint}
	}
	if name == "" {
		return "", &Error{Key: key, Msg: "the system has no host name to use as the default", Hint: hint}
	}
	if err := checkDomain(name); err != nil {
		var ve *valueError
		errors.As(err, &ve)
		return "", &Error{Key: key, Msg: "the system's host name is no usable default: " + ve.msg, Hint: hint}
	}
	return name, nil
}

// parse reads the file's lines into one source per key. It checks the shape
// of every line, but not the values: a key that the environment overrides
// must not need its secret file to exist.
func parse(file string, data []byte) (map[string]*source, error) {
	sources := map[string]*source{}
	text := strings.TrimPrefix(string(data), "\uFEFF")
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		name, value := line, ""
		if j := strings.IndexFunc(line, unicode.IsSpace); j >= 0 {
			name, value = line[:j], strings.TrimSpace(line[j:])
		}
		if k, _, found := strings.Cut(name, "="); found || strings.HasPrefix(value, "=") {
			return nil, equalsError(file, n, k)
		}
		d, isPath := lookupKey(name), false
		if d == nil {
			if base, ok := strings.CutSuffix(name, fileSuffix); ok {
				d, isPath = lookupKey(base), true
			}
		}
		if d == nil {
			return nil, unknownKey(file, n, name)
		}
		if value == "" {
			return nil, &Error{File: file, Line: n, Key: name, Msg: name + " has no value",
				Hint: fmt.Sprintf("write e.g. %q, or remove the line", example(d, isPath))}
		}
		s := sources[d.Name]
		switch {
		case s == nil:
			sources[d.Name] = &source{def: d, file: file, name: name, values: []string{value}, lines: []int{n}, path: isPath}
		case s.path != isPath:
			return nil, &Error{File: file, Line: n, Key: name,
				Msg:  fmt.Sprintf("%s is already given by %s on line %d", name, s.name, s.lines[0]),
				Hint: fmt.Sprintf("use either %s or %s%s, not both", d.Name, d.Name, fileSuffix)}
		case isPath || !d.List:
			hint := fmt.Sprintf("%s may appear once; remove one of the lines", name)
			if isPath && d.List {
				hint = fmt.Sprintf("name one file; it holds one %s per line", d.Name)
			}
			return nil, &Error{File: file, Line: n, Key: name,
				Msg: fmt.Sprintf("%s is already set on line %d", name, s.lines[0]), Hint: hint}
		default:
			s.values = append(s.values, value)
			s.lines = append(s.lines, n)
		}
	}
	return sources, nil
}

// equalsError explains the one syntax mistake people make most, coming from
// ini files and ssmtp.conf. The value is not shown: it may be a secret.
func equalsError(file string, line int, key string) *Error {
	if key == "" {
		return &Error{File: file, Line: line, Msg: `line starts with "="`, Hint: `write "key value"`}
	}
	e := &Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(`"=" after %q`, key)}
	base, _ := strings.CutSuffix(key, fileSuffix)
	switch d, s := lookupKey(base), suggestKey(key); {
	case d != nil:
		e.Hint = fmt.Sprintf(`write "%s value", with a space and no "="`, key)
		if d.Secret {
			e.Hint += fmt.Sprintf(`; a value that itself starts with "=" goes in %s%s`, d.Name, fileSuffix)
		}
	case s != "":
		e.Hint = fmt.Sprintf(`write "%s value", with a space and no "="; %q is not a key`, s, key)
	default:
		e.Hint = fmt.Sprintf(`write "key value", with a space and no "="; %q is not a key either, %s`, key, knownKeys())
	}
	return e
}

func unknownKey(file string, line int, name string) *Error {
	e := &Error{File: file, Line: line, Key: name, Msg: fmt.Sprintf("unknown key %q", name), Hint: knownKeys()}
	if s := suggestKey(name); s != "" {
		e.Hint = fmt.Sprintf("did you mean %q?", s)
	}
	return e
}

// synonyms are the names other mailers give our keys, so that a user moving
// from one of them is pointed at the right key even when the spelling is far.
var synonyms = map[string]string{
	"relayhost":     "smarthost", // Postfix
	"mailhub":       "smarthost", // ssmtp
	"relay":         "smarthost",
	"smtp_server":   "smarthost",
	"myhostname":    "hostname", // Postfix
	"myorigin":      "domain",   // Postfix
	"rewritedomain": "domain",   // ssmtp
	"maildomain":    "domain",   // dma
}

// suggestKey returns the key the user probably meant by name, or "".
func suggestKey(name string) string {
	// People paste environment variable names into the file.
	word := strings.TrimPrefix(strings.ToLower(name), strings.ToLower(envPrefix))
	if s, ok := synonyms[word]; ok && lookupKey(s) != nil {
		return s
	}
	return suggest(word, allNames())
}

func example(d *keyDef, isPath bool) string {
	if isPath {
		return d.Name + fileSuffix + " /run/secrets/" + d.Name
	}
	ex := map[string]string{
		"url":      "smtp://mail.example.com",
		"domain":   "example.com",
		"address":  "user@example.com",
		"duration": "90s",
	}[d.Kind]
	if ex == "" {
		ex = d.Default
	}
	return d.Name + " " + ex
}

// fromEnv replaces file sources by environment ones. The environment wins
// because it is set closer to the run: an image ships a file, a deployment
// adjusts it.
func (l *loader) fromEnv(sources map[string]*source) error {
	for i := range schema {
		d := &schema[i]
		name := envPrefix + strings.ToUpper(d.Name)
		fname := name + strings.ToUpper(fileSuffix)
		v, ok := l.env(name)
		fv, fok := l.env(fname)
		switch {
		case ok && fok:
			return &Error{File: Environment, Key: fname, Msg: fmt.Sprintf("both %s and %s are set", name, fname),
				Hint: "unset one of them"}
		case ok:
			vals := []string{v}
			if d.List {
				vals = splitList(v)
				if len(vals) == 0 {
					return &Error{File: Environment, Key: name, Msg: "no value in the list",
						Hint: fmt.Sprintf("separate values with spaces or commas, e.g. %s=%q", name, strings.Fields(example(d, false))[1])}
				}
			}
			sources[d.Name] = &source{def: d, file: Environment, name: name, values: vals}
		case fok:
			sources[d.Name] = &source{def: d, file: Environment, name: fname, values: []string{fv}, path: true}
		}
	}
	return nil
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// apply validates a source's values and stores them in c.
func (l *loader) apply(c *Config, s *source) error {
	d := s.def
	at := func(i int) *Error {
		e := &Error{File: s.file, Key: s.name}
		if s.lines != nil {
			e.Line = s.lines[i]
		}
		if s.file != Environment {
			e.Msg = s.name + ": "
		}
		return e
	}
	if !s.path {
		for i, v := range s.values {
			if err := d.set(c, v); err != nil {
				return valueErr(at(i), "", err, d, v)
			}
		}
		return nil
	}

	path := s.values[0]
	shown := showPath(path)
	if !filepath.IsAbs(path) {
		e := at(0)
		e.Msg += fmt.Sprintf("%q is not an absolute path", path)
		e.Hint = "sendmail runs from any directory; write e.g. /run/secrets/" + d.Name
		return e
	}
	data, err := l.readFile(path)
	if err != nil {
		e := at(0)
		e.Msg += fmt.Sprintf("cannot read %s: %s", shown, reason(err))
		e.Hint = readHint(err, "")
		return e
	}
	if d.Secret {
		l.warnReadable(c, path, "holds the "+d.Name)
	}
	content := strings.TrimPrefix(string(data), "\uFEFF")
	if !d.List {
		v := strings.TrimRight(content, "\r\n")
		if v == "" {
			e := at(0)
			e.Msg += shown + " is empty"
			e.Hint = "write the " + d.Name + " into it"
			return e
		}
		if err := d.set(c, v); err != nil {
			return valueErr(at(0), shown+": ", err, d, v)
		}
		return nil
	}
	found := false
	for i, line := range strings.Split(content, "\n") {
		v := strings.TrimSpace(line)
		if v == "" {
			continue
		}
		found = true
		if err := d.set(c, v); err != nil {
			return valueErr(at(0), fmt.Sprintf("%s:%d: ", shown, i+1), err, d, v)
		}
	}
	if !found {
		e := at(0)
		e.Msg += shown + " is empty"
		e.Hint = fmt.Sprintf("write one %s per line into it", d.Name)
		return e
	}
	return nil
}

// valueErr completes e with a validation failure of value v.
func valueErr(e *Error, where string, err error, d *keyDef, v string) *Error {
	var ve *valueError
	if errors.As(err, &ve) {
		e.Msg += where + ve.msg
		e.Hint = ve.hint
	} else {
		e.Msg += where + err.Error()
	}
	if d.Secret {
		e.redact(v)
	}
	return e
}

// showPath quotes a path only when it holds characters that would garble the
// one-line error, keeping the common case easy to copy.
func showPath(p string) string {
	for _, r := range p {
		if !unicode.IsGraphic(r) || r == ' ' {
			return strconv.Quote(p)
		}
	}
	return p
}

// reason is the operating system's word for a failure, without the path and
// operation that the message already names.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func readHint(err error, namedBy string) string {
	switch {
	case errors.Is(err, fs.ErrNotExist) && namedBy == envConfig:
		return "create it, or fix or unset " + envConfig
	case errors.Is(err, fs.ErrNotExist) && namedBy == "-C":
		return "create it, or fix the path given with -C"
	case errors.Is(err, fs.ErrNotExist):
		return "create it, or fix the path"
	case errors.Is(err, fs.ErrPermission):
		return "make it readable by the user running sendmail, or run as a user who can read it"
	default:
		return "it must be a readable regular file"
	}
}

var errTooLarge = fmt.Errorf("larger than %d bytes", maxFileSize)

func readFileLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: unwrapPath(err)}
	}
	if len(data) > maxFileSize {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errTooLarge}
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
