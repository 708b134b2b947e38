package config

import (
	"strconv"
	"strings"
	"unicode"
)

// Environment is the File of an Error about an environment variable.
const Environment = "environment"

// Error is a configuration mistake, located where the user can fix it. The
// caller prints it after "sendmail: " and exits with EX_CONFIG (78).
type Error struct {
	// File is the configuration file, or Environment (then Key is the
	// variable name), or "" when the problem is in a derived default.
	File string
	// Line is 1-based; 0 when the error is not about one line.
	Line int
	// Key is the key or variable concerned, as the user wrote it.
	Key string
	// Msg says what is wrong, Hint what would be right.
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File == Environment:
		b.WriteString(e.Key)
	case e.File != "":
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
	default:
		b.WriteString(e.Key)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return oneLine(b.String())
}

// oneLine escapes what a terminal or a log would act on, so that a value
// quoted carelessly by some validator cannot break the error into several
// lines or forge a log line.
func oneLine(s string) string {
	clean := true
	for _, r := range s {
		if r != ' ' && !unicode.IsGraphic(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == ' ' || unicode.IsGraphic(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// redact removes a secret value from an error, in every form a validator is
// likely to have printed it: raw and quoted. Validators are written for
// ordinary values; doing the redaction here means a new validator cannot leak
// a password by forgetting about it.
func (e *Error) redact(secret string) {
	if secret == "" {
		return
	}
	forms := []string{strconv.Quote(secret), secret}
	if q := strconv.Quote(secret); len(q) > 2 {
		forms = append(forms, q[1:len(q)-1])
	}
	for _, f := range forms {
		e.Msg = strings.ReplaceAll(e.Msg, f, "(secret)")
		e.Hint = strings.ReplaceAll(e.Hint, f, "(secret)")
	}
}

// allNames lists every name the file accepts, for suggestions.
func allNames() []string {
	var names []string
	for _, d := range schema {
		names = append(names, d.Name, d.Name+fileSuffix)
	}
	return names
}

// knownKeys is the fallback hint when no key is close to a mistyped one.
func knownKeys() string {
	names := make([]string, len(schema))
	for i, d := range schema {
		names[i] = d.Name
	}
	return "known keys: " + strings.Join(names, ", ") + "; each also as <key>_file"
}

// suggest returns the candidate the user most likely meant by word, or "".
// Close means at most two edits apart, or one being a prefix of the other (at
// least three letters: "host" for "hostname"), or sharing a long prefix
// ("smarthost_url" for "smarthost").
func suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	best, bestDist := "", 3
	for _, c := range candidates {
		d := distance(w, c)
		if d > 2 {
			p := commonPrefix(w, c)
			if p >= 4 || p >= 3 && (p == len(w) || p == len(c)) {
				d = 2
			}
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// distance is the Levenshtein distance in bytes. Key names are ASCII, and a
// non-ASCII typo is far from all of them anyway. Long words are cut short,
// as no key is long and the cost is quadratic.
func distance(a, b string) int {
	const max = 64
	if len(a) > max {
		a = a[:max]
	}
	if len(b) > max {
		b = b[:max]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
