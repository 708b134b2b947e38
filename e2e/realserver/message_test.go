package realserver

import (
	"strings"
	"testing"
)

func TestCutLeadingField(t *testing.T) {
	cases := []struct {
		in, name     string
		field, rest  string
		ok           bool
		unfoldedWant string
	}{
		{in: "Received: from a\n\tby b\n\tfor c\nSubject: x\n\nbody\n", name: "received",
			field: "Received: from a\n\tby b\n\tfor c\n", rest: "Subject: x\n\nbody\n", ok: true, unfoldedWant: "from a\tby b\tfor c"},
		{in: "Return-Path: <a@b>\nX: y\n", name: "Return-Path", field: "Return-Path: <a@b>\n", rest: "X: y\n", ok: true, unfoldedWant: "<a@b>"},
		{in: "Subject: x\nReceived: y\n", name: "Received", rest: "Subject: x\nReceived: y\n"},
		{in: "no colon here\nReceived: y\n", name: "Received", rest: "no colon here\nReceived: y\n"},
		{in: "Received: only", name: "Received", field: "Received: only", ok: true, unfoldedWant: "only"},
		{in: "Received: x\r\n y\r\nA: b\r\n", name: "Received", field: "Received: x\r\n y\r\n", rest: "A: b\r\n", ok: true, unfoldedWant: "x y"},
	}
	for _, c := range cases {
		field, rest, ok := cutLeadingField([]byte(c.in), c.name)
		if string(field) != c.field || string(rest) != c.rest || ok != c.ok {
			t.Errorf("cutLeadingField(%q, %q) = %q, %q, %v; want %q, %q, %v", c.in, c.name, field, rest, ok, c.field, c.rest, c.ok)
		}
		if ok && fieldValue(field) != c.unfoldedWant {
			t.Errorf("fieldValue(%q) = %q, want %q", field, fieldValue(field), c.unfoldedWant)
		}
	}
}

func TestParseSinkDump(t *testing.T) {
	dump := "X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: host.example.com\n" +
		"X-Mail-Args: <a@example.com> BODY=8BITMIME\nX-Rcpt-Args: <b@example.org>\nX-Rcpt-Args: <c@example.org> NOTIFY=NEVER\n" +
		"Received: from host.example.com ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 1;\n\tSat, 21 Nov 2026 12:15:00 +0000 (UTC)\n" +
		"Subject: x\n\nbody\n\n"
	m, err := parseSinkDump([]byte(dump))
	if err != nil {
		t.Fatal(err)
	}
	if m.Helo != "host.example.com" || m.MailArgs != "<a@example.com> BODY=8BITMIME" ||
		strings.Join(m.RcptArgs, "|") != "<b@example.org>|<c@example.org> NOTIFY=NEVER" || string(m.Data) != "Subject: x\n\nbody\n" {
		t.Errorf("parsed %+v", m)
	}
	if _, err := parseSinkDump([]byte("X-Client-Addr: 1\nSubject: x\n")); err == nil {
		t.Error("a dump without smtp-sink's Received field parsed")
	}
}

func TestMaildirOrder(t *testing.T) {
	names := []string{"1700000001.M9P1.h", "1700000001.M10P1.h", "1700000000.M999999P1.h"}
	want := []string{"1700000000.M999999P1.h", "1700000001.M9P1.h", "1700000001.M10P1.h"}
	for i := range names {
		for j := range names {
			if got := maildirLess(names[i], names[j]); got != (indexOf(want, names[i]) < indexOf(want, names[j])) {
				t.Errorf("maildirLess(%s, %s) = %v", names[i], names[j], got)
			}
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
