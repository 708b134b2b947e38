package aliases

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const realistic = `# /etc/aliases
mailer-daemon: postmaster
postmaster: root
nobody: root
hostmaster: root
webmaster: root
www-data: root
root: admin@example.com
Team:	alice,
	bob@example.org ,
	<carol@example.org>
self: self, audit@example.com
loop1: loop2
loop2: loop1
"quoted": x@example.com
`

func TestParse(t *testing.T) {
	m, err := Parse("/etc/aliases", []byte(realistic))
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 12 {
		t.Errorf("Len = %d, want 12", m.Len())
	}
	for name, want := range map[string][]string{
		"root":       {"admin@example.com"},
		"ROOT":       {"admin@example.com"},
		"team":       {"alice", "bob@example.org", "carol@example.org"},
		"quoted":     {"x@example.com"},
		"postmaster": {"root"},
	} {
		got, ok := m.Lookup(name)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := m.Lookup("admin"); ok {
		t.Error("admin is no alias")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		kind     Kind
		msg      string
	}{
		{"pipe", "root: admin\nbob: |/usr/bin/procmail\n", 2, KindUnsupported, `the pipe "|/usr/bin/procmail" is not supported by a relay`},
		{"quoted pipe", "bob: \"|/usr/bin/vacation bob\"\n", 1, KindUnsupported, `the pipe "|/usr/bin/vacation bob"`},
		{"file", "# c\n\nlog: /var/log/mail.copy\n", 3, KindUnsupported, `the file "/var/log/mail.copy"`},
		{"include", "list: :INCLUDE:/etc/mail/list\n", 1, KindUnsupported, "the include list"},
		{"pipe on a continuation", "team: a@x,\n  |/bin/cat\n", 1, KindUnsupported, "the pipe"},
		{"no colon", "root admin@example.com\n", 1, KindSyntax, "no colon"},
		{"empty name", ": x@y\n", 1, KindSyntax, "empty alias name"},
		{"no target", "root:\n", 1, KindSyntax, "has no target"},
		{"only commas", "root: , ,\n", 1, KindSyntax, "has no target"},
		{"bad name", "ro ot: x@y\n", 1, KindSyntax, "not a valid alias name"},
		{"two addresses without comma", "root: a@x b@y\n", 1, KindSyntax, "is not one address"},
		{"unterminated quote", "root: \"a@x\n", 1, KindSyntax, "unterminated quoted string"},
		{"continuation first", "  x@y\n", 1, KindSyntax, "continuation line"},
		{"duplicate", "root: a@x\nRoot: b@y\n", 2, KindDuplicate, "already defined on line 1"},
		{"empty domain", "root: a@\n", 1, KindSyntax, "empty local part or domain"},
		{"control", "root: a\x01@x\n", 1, KindSyntax, "control character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/etc/aliases", []byte(c.in))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Line != c.line || e.Kind != c.kind || !strings.Contains(e.Error(), c.msg) {
				t.Errorf("got line %d kind %d %q; want line %d kind %d containing %q", e.Line, e.Kind, e.Error(), c.line, c.kind, c.msg)
			}
			if !strings.HasPrefix(e.Error(), "/etc/aliases:") {
				t.Errorf("%q does not name the file", e.Error())
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	p := filepath.Join(dir, "aliases")
	os.WriteFile(p, []byte("root: a@x\r\n"), 0o644)
	m, err := Load(p)
	if err != nil || m.Len() != 1 || m.File() != p {
		t.Fatalf("Load: %v, %+v", err, m)
	}
	if got, _ := m.Lookup("root"); !reflect.DeepEqual(got, []string{"a@x"}) {
		t.Errorf("CRLF line: %q", got)
	}
}

// resolver qualifies like intake: bare names get @example.com, and the
// local domains are example.com and host.example.com.
func resolver(t *testing.T, src string) *Resolver {
	t.Helper()
	m, err := Parse("aliases", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	local := func(addr string) (string, bool) {
		name, dom, ok := strings.Cut(addr, "@")
		if !ok {
			return addr, true
		}
		if strings.EqualFold(dom, "example.com") || strings.EqualFold(dom, "host.example.com") {
			return name, true
		}
		return "", false
	}
	qualify := func(t string) (string, error) {
		if strings.Contains(t, "@") {
			return t, nil
		}
		return t + "@example.com", nil
	}
	return &Resolver{Map: m, Local: local, Qualify: qualify}
}

func TestExpand(t *testing.T) {
	r := resolver(t, realistic+"a: b\nb: c\nc: a, end@example.org\nfan: root, www-data, postmaster, other@example.org\n")
	cases := []struct {
		in    string
		want  []string
		steps int
	}{
		{"root@example.com", []string{"admin@example.com"}, 1},
		{"ROOT@EXAMPLE.COM", []string{"admin@example.com"}, 1},
		{"root@host.example.com", []string{"admin@example.com"}, 1},
		{"root@elsewhere.org", []string{"root@elsewhere.org"}, 0},
		{"www-data@example.com", []string{"admin@example.com"}, 2},
		{"mailer-daemon@example.com", []string{"admin@example.com"}, 3},
		{"team@example.com", []string{"alice@example.com", "bob@example.org", "carol@example.org"}, 1},
		// An alias to itself keeps the name.
		{"self@example.com", []string{"self@example.com", "audit@example.com"}, 1},
		// A loop ends at the address that closes it.
		{"loop1@example.com", []string{"loop1@example.com"}, 2},
		{"a@example.com", []string{"a@example.com", "end@example.org"}, 3},
		// Duplicates collapse.
		{"fan@example.com", []string{"admin@example.com", "other@example.org"}, 6},
		{"unknown@example.com", []string{"unknown@example.com"}, 0},
	}
	for _, c := range cases {
		got, steps, err := r.Expand(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) || len(steps) != c.steps {
			t.Errorf("%s: %q with %d steps, want %q with %d", c.in, got, len(steps), c.want, c.steps)
		}
	}
}

func TestExpandDepth(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		b.WriteString("n" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ": ")
		j := i + 1
		b.WriteString("n" + string(rune('a'+j%26)) + strings.Repeat("x", j/26) + "\n")
	}
	r := resolver(t, b.String())
	if _, _, err := r.Expand("na@example.com"); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Errorf("err = %v, want a depth error", err)
	}
}

func TestExpandWithoutMap(t *testing.T) {
	var r *Resolver
	got, steps, err := r.Expand("root@example.com")
	if err != nil || len(steps) != 0 || !reflect.DeepEqual(got, []string{"root@example.com"}) {
		t.Errorf("nil resolver: %q %v %v", got, steps, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(realistic)
	for _, s := range []string{"root: a@x\n", "a: |cmd\n", "x:\n y,\n\tz\n", "\"q\": \"a b\"@x (c)\n", ": \n", "a: a\n", "a: b\nb: a\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		m, err := Parse("f", []byte(src))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.File != "f" {
				t.Fatalf("error without a location: %v", err)
			}
			return
		}
		for k, e := range m.entries {
			if k != strings.ToLower(e.name) || len(e.targets) == 0 {
				t.Fatalf("bad entry %q: %+v", k, e)
			}
			for _, tg := range e.targets {
				if tg == "" || strings.HasPrefix(tg, "|") || strings.HasPrefix(tg, "/") {
					t.Fatalf("target %q of %q was accepted", tg, k)
				}
			}
			// Every name expands without error and without looping.
			r := &Resolver{Map: m,
				Local:   func(a string) (string, bool) { return a, !strings.Contains(a, "@") },
				Qualify: func(t string) (string, error) { return t, nil }}
			if _, _, err := r.Expand(e.name); err != nil && !strings.Contains(err.Error(), "deeper than") && !strings.Contains(err.Error(), "longer than") {
				t.Fatalf("Expand(%q): %v", e.name, err)
			}
		}
	})
}
