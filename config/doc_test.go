package config

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The tests in this file keep man/relaymail.conf.5 and the schema in step:
// the page documents every key, and documents no key that does not exist.

const manPage = "../man/relaymail.conf.5"

// overstrike matches the backspace sequences a terminal renderer uses for
// bold ("x\bx") and underline ("_\bx").
var overstrike = regexp.MustCompile(`(?s).\x08`)

// renderMan renders an mdoc page with mandoc as plain text, wide enough that
// no paragraph is wrapped, so that every list item starts a line. The test
// is skipped when mandoc is not installed (make check installs it).
func renderMan(t *testing.T, path string) []string {
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
	text = strings.NewReplacer("\u2010", "-", "\u2212", "-").Replace(text)
	return strings.Split(text, "\n")
}

// section returns the lines of the rendered section name, up to the next
// heading.
func section(t *testing.T, lines []string, name string) []string {
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

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// TestManPageKeys: every key of the schema is an item of the KEYS section of
// relaymail.conf(5), all at the same level of the list.
func TestManPageKeys(t *testing.T) {
	keys := section(t, renderMan(t, manPage), "KEYS")
	indent := -1
	for _, k := range Keys() {
		found := false
		for _, l := range keys {
			rest, ok := strings.CutPrefix(strings.TrimLeft(l, " "), k.Name)
			if !ok || (rest != "" && rest[0] != ' ') {
				continue
			}
			if indent < 0 {
				indent = indentOf(l)
			}
			if indentOf(l) == indent {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("relaymail.conf.5 KEYS lacks an item for the key %q (add .It Cm %s)", k.Name, k.Name)
		}
	}
}

// itCm finds the key names of the page's source: the first argument of
// every ".It Cm" line.
var itCm = regexp.MustCompile(`(?m)^\.It[ \t]+Cm[ \t]+([^ \t\n]+)`)

// TestManPageDocumentsOnlyKeys: every name the page lists with .It Cm is a
// key of the schema or its _file twin, so the page cannot document a key
// that does not exist.
func TestManPageDocumentsOnlyKeys(t *testing.T) {
	src, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	matches := itCm.FindAllSubmatch(src, -1)
	if len(matches) == 0 {
		t.Fatal("relaymail.conf.5 has no .It Cm lines")
	}
	for _, m := range matches {
		name := string(m[1])
		base, _ := strings.CutSuffix(name, fileSuffix)
		if lookupKey(name) == nil && lookupKey(base) == nil {
			t.Errorf("relaymail.conf.5 documents %q, which is neither a key nor a key%s twin", name, fileSuffix)
		}
	}
}
