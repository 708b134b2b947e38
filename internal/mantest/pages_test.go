package mantest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The tests in this file hold every page of man/ to the same outline and
// keep the committed plain-text renderings (man/txt, `make man`) in step
// with the mdoc sources.

const manDir = "../../man"

// requiredSections are the sections every page has, in the words of the
// issue that asked for them: OPTIONS lists every flag (a file format's page
// says it has none), EXIT STATUS every code, STANDARDS the RFCs and the
// deviations from them.
var requiredSections = []string{
	"SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES",
	"EXIT STATUS", "EXAMPLES", "SECURITY", "SEE ALSO", "STANDARDS",
}

func pages(t *testing.T) []string {
	t.Helper()
	p, err := filepath.Glob(filepath.Join(manDir, "*.[0-9]"))
	if err != nil || len(p) == 0 {
		t.Fatalf("no man pages in %s: %v", manDir, err)
	}
	sort.Strings(p)
	return p
}

// TestPagesHaveEverySection: each page has each required section, and no
// section is empty.
func TestPagesHaveEverySection(t *testing.T) {
	for _, page := range pages(t) {
		lines := Render(t, page)
		for _, sec := range requiredSections {
			found := false
			for _, l := range lines {
				found = found || l == sec
			}
			if !found {
				t.Errorf("%s has no %s section (add .Sh %s)", filepath.Base(page), sec, sec)
				continue
			}
			if body := strings.TrimSpace(strings.Join(Section(t, lines, sec), "")); body == "" {
				t.Errorf("%s: the %s section is empty", filepath.Base(page), sec)
			}
		}
	}
}

// exitCodes reads the exit codes a command declares: the "exName = N"
// constants of its exit.go.
func exitCodes(t *testing.T, cmd string) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("../../cmd", cmd, "exit.go"))
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, m := range regexp.MustCompile(`(?m)^\s+ex[A-Z][A-Za-z]*\s*=\s*(\d+)\b`).FindAllStringSubmatch(string(src), -1) {
		codes = append(codes, m[1])
	}
	if len(codes) < 3 {
		t.Fatalf("found only the exit codes %v in cmd/%s/exit.go", codes, cmd)
	}
	return codes
}

// TestExitStatusListsEveryCode: the EXIT STATUS section of sendmail(8) and
// qmail-inject(8) has an item for every exit code their code declares.
func TestExitStatusListsEveryCode(t *testing.T) {
	for cmd, page := range map[string]string{"sendmail": "sendmail.8", "qmail-inject": "qmail-inject.8"} {
		sec := Section(t, Render(t, filepath.Join(manDir, page)), "EXIT STATUS")
		for _, code := range exitCodes(t, cmd) {
			found := false
			for _, l := range sec {
				rest, ok := strings.CutPrefix(strings.TrimLeft(l, " "), code)
				found = found || ok && (rest == "" || rest[0] == ' ')
			}
			if !found {
				t.Errorf("%s EXIT STATUS has no item for %s, which cmd/%s/exit.go declares", page, code, cmd)
			}
		}
	}
}

// TestTextRenderingsUpToDate: man/txt/<page>.txt is what scripts/man-txt.sh
// makes of the page now (run `make man` after editing a page), and there is
// no rendering of a page that is gone.
func TestTextRenderingsUpToDate(t *testing.T) {
	for _, tool := range []string{"mandoc", "col"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed; make check installs it", tool)
		}
	}
	want := map[string]bool{}
	for _, page := range pages(t) {
		name := filepath.Base(page) + ".txt"
		want[name] = true
		cmd := exec.Command("sh", "../../scripts/man-txt.sh", page)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		fresh, err := cmd.Output()
		if err != nil {
			t.Fatalf("scripts/man-txt.sh %s: %v\n%s", page, err, stderr.String())
		}
		committed, err := os.ReadFile(filepath.Join(manDir, "txt", name))
		if err != nil {
			t.Errorf("man/txt/%s: %v (run make man)", name, err)
			continue
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("man/txt/%s is out of date with man/%s (run make man)", name, filepath.Base(page))
		}
		if bytes.ContainsRune(fresh, '\b') || bytes.ContainsRune(fresh, '\t') {
			t.Errorf("man/txt/%s has backspaces or tabs left", name)
		}
	}
	txt, _ := filepath.Glob(filepath.Join(manDir, "txt", "*"))
	for _, f := range txt {
		if !want[filepath.Base(f)] {
			t.Errorf("man/txt/%s renders no page of man/ (remove it)", filepath.Base(f))
		}
	}
}
