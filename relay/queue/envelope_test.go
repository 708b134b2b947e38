package queue

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// The example of doc.go, without its comments.
const docExample = `relaymail-envelope 1
id 0187A3B4C5D6E7F8-1a2b3c4d
arrival 2026-11-21T12:00:00Z
sender alice@example.com
size 2048
message-id <20261121120000.1a2b3c4d5e6f7a8b@host.example.com>
body 8BITMIME
smtputf8 yes
dsn-ret HDRS
dsn-envid QQ+2B1
dsn-notify FAILURE,DELAY
bounce yes
attempts 2
last-attempt 2026-11-21T12:01:00Z
next-attempt 2026-11-21T12:03:00Z
rcpt pending bob@example.org
reply 452 4.2.2 mailbox full
rcpt delivered carol@example.org
rcpt failed dave@example.org
reply 550 5.1.1 no such user
`

func TestParseDocExample(t *testing.T) {
	e, err := parseEnvelope([]byte(docExample))
	if err != nil {
		t.Fatal(err)
	}
	want := &Entry{
		ID:        "0187A3B4C5D6E7F8-1a2b3c4d",
		Arrival:   time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
		Sender:    "alice@example.com",
		Size:      2048,
		MessageID: "<20261121120000.1a2b3c4d5e6f7a8b@host.example.com>",
		Body:      "8BITMIME",
		SMTPUTF8:  true,
		DSN:       relay.DSN{Notify: []string{"FAILURE", "DELAY"}, Ret: "HDRS", EnvID: "QQ+1"},
		Bounce:    true,
		Attempts:  2, LastAttempt: time.Date(2026, 11, 21, 12, 1, 0, 0, time.UTC),
		NextAttempt: time.Date(2026, 11, 21, 12, 3, 0, 0, time.UTC),
		Recipients: []Recipient{
			{"bob@example.org", Pending, "452 4.2.2 mailbox full"},
			{"carol@example.org", Delivered, ""},
			{"dave@example.org", Failed, "550 5.1.1 no such user"},
		},
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", e, want)
	}
	out, err := marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != docExample {
		t.Errorf("marshal does not give back the doc's example:\n%s", out)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	base := func() *Entry {
		return &Entry{
			ID:         "0187A3B4C5D6E7F8-1a2b3c4d",
			Arrival:    time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC),
			Sender:     "alice@example.com",
			Size:       1,
			Recipients: []Recipient{{Addr: "bob@example.org"}},
		}
	}
	for name, change := range map[string]func(e *Entry){
		"minimal":     func(e *Entry) {},
		"null sender": func(e *Entry) { e.Sender = "" },
		"every field": func(e *Entry) {
			e.Size = 1 << 40
			e.MessageID = "<a b@c>"
			e.Body = "7BIT"
			e.SMTPUTF8 = true
			e.DSN = relay.DSN{Notify: []string{"NEVER"}, Ret: "FULL", EnvID: "id with spaces, + and = and ~"}
			e.Bounce = true
			e.Attempts = maxAttempts
			e.LastAttempt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
			e.NextAttempt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
		},
		"notify list": func(e *Entry) { e.DSN.Notify = []string{"DELAY", "SUCCESS", "FAILURE"} },
		"odd replies": func(e *Entry) {
			e.Recipients = []Recipient{
				{"a@x", Pending, "  leading spaces, (parentheses) \"quotes\" ünïcödé \x80 \\ trailing  "},
				{"\"quoted local\"@x", Delivered, "rcpt failed x@y"},
				{"b@x", Failed, "reply reply"},
				{"b@x", Failed, strings.Repeat("r", maxReply)},
				{"ü@ëxample.org", Pending, ""},
			}
		},
		"duplicate recipients": func(e *Entry) {
			e.Recipients = append(e.Recipients, e.Recipients[0], e.Recipients[0])
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := base()
			change(e)
			out, err := marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseEnvelope(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("round trip\n got %+v\nwant %+v\n%s", got, e, out)
			}
		})
	}
}

// The largest entry validate accepts must fit in a file parseEnvelope
// reads: otherwise a state update could make a message unreadable.
func TestEnvelopeLimitsFit(t *testing.T) {
	local := strings.Repeat("l", 64)
	domain := strings.Repeat("d", 254-65)
	e := &Entry{
		ID: "0187A3B4C5D6E7F8-1a2b3c4d", Arrival: t0, Sender: local + "@" + domain,
		MessageID: strings.Repeat("m", maxMessageID),
		DSN:       relay.DSN{EnvID: strings.Repeat("+", maxEnvID), Notify: []string{"SUCCESS", "FAILURE", "DELAY"}, Ret: "HDRS"},
		Body:      "8BITMIME", SMTPUTF8: true, Bounce: true, Attempts: maxAttempts,
		LastAttempt: t0, NextAttempt: t0, Size: 1 << 62,
	}
	for i := 0; i < maxRecipients; i++ {
		e.Recipients = append(e.Recipients, Recipient{local + "@" + domain, Delivered, strings.Repeat("r", maxReply)})
	}
	out, err := marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseEnvelope(out); err != nil {
		t.Fatal(err)
	}
	t.Logf("largest envelope: %d octets of %d", len(out), maxEnvelopeBytes)
}

func TestEnvelopeRejects(t *testing.T) {
	const head = "relaymail-envelope 1\nid 0187A3B4C5D6E7F8-1a2b3c4d\narrival 2026-11-21T12:00:00Z\nsender a@x\nsize 1\nattempts 0\n"
	const rcpt = "rcpt pending b@y\n"
	if _, err := parseEnvelope([]byte(head + rcpt)); err != nil {
		t.Fatalf("the base case does not parse: %v", err)
	}
	without := func(key string) string {
		var out []string
		for _, l := range strings.SplitAfter(head, "\n") {
			if !strings.HasPrefix(l, key+" ") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "") + rcpt
	}
	with := func(line string) string { return head + line + "\n" + rcpt }
	many := head
	for i := 0; i <= maxRecipients; i++ {
		many += rcpt
	}
	for name, in := range map[string]string{
		"empty":                 "",
		"unterminated":          strings.TrimSuffix(head+rcpt, "\n"),
		"newer version":         strings.Replace(head, "envelope 1", "envelope 2", 1) + rcpt,
		"version with a space":  strings.Replace(head, "envelope 1", "envelope 1 ", 1) + rcpt,
		"no version":            strings.TrimPrefix(head, "relaymail-envelope 1\n") + rcpt,
		"crlf":                  strings.ReplaceAll(head+rcpt, "\n", "\r\n"),
		"nul":                   with("message-id <a\x00b>"),
		"unknown key":           with("priority high"),
		"key in upper case":     with("BODY 8BITMIME"),
		"duplicate key":         with("sender c@x"),
		"blank line":            with(""),
		"no id":                 without("id"),
		"no arrival":            without("arrival"),
		"no sender":             without("sender"),
		"no size":               without("size"),
		"no attempts":           without("attempts"),
		"no recipient":          head,
		"too many recipients":   many,
		"reply first":           head + "reply 250 ok\n" + rcpt,
		"two replies":           head + rcpt + "reply 1\nreply 2\n",
		"empty reply":           head + rcpt + "reply\n",
		"long reply":            head + rcpt + "reply " + strings.Repeat("x", maxReply+1) + "\n",
		"key after recipients":  head + rcpt + "body 7BIT\n",
		"unknown state":         head + "rcpt sent b@y\n",
		"state in upper case":   head + "rcpt PENDING b@y\n",
		"rcpt without address":  head + "rcpt pending\n",
		"empty rcpt address":    head + "rcpt pending \n",
		"rcpt without domain":   head + "rcpt pending bob\n",
		"rcpt empty local part": head + "rcpt pending @y\n",
		"rcpt angle brackets":   head + "rcpt pending <b@y>\n",
		"rcpt long local part":  head + "rcpt pending " + strings.Repeat("l", 65) + "@y\n",
		"rcpt long address":     head + "rcpt pending " + strings.Repeat("l", 64) + "@" + strings.Repeat("d", 190) + "\n",
		"rcpt long domain":      head + "rcpt pending l@" + strings.Repeat("d", 256) + "\n",
		"rcpt tab":              head + "rcpt pending b\t@y\n",
		"bad sender":            strings.Replace(head, "sender a@x", "sender a@", 1) + rcpt,
		"sender with brackets":  strings.Replace(head, "sender a@x", "sender <>", 1) + rcpt,
		"bad id":                strings.Replace(head, "-1a2b3c4d", "-1A2B3C4D", 1) + rcpt,
		"short id":              strings.Replace(head, "-1a2b3c4d", "-1a2b3c4", 1) + rcpt,
		"bad arrival":           strings.Replace(head, "2026-11-21T12:00:00Z", "2026-11-21 12:00:00", 1) + rcpt,
		"zero arrival":          strings.Replace(head, "2026-11-21T12:00:00Z", "0001-01-01T00:00:00Z", 1) + rcpt,
		"negative size":         strings.Replace(head, "size 1", "size -1", 1) + rcpt,
		"size with plus":        strings.Replace(head, "size 1", "size +1", 1) + rcpt,
		"size with zero":        strings.Replace(head, "size 1", "size 01", 1) + rcpt,
		"size too big":          strings.Replace(head, "size 1", "size 9223372036854775807", 1) + rcpt,
		"attempts too many":     strings.Replace(head, "attempts 0", "attempts 1000001", 1) + rcpt,
		"attempts not a number": strings.Replace(head, "attempts 0", "attempts two", 1) + rcpt,
		"bad body":              with("body BINARYMIME"),
		"empty body":            with("body"),
		"smtputf8 no":           with("smtputf8 no"),
		"bounce true":           with("bounce true"),
		"bad dsn-ret":           with("dsn-ret full"),
		"notify never and more": with("dsn-notify NEVER,FAILURE"),
		"notify twice":          with("dsn-notify SUCCESS,SUCCESS"),
		"notify empty item":     with("dsn-notify SUCCESS,"),
		"notify with space":     with("dsn-notify SUCCESS, DELAY"),
		"envid cut hex":         with("dsn-envid abc+4"),
		"envid lower hex":       with("dsn-envid +4a"),
		"envid raw equals":      with("dsn-envid a=b"),
		"envid not printable":   with("dsn-envid +01"),
		"envid too long":        with("dsn-envid " + strings.Repeat("e", maxEnvID+1)),
		"empty envid":           with("dsn-envid"),
		"empty message-id":      with("message-id"),
		"long message-id":       with("message-id " + strings.Repeat("m", maxMessageID+1)),
		"bad last-attempt":      with("last-attempt yesterday"),
		"too big":               head + rcpt + "reply " + strings.Repeat("x", maxEnvelopeBytes) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			e, err := parseEnvelope([]byte(in))
			if err == nil {
				t.Fatalf("accepted: %+v", e)
			}
			t.Log(err)
		})
	}
}

func TestXtext(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"QQ+1":     "QQ+2B1",
		"a=b c":    "a+3Db+20c",
		"~!":       "~!",
		"\x7f\x00": "+7F+00",
	} {
		if got := encodeXtext(in); got != want {
			t.Errorf("encodeXtext(%q) = %q, want %q", in, got, want)
		}
		if got, err := decodeXtext(want); err != nil || got != in {
			t.Errorf("decodeXtext(%q) = %q, %v", want, got, err)
		}
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"452 4.2.2 full":         "452 4.2.2 full",
		"a\r\nb\tc  d":           "a b c d",
		" \x00bell\x07 ":         "?bell?",
		"bad \xff utf-8":         "bad ? utf-8",
		strings.Repeat("é", 300): strings.Repeat("é", 256),
	} {
		if got := oneLine(in, 512); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(docExample))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEnvelope(data)
		if err != nil {
			return
		}
		out, err := marshal(e)
		if err != nil {
			t.Fatalf("parsed but cannot be written: %v\n%q", err, data)
		}
		again, err := parseEnvelope(out)
		if err != nil {
			t.Fatalf("written but cannot be read again: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("changed in a round trip:\n%+v\n%+v", e, again)
		}
	})
}
