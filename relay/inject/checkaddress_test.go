package inject

import (
	"strings"
	"testing"
)

// CheckAddress is the last gate before the wire and the one the queue
// runner applies to every address it reads back from the spool.
func TestCheckAddress(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	domain255 := strings.Repeat("d", 251) + ".com"
	for _, tc := range []struct {
		addr string
		want string // "" for valid, else a part of the error
	}{
		{"alice@example.com", ""},
		{`"john doe"@example.com`, ""},
		{`"a\" b"@example.com`, ""},
		{long(64) + "@example.com", ""},
		{"a@" + domain255[:244], ""},
		{"a@b\r\nRCPT TO:<x@y>", "control character 0x0d"},
		{"a@b\nx", "control character 0x0a"},
		{"a\x00@b", "control character 0x00"},
		{"a\x1b[31m@b", "control character 0x1b"},
		{"a\x7f@b", "control character 0x7f"},
		{"a@b>", `contains "<" or ">"`},
		{"<a@b", `contains "<" or ">"`},
		{"a b@example.com", "space outside a quoted local part"},
		{"a@example.com SIZE=1", "space outside a quoted local part"},
		{`"a b@example.com`, "unterminated quoted string"},
		{"-oQ/tmp", "has no domain"},
		{"@example.com", "empty local part"},
		{long(65) + "@example.com", "local part is longer than 64"},
		{"a@" + strings.Repeat("d", 256), "domain is longer than 255"},
		{long(60) + "@" + domain255[:200], "256-octet path limit"},
	} {
		err := CheckAddress(tc.addr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.addr, err, tc.want)
		}
	}
}
