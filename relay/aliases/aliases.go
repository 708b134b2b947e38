// Package aliases reads the aliases(5) file and expands local recipients
// with it.
//
// The format is the one Sendmail, Postfix and every Debian package that
// writes /etc/aliases use:
//
//	# comment
//	postmaster: root
//	root:       admin@example.com, backup@example.com
//	www-data:   root
//	team:       alice,
//	            bob        (a line that starts with white space continues the previous one)
//
// A name is matched without regard to case, as Sendmail does. A target is an
// address, a bare local name (qualified later, by intake, like any other bare
// name), or the name itself (an alias to itself ends the expansion there).
//
// A relay has no mailboxes, no programs to run and no files to write, so the
// targets that need a local delivery agent, "|command", "/path/to/file" and
// ":include:/path", are refused when the file is read, with the file and line,
// rather than silently dropped when mail arrives.
package aliases

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// DefaultPath is where aliases(5) lives on every Unix system.
const DefaultPath = "/etc/aliases"

// maxFileSize bounds what Load reads: an alias file is small, and a mistaken
// path such as /dev/zero must not eat memory.
const maxFileSize = 4 << 20

// maxDepth bounds the nesting of an expansion; a chain that long is a
// mistake, not a configuration.
const maxDepth = 32

// maxTargets bounds the addresses one recipient expands to, so that a
// mistaken file cannot turn one message into an unbounded envelope.
const maxTargets = 1000

// Kind classifies a problem in the file.
type Kind int

const (
	// KindSyntax is a line that is not "name: target, ...".
	KindSyntax Kind = iota + 1
	// KindUnsupported is a target that needs local delivery: a pipe, a
	// file or an :include: list.
	KindUnsupported
	// KindDuplicate is a name defined twice.
	KindDuplicate
	// KindRead is a file that cannot be read.
	KindRead
)

// Error is a problem in an alias file, located at File:Line (Line is 0 for a
// read error).
type Error struct {
	File string
	Line int
	Kind Kind
	Msg  string
	Hint string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

type entry struct {
	name    string // as written, for messages
	targets []string
	line    int
}

// Map is a parsed alias file.
type Map struct {
	file    string
	entries map[string]*entry // by lower-case name
}

// Len is the number of aliases.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.entries)
}

// File is the file the map was read from.
func (m *Map) File() string { return m.file }

// Lookup returns the targets of name, matched without regard to case.
func (m *Map) Lookup(name string) ([]string, bool) {
	if m == nil {
		return nil, false
	}
	e, ok := m.entries[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return e.targets, true
}

// Load reads and parses an alias file. A missing file is an *Error of
// KindRead that wraps fs.ErrNotExist, so that a caller can accept a missing
// default file.
func Load(path string) (*Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, readError(path, err)
	}
	if len(data) > maxFileSize {
		return nil, &Error{File: path, Kind: KindRead, Msg: fmt.Sprintf("the file is larger than %d bytes", maxFileSize), Hint: "an alias file is a short list of names"}
	}
	return Parse(path, data)
}

func readError(path string, err error) *Error {
	why := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		why = pe.Err.Error()
	}
	hint := "it must be a readable regular file"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hint = "create it, or set aliases in relaymail.conf to the right file"
	case errors.Is(err, fs.ErrPermission):
		hint = "make it readable by every user who sends mail; it holds no secrets"
	}
	return &Error{File: path, Kind: KindRead, Msg: "cannot read the alias file: " + why, Hint: hint, Err: err}
}

// Parse parses the content of an alias file; file names it in errors.
func Parse(file string, data []byte) (*Map, error) {
	m := &Map{file: file, entries: map[string]*entry{}}
	var cur []byte // the logical line being assembled
	curLine := 0
	flush := func() error {
		if curLine == 0 {
			return nil
		}
		err := m.add(string(cur), curLine)
		cur, curLine = cur[:0], 0
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(strings.TrimPrefix(string(data), "\uFEFF")))
	sc.Buffer(make([]byte, 0, 4096), maxFileSize+1)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#':
			// A comment or blank line does not end a continued entry in
			// Sendmail; it is simply skipped.
			continue
		case line[0] == ' ' || line[0] == '\t':
			if curLine == 0 {
				return nil, &Error{File: file, Line: n, Kind: KindSyntax, Msg: "a continuation line without an alias before it",
					Hint: "only the targets of an alias may continue on lines that start with white space"}
			}
			cur = append(cur, ' ')
			cur = append(cur, trimmed...)
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		cur, curLine = append(cur[:0], line...), n
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: file, Line: n + 1, Kind: KindSyntax, Msg: "cannot read the line: " + err.Error()}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return m, nil
}

// add parses one logical line, "name: target, target".
func (m *Map) add(text string, line int) error {
	fail := func(kind Kind, hint, format string, a ...any) error {
		return &Error{File: m.file, Line: line, Kind: kind, Msg: fmt.Sprintf(format, a...), Hint: hint}
	}
	name, rest, ok := strings.Cut(text, ":")
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, `"`) && strings.HasSuffix(name, `"`) && len(name) >= 2 {
		name = name[1 : len(name)-1]
	}
	switch {
	case !ok:
		return fail(KindSyntax, "write name: address, address", "no colon after the alias name %q", shorten(name))
	case name == "":
		return fail(KindSyntax, "write name: address, address", "an empty alias name")
	case strings.ContainsAny(name, " \t@<>,\"\\") || hasControl(name):
		return fail(KindSyntax, "an alias name is a bare local name such as root or www-data", "%q is not a valid alias name", shorten(name))
	}
	targets, err := splitTargets(rest)
	if err != nil {
		return fail(KindSyntax, "separate the targets with commas, and close every quote", "alias %s: %v", name, err)
	}
	if len(targets) == 0 {
		return fail(KindSyntax, "give at least one address after the colon", "alias %s has no target", name)
	}
	for _, t := range targets {
		if t == "" {
			return fail(KindSyntax, "write an address such as admin@example.com, or a local name such as root", "alias %s: the empty address <> is no target", name)
		}
		if err := checkTarget(t); err != nil {
			kind := KindSyntax
			var u *unsupported
			if errors.As(err, &u) {
				kind = KindUnsupported
			}
			e := fail(kind, "", "alias %s: %v", name, err).(*Error)
			if u != nil {
				e.Hint = "relaymail relays every message to a smarthost and delivers nothing locally; point the alias at an address that the smarthost delivers, and run the " + u.what + " there"
			} else {
				e.Hint = "write an address such as admin@example.com, or a local name such as root"
			}
			return e
		}
	}
	key := strings.ToLower(name)
	if prev, dup := m.entries[key]; dup {
		return fail(KindDuplicate, "keep one of the two lines", "alias %s is already defined on line %d", name, prev.line)
	}
	m.entries[key] = &entry{name: name, targets: targets, line: line}
	return nil
}

// unsupported is a target that needs a local delivery agent.
type unsupported struct{ target, kind, what string }

func (u *unsupported) Error() string {
	return fmt.Sprintf("%s %q is not supported by a relay", u.kind, shorten(u.target))
}

// checkTarget refuses what a relay cannot deliver and what is no address.
func checkTarget(t string) error {
	// "|command" is quoted when the command has spaces; show it bare.
	bare := strings.TrimPrefix(t, `"`)
	if bare != t {
		bare = strings.TrimSuffix(bare, `"`)
	}
	switch {
	case strings.HasPrefix(bare, "|"):
		return &unsupported{bare, "the pipe", "command"}
	case strings.HasPrefix(bare, "/"):
		return &unsupported{bare, "the file", "delivery into that file"}
	case len(bare) >= 9 && strings.EqualFold(bare[:9], ":include:"):
		return &unsupported{bare, "the include list", "list"}
	case hasControl(t):
		return fmt.Errorf("the target %q contains a control character", shorten(t))
	case strings.ContainsAny(t, " \t<>"):
		if a, ok := strings.CutPrefix(t, "<"); ok && strings.HasSuffix(a, ">") && !strings.ContainsAny(a[:len(a)-1], " \t<>") {
			return nil
		}
		return fmt.Errorf("the target %q is not one address", shorten(t))
	case strings.HasPrefix(t, "@") || strings.HasSuffix(t, "@"):
		return fmt.Errorf("the target %q has an empty local part or domain", shorten(t))
	}
	return nil
}

// splitTargets splits the right-hand side at commas outside quotes and
// comments, dropping empty elements (a trailing comma is common).
func splitTargets(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQuote, depth := false, 0
	emit := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (inQuote || depth > 0) && i+1 < len(s):
			cur.WriteByte(c)
			i++
			cur.WriteByte(s[i])
			continue
		case inQuote:
			if c == '"' {
				inQuote = false
			}
		case depth > 0:
			// A comment is dropped, as in an address header.
			switch c {
			case '(':
				depth++
			case ')':
				depth--
			}
			continue
		case c == '"':
			inQuote = true
		case c == '(':
			depth = 1
			continue
		case c == ',':
			emit()
			continue
		}
		cur.WriteByte(c)
	}
	if inQuote {
		return nil, errors.New("unterminated quoted string")
	}
	if depth > 0 {
		return nil, errors.New("unterminated comment")
	}
	emit()
	for i, t := range out {
		// <addr> is accepted and means addr.
		if a, ok := strings.CutPrefix(t, "<"); ok && strings.HasSuffix(a, ">") {
			out[i] = a[:len(a)-1]
		}
	}
	return out, nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// shorten keeps error messages on one line.
func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Resolver expands recipients with a Map.
type Resolver struct {
	Map *Map
	// Local reports whether addr (fully qualified) is one of this host's
	// addresses and returns the local part to look up: a name@domain
	// where domain is the configured domain or host name.
	Local func(addr string) (name string, ok bool)
	// Qualify turns a target as written in the file into a full address
	// (a bare name gets the domain).
	Qualify func(target string) (string, error)
}

// Step is one alias applied during an expansion, for sendmail -bv.
type Step struct {
	From    string   // the address that matched
	Targets []string // what it became, qualified
	Line    int      // the line of the alias
}

// Expand returns the addresses addr stands for, in order, with the aliases
// that were applied. An address that is not an alias stands for itself. An
// alias to itself ends there: "root: root, admin" keeps root and adds admin.
// A longer loop (a: b, b: a) ends at the address that closes it, so mail
// still goes somewhere a person reads, the smarthost's idea of that address.
func (r *Resolver) Expand(addr string) ([]string, []Step, error) {
	if r == nil || r.Map == nil || r.Map.Len() == 0 {
		return []string{addr}, nil, nil
	}
	x := &expansion{r: r, seen: map[string]bool{}}
	if err := x.walk(addr, map[string]bool{}, 0); err != nil {
		return nil, nil, err
	}
	return x.out, x.steps, nil
}

type expansion struct {
	r     *Resolver
	out   []string
	seen  map[string]bool // results, to drop duplicates
	steps []Step
}

func (x *expansion) emit(addr string) error {
	// Local parts may be case-sensitive (RFC 5321 §2.4); domains are not.
	k := addr
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		k = addr[:i] + "@" + strings.ToLower(addr[i+1:])
	}
	if x.seen[k] {
		return nil
	}
	if len(x.out) >= maxTargets {
		return fmt.Errorf("aliases: the expansion is longer than %d addresses", maxTargets)
	}
	x.seen[k] = true
	x.out = append(x.out, addr)
	return nil
}

func (x *expansion) walk(addr string, path map[string]bool, depth int) error {
	name, local := x.r.Local(addr)
	if !local {
		return x.emit(addr)
	}
	key := strings.ToLower(name)
	e, ok := x.r.Map.entries[key]
	if !ok || path[key] {
		return x.emit(addr)
	}
	if depth >= maxDepth {
		return fmt.Errorf("aliases: %s: the aliases nest deeper than %d levels (%s line %d)", addr, maxDepth, x.r.Map.file, e.line)
	}
	path[key] = true
	defer delete(path, key)
	step := Step{From: addr, Line: e.line}
	for _, t := range e.targets {
		q, err := x.r.Qualify(t)
		if err != nil {
			return fmt.Errorf("aliases: %s line %d: alias %s: %w", x.r.Map.file, e.line, e.name, err)
		}
		step.Targets = append(step.Targets, q)
	}
	x.steps = append(x.steps, step)
	for _, q := range step.Targets {
		if n, ok := x.r.Local(q); ok && strings.EqualFold(n, name) {
			// An alias to itself: the name is a final recipient.
			if err := x.emit(q); err != nil {
				return err
			}
			continue
		}
		if err := x.walk(q, path, depth+1); err != nil {
			return err
		}
	}
	return nil
}
