package inject

import (
	"reflect"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	cases := []struct {
		in    string
		want  []string // addr() of each mailbox
		comma bool     // spaceIsComma
		err   bool
	}{
		{in: "root", want: []string{"root"}},
		{in: "a@x,", want: []string{"a@x"}}, // Debian cron MAILTO="a@x, b@y"
		{in: "a@x, , b@y", want: []string{"a@x", "b@y"}},
		{in: "Joe User <joe@x>", want: []string{"joe@x"}},
		{in: "Joe <joe>", want: []string{"joe"}},
		{in: "root (Cron Daemon)", want: []string{"root"}},
		{in: `"Cron Daemon" <root>`, want: []string{"root"}},
		{in: "undisclosed-recipients:;", want: nil},
		{in: "grp: a@x, b@y;, c@z", want: []string{"a@x", "b@y", "c@z"}},
		{in: "grp: a@x", want: []string{"a@x"}},
		{in: `"quoted local"@x`, want: []string{`"quoted local"@x`}},
		{in: "=?ISO-8859-1?Q?Andr=E9?= <a@x>", want: []string{"a@x"}},
		{in: "=?x-unknown?Q?abc?= <a@x>, b@y", want: []string{"a@x", "b@y"}},
		{in: "<@route,@r2:a@x>", want: []string{"a@x"}},
		{in: "john . smith @ example . com", want: []string{"john.smith@example.com"}},
		{in: "a@[127.0.0.1]", want: []string{"a@[127.0.0.1]"}},
		{in: "jörg@bücher.example", want: []string{"jörg@bücher.example"}},
		{in: "John Q. Public <jqp@x>", want: []string{"jqp@x"}},
		{in: "a@x (comment (nested)) , b@y", want: []string{"a@x", "b@y"}},
		{in: "<>", want: nil},
		{in: "a@x\n\tb@y", err: true},
		{in: "a@x b@y", err: true},
		{in: "a@x b@y", comma: true, want: []string{"a@x", "b@y"}},
		{in: "djb fred", comma: true, want: []string{"djb", "fred"}},
		{in: "Joe User joe@x", err: true},
		{in: "a@b>x", err: true},
		{in: "<a@x", err: true},
		{in: "a@", err: true},
		{in: "@x", err: true},
		{in: `"unterminated@x`, err: true},
		{in: "(unterminated", err: true},
		{in: "a\x00b@x", err: true},
		{in: "a@x;", err: true},
		{in: "g1: g2: a@x;;", err: true},
		{in: "a@x..y", err: true},
	}
	for _, c := range cases {
		got, err := parseAddressList(c.in, c.comma)
		if c.err {
			if err == nil {
				t.Errorf("%q: no error, got %v", c.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		var addrs []string
		for _, m := range got {
			addrs = append(addrs, m.addr())
		}
		if !reflect.DeepEqual(addrs, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, addrs, c.want)
		}
	}
}

// The end offset is what qualification relies on: it must point just past
// the local part, so that "@domain" lands in the right place.
func TestMailboxEndOffset(t *testing.T) {
	for in, want := range map[string]string{
		" root (Cron Daemon)": " root",
		"Joe <joe>":           "Joe <joe",
		`"a b" <x.y>`:         `"a b" <x.y`,
		"x, root":             "x, root",
	} {
		got, err := parseAddressList(in, false)
		if err != nil {
			t.Fatal(err)
		}
		m := got[len(got)-1]
		if in[:m.end] != want {
			t.Errorf("%q: prefix up to end = %q, want %q", in, in[:m.end], want)
		}
	}
}

func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{"root", "a@x, b@y", "Joe <joe@x>", "g: a@x;", `"q"@x (c)`, "<@r:a@x>", "a b", "=?utf-8?q?x?= <a@[1.2.3.4]>"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, comma bool) {
		got, err := parseAddressList(s, comma)
		if err != nil {
			return
		}
		for _, m := range got {
			if m.end < 0 || m.end > len(s) {
				t.Fatalf("%q: end %d out of range", s, m.end)
			}
			if m.local == "" {
				t.Fatalf("%q: empty local part in %+v", s, m)
			}
			if !(0 <= m.start && m.start <= m.addrStart && m.addrStart <= m.end && m.end <= m.addrEnd && m.addrEnd <= m.elemEnd && m.elemEnd <= len(s)) {
				t.Fatalf("%q: offsets out of order in %+v", s, m)
			}
			if m.domain != "" && (m.domStart < m.end || m.domEnd != m.addrEnd) {
				t.Fatalf("%q: domain offsets in %+v", s, m)
			}
		}
	})
}
