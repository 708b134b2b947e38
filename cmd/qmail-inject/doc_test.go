package main

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/internal/mantest"
)

const manPage = "../../man/qmail-inject.8"

// TestManPageEnvironment: every variable the code reads is in the
// ENVIRONMENT section of qmail-inject(8), and every QMAILINJECT letter the
// code knows is described there.
func TestManPageEnvironment(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile(`q\.env\(([^)]*)\)`).FindAllStringSubmatch(string(src), -1) {
		for _, v := range regexp.MustCompile(`"([A-Z_]+)"`).FindAllStringSubmatch(m[1], -1) {
			vars[v[1]] = true
		}
	}
	if len(vars) < 15 {
		t.Fatalf("found only %d variables in main.go: %v", len(vars), vars)
	}
	env := strings.Join(mantest.Section(t, mantest.Render(t, manPage), "ENVIRONMENT"), "\n")
	names := make([]string, 0, len(vars))
	for v := range vars {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		if !regexp.MustCompile(`\b` + v + `\b`).MatchString(env) {
			t.Errorf("qmail-inject.8 ENVIRONMENT does not mention %s", v)
		}
	}
	for _, l := range regexp.MustCompile(`has\('(.)'\)`).FindAllStringSubmatch(string(src), -1) {
		if !regexp.MustCompile(`(?m)^ {5}` + l[1] + ` `).MatchString(env) {
			t.Errorf("qmail-inject.8 ENVIRONMENT does not describe the QMAILINJECT letter %s", l[1])
		}
	}
}

// TestManPageOptions: every letter the parser declares is an item of
// OPTIONS.
func TestManPageOptions(t *testing.T) {
	opts := mantest.Section(t, mantest.Render(t, manPage), "OPTIONS")
	for _, letter := range []string{"a", "A", "h", "H", "n", "N", "f", "F"} {
		found := false
		for _, l := range opts {
			s := strings.TrimLeft(l, " ")
			found = found || s == "-"+letter || strings.HasPrefix(s, "-"+letter+" ")
		}
		if !found {
			t.Errorf("qmail-inject.8 OPTIONS lacks -%s", letter)
		}
	}
}
