package config

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/internal/mantest"
)

// The tests in this file keep man/relaymail.conf.5 and the schema in step:
// the page documents every key, and documents no key that does not exist.

const manPage = "../man/relaymail.conf.5"

// TestManPageKeys: every key of the schema is an item of the KEYS section of
// relaymail.conf(5), all at the same level of the list.
func TestManPageKeys(t *testing.T) {
	keys := mantest.Section(t, mantest.Render(t, manPage), "KEYS")
	indent := -1
	for _, k := range Keys() {
		found := false
		for _, l := range keys {
			rest, ok := strings.CutPrefix(strings.TrimLeft(l, " "), k.Name)
			if !ok || (rest != "" && rest[0] != ' ') {
				continue
			}
			if indent < 0 {
				indent = mantest.Indent(l)
			}
			if mantest.Indent(l) == indent {
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
