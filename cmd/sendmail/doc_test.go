package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/internal/mantest"
)

// The tests in this file keep man/sendmail.8 and the flag table in step: the
// page must describe every row of flags, in the table's own words, and must
// not describe a letter the table does not have.

const manPage = "../../man/sendmail.8"

// fold joins lines and collapses white space, so that text can be compared
// whatever the line breaks and sentence spacing.
func fold(lines []string) string {
	return strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
}

// manHead is how the page shows a row's syntax once rendered: mdoc writes
// the table's <placeholders> as underlined Ar arguments, which are plain
// words once the underline is stripped ("-A <x>" is "-A x", "-q[<x>]" is
// "-q[x]").
func manHead(f *flagSpec) string {
	return strings.NewReplacer("<", "", ">", "").Replace(f.syntax)
}

// isHeadLine reports whether line is a list item head showing head: the
// head, then the end of the line or the blanks before the item's text.
func isHeadLine(line, head string) bool {
	rest, ok := strings.CutPrefix(strings.TrimLeft(line, " "), head)
	return ok && (rest == "" || rest[0] == ' ')
}

// TestManPageOptions: every row of the flag table is an item of the OPTIONS
// section of sendmail(8), a sub row nested below its letter's item, and the
// item says what the table's "what" and "reason" say, and for ignored,
// unsupported and refused flags, that they are.
func TestManPageOptions(t *testing.T) {
	opts := mantest.Section(t, mantest.Render(t, manPage), "OPTIONS")

	// Find each row's item head.
	at := make([]int, len(flags))
	var starts []int
	for i := range flags {
		f := &flags[i]
		head := manHead(f)
		at[i] = -1
		for j, l := range opts {
			if isHeadLine(l, head) {
				if at[i] >= 0 {
					t.Errorf("sendmail.8 OPTIONS has two items %q (rendered lines %d and %d)", head, at[i], j)
				}
				at[i] = j
			}
		}
		if at[i] < 0 {
			t.Errorf("sendmail.8 OPTIONS lacks an item for %s (write it so that it renders as %q at the start of a line)", f.syntax, head)
			continue
		}
		starts = append(starts, at[i])
	}
	sort.Ints(starts)

	// An item's text runs from its head to the next row's head.
	topIndent := -1
	for i := range flags {
		f := &flags[i]
		if at[i] < 0 {
			continue
		}
		end := len(opts)
		if k := sort.SearchInts(starts, at[i]+1); k < len(starts) {
			end = starts[k]
		}
		text := fold(opts[at[i]:end])
		ind := mantest.Indent(opts[at[i]])
		if f.sub == "" {
			if topIndent < 0 {
				topIndent = ind
			} else if ind != topIndent {
				t.Errorf("sendmail.8: the item %s is indented %d columns, the other letters %d; is it nested in another item?", f.syntax, ind, topIndent)
			}
		} else if parent := letterSpecs[f.letter]; at[indexOf(parent)] >= 0 && ind <= mantest.Indent(opts[at[indexOf(parent)]]) {
			t.Errorf("sendmail.8: the item %s is not nested in the list of %s", f.syntax, parent.syntax)
		}

		if !strings.Contains(text, f.what) && !strings.Contains(text, sentence(f.what)) {
			t.Errorf("sendmail.8: the item %s does not say what the flag table says it means:\n\twant %q\n\tpage %q", f.syntax, sentence(f.what), text)
		}
		if f.reason != "" && !strings.Contains(text, sentence(f.reason)) {
			t.Errorf("sendmail.8: the item %s does not give the flag table's reason:\n\twant %q\n\tpage %q", f.syntax, sentence(f.reason), text)
		}
		label := map[action]string{actIgnore: "Ignored:", actUnsupported: "Unsupported:", actRefuse: "Refused:"}[f.act]
		if label != "" && !strings.Contains(text, label) {
			t.Errorf("sendmail.8: the item %s does not say %q", f.syntax, label)
		}
	}

	for _, head := range []string{"--", "--help", "--version"} {
		found := false
		for _, l := range opts {
			found = found || isHeadLine(l, head)
		}
		if !found {
			t.Errorf("sendmail.8 OPTIONS lacks an item for %s", head)
		}
	}
}

func indexOf(f *flagSpec) int {
	for i := range flags {
		if &flags[i] == f {
			return i
		}
	}
	return -1
}

// TestManPageLetters: --help and the man page list the same letters, and
// both list exactly the letters of the flag table, so the page cannot
// describe a flag that does not exist.
func TestManPageLetters(t *testing.T) {
	table := map[string]bool{}
	for _, f := range flags {
		table[string(f.letter)] = true
	}

	// --help: a letter row is a line that starts with two spaces and "-x".
	help := map[string]bool{}
	for _, l := range strings.Split(usageText(), "\n") {
		if strings.HasPrefix(l, "  -") && !strings.HasPrefix(l, "   ") && len(l) > 3 {
			help[l[3:4]] = true
		}
	}

	compare := func(aName string, a map[string]bool, bName string, b map[string]bool) {
		t.Helper()
		for _, k := range sortedKeys(a) {
			if !b[k] {
				t.Errorf("-%s is in %s but not in %s", k, aName, bName)
			}
		}
	}
	// Checked before the page is rendered, so also without mandoc.
	compare("the flag table", table, "--help", help)
	compare("--help", help, "the flag table", table)

	// sendmail.8: a letter item is a line at the indent of the first item
	// that starts with "-" and a letter or digit ("--help" is not a letter).
	opts := mantest.Section(t, mantest.Render(t, manPage), "OPTIONS")
	page := map[string]bool{}
	indent := -1
	for _, l := range opts {
		s := strings.TrimLeft(l, " ")
		if len(s) < 2 || s[0] != '-' || !isAlnum(s[1]) {
			continue
		}
		if indent < 0 {
			indent = mantest.Indent(l)
		}
		if mantest.Indent(l) == indent {
			page[s[1:2]] = true
		}
	}

	compare("--help", help, "sendmail.8", page)
	compare("sendmail.8", page, "--help", help)
	if len(page) == 0 {
		t.Error("found no option items in sendmail.8")
	}
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
