// Package mantest renders the project's mdoc man pages as plain text for the
// tests that keep them in step with the code (every flag, every config key).
package mantest

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// overstrike matches the backspace sequences a terminal renderer uses for
// bold ("x\bx") and underline ("_\bx"): dropping the character before each
// backspace leaves the plain text.
var overstrike = regexp.MustCompile(`(?s).\x08`)

// Render renders an mdoc page with mandoc as plain text. The width is large
// so that no paragraph is wrapped: every line then starts where the source
// starts a paragraph or a list item, which is what the tests look for. The
// test is skipped when mandoc is not installed (make check installs it).
func Render(t testing.TB, path string) []string {
	t.Helper()
	mandoc, err := exec.LookPath("mandoc")
	if err != nil {
		t.Skip("mandoc is not installed; it renders the man page for this test")
	}
	cmd := exec.Command(mandoc, "-T", "utf8", "-O", "width=1000", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mandoc %s: %v: %s", path, err, stderr.String())
	}
	text := overstrike.ReplaceAllString(string(out), "")
	// Some mandoc versions render a plain "-" as U+2010 HYPHEN and "\-" as
	// U+2212 MINUS SIGN; the code is written in ASCII.
	text = strings.NewReplacer("\u2010", "-", "\u2212", "-").Replace(text)
	return strings.Split(text, "\n")
}

// Section returns the lines of the rendered section name: from its heading,
// a line of its own at the left margin, to the next heading.
func Section(t testing.TB, lines []string, name string) []string {
	t.Helper()
	start := -1
	for i, l := range lines {
		if start < 0 {
			if l == name {
				start = i + 1
			}
			continue
		}
		if l != "" && l[0] != ' ' {
			return lines[start:i]
		}
	}
	if start < 0 {
		t.Fatalf("the man page has no %s section", name)
	}
	return lines[start:]
}

// Indent is the number of leading spaces of a rendered line.
func Indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
