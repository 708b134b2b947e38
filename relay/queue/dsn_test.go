package queue

import (
	"bufio"
	"bytes"
	"io"
	"net/mail"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/relaytest"
)

type dsnRcpt struct {
	addr, status, diag string
}

// checkDSN parses a notification with go-message and checks its structure
// (RFC 3464, RFC 6522) against the original entry and the recipients
// expected to be reported.
func checkDSN(t *testing.T, data []byte, orig *Entry, rcpts []dsnRcpt) {
	t.Helper()
	m, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the notification does not parse: %v\n%s", err, data)
	}
	for field, want := range map[string]string{
		"From":           "Mail Delivery System <MAILER-DAEMON@example.com>",
		"To":             orig.Sender,
		"Subject":        "Undelivered Mail Returned to Sender",
		"MIME-Version":   "1.0",
		"Auto-Submitted": "auto-replied",
	} {
		if got := m.Header.Get(field); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if _, err := mail.ParseDate(m.Header.Get("Date")); err != nil {
		t.Errorf("Date: %v", err)
	}
	if id := m.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@mx.example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	ct, params, err := m.Header.ContentType()
	if err != nil || ct != "multipart/report" || params["report-type"] != "delivery-status" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q %v (%v)", ct, params, err)
	}
	mr := m.MultipartReader()
	var types []string
	var bodies [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.ContentType()
		types = append(types, ct)
		b, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
	}
	if want := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}; !reflect.DeepEqual(types, want) {
		t.Fatalf("parts %v, want %v", types, want)
	}

	for _, r := range rcpts {
		if !bytes.Contains(bodies[0], []byte("<"+r.addr+">: ")) {
			t.Errorf("the text part does not name %s:\n%s", r.addr, bodies[0])
		}
	}

	br := bufio.NewReader(bytes.NewReader(append(bodies[1], '\n')))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatalf("per-message fields: %v", err)
	}
	if got := h.Get("Reporting-MTA"); got != "dns; mx.example.com" {
		t.Errorf("Reporting-MTA %q", got)
	}
	if d, err := mail.ParseDate(h.Get("Arrival-Date")); err != nil || !d.Equal(orig.Arrival.Truncate(time.Second)) {
		t.Errorf("Arrival-Date %q (%v), want %v", h.Get("Arrival-Date"), err, orig.Arrival)
	}
	if orig.DSN.EnvID != "" {
		if got := h.Get("Original-Envelope-Id"); got != encodeXtext(orig.DSN.EnvID) {
			t.Errorf("Original-Envelope-Id %q", got)
		}
	}
	for _, r := range rcpts {
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatalf("fields for %s: %v", r.addr, err)
		}
		for field, want := range map[string]string{
			"Final-Recipient": "rfc822; " + r.addr,
			"Action":          "failed",
			"Status":          r.status,
			"Diagnostic-Code": r.diag,
		} {
			if got := h.Get(field); got != want {
				t.Errorf("%s: %s %q, want %q", r.addr, field, got, want)
			}
		}
		if _, err := mail.ParseDate(h.Get("Last-Attempt-Date")); err != nil && !orig.LastAttempt.IsZero() {
			t.Errorf("%s: Last-Attempt-Date: %v", r.addr, err)
		}
	}
	if rest, _ := io.ReadAll(br); len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("more recipient groups than expected: %q", rest)
	}

	msg := testMessage(orig.Sender, orig.recipientAddrs())
	header := msg[:strings.Index(msg, "\n\n")+1]
	if string(bodies[2]) != header {
		t.Errorf("original header part %q, want %q", bodies[2], header)
	}
}

func TestBounce(t *testing.T) {
	var mailErr atomic.Pointer[gosmtp.SMTPError] // the reply to MAIL FROM:<>
	mailErr.Store(&gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "not now"})
	s := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
		RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
			if m.Rcpts[i].To == "dave@example.org" {
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
		MailError: func(from string, _ *gosmtp.MailOptions) *gosmtp.SMTPError {
			if from == "" {
				return mailErr.Load()
			}
			return nil
		},
	})
	q, _ := newQueue(t, Options{})
	orig := &Entry{Sender: "alice@example.com", MessageID: "<test@example.com>", DSN: relay.DSN{EnvID: "env 1"},
		Recipients: []Recipient{{Addr: "carol@example.org"}, {Addr: "dave@example.org"}}}
	commitEntry(t, q, orig, testMessage(orig.Sender, orig.recipientAddrs()))
	ro := RunOptions{Relayers: []relay.Relayer{smtpRelayer(s, false)}, Force: true}
	st := run(t, q, ro)
	if st.Messages != 2 || st.Delivered != 1 || st.Failed != 1 || st.Bounced != 1 || st.Deferred != 1 {
		t.Errorf("stats %+v", st)
	}

	entries := listAll(t, q)
	if len(entries) != 1 {
		t.Fatalf("queue %+v, want the notification only", entries)
	}
	b := entries[0]
	if b.Sender != "" || !b.Bounce || b.SMTPUTF8 || b.Body != "" || b.Attempts != 1 ||
		!reflect.DeepEqual(b.Recipients, []Recipient{{"alice@example.com", Pending, "451 4.3.0 not now"}}) {
		t.Errorf("notification entry %+v", b)
	}
	orig.LastAttempt = t0
	checkDSN(t, []byte(readFile(t, q.path("msg", b.ID))), orig, []dsnRcpt{{
		addr: "dave@example.org", status: "5.1.1", diag: "smtp; 550 5.1.1 no such user",
	}})
	f := readFile(t, q.path("failed", orig.ID+".env"))
	if !strings.Contains(f, "\nrcpt delivered carol@example.org\n") || !strings.Contains(f, "\nrcpt failed dave@example.org\nreply 550 5.1.1 no such user\n") ||
		!strings.HasSuffix(f, "\nreason 1 of 2 recipients failed\n") {
		t.Errorf("failed/ID.env:\n%s", f)
	}

	// A notification that fails is never bounced itself.
	mailErr.Store(&gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "no bounces here"})
	st = run(t, q, ro)
	if st.Failed != 1 || st.Bounced != 0 || len(listAll(t, q)) != 0 {
		t.Errorf("stats %+v, queue %v", st, files(t, q))
	}
	if got := len(files(t, q)); got != 4 {
		t.Errorf("failed/ has %v", files(t, q))
	}
}

func TestNoBounce(t *testing.T) {
	for name, c := range map[string]struct {
		e      Entry
		bounce bool
	}{
		"null sender":    {Entry{Sender: ""}, false},
		"a notification": {Entry{Sender: "a@x", Bounce: true}, false},
		"NOTIFY=NEVER":   {Entry{Sender: "a@x", DSN: relay.DSN{Notify: []string{"NEVER"}}}, false},
		"NOTIFY=SUCCESS": {Entry{Sender: "a@x", DSN: relay.DSN{Notify: []string{"SUCCESS", "DELAY"}}}, false},
		"NOTIFY=FAILURE": {Entry{Sender: "a@x", DSN: relay.DSN{Notify: []string{"FAILURE"}}}, true},
		"no NOTIFY":      {Entry{Sender: "a@x"}, true},
	} {
		t.Run(name, func(t *testing.T) {
			q, _ := newQueue(t, Options{})
			e := c.e
			e.Recipients = []Recipient{{Addr: "b@y"}}
			commitEntry(t, q, &e, "Subject: x\n\nbody\n")
			// Fails everything, the notification included.
			fail := &fakeRelayer{name: "fail", class: relay.Failed}
			st := run(t, q, RunOptions{Relayers: []relay.Relayer{fail}})
			if (st.Bounced == 1) != c.bounce {
				t.Errorf("stats %+v", st)
			}
			want := 2
			if c.bounce {
				want = 4 // the notification failed too, and was not bounced
			}
			if got := files(t, q); len(got) != want || len(listAll(t, q)) != 0 {
				t.Errorf("files %v", got)
			}
		})
	}
}

func TestBounceUTF8(t *testing.T) {
	q, _ := newQueue(t, Options{})
	e := &Entry{Sender: "a@x", Recipients: []Recipient{{Addr: "ü@ëxample.org"}}}
	commitEntry(t, q, e, "Subject: é\n\nbody\n")
	fail := &fakeRelayer{name: "fail", class: relay.Failed}
	st := run(t, q, RunOptions{Relayers: []relay.Relayer{fail}})
	if st.Bounced != 1 {
		t.Fatalf("stats %+v", st)
	}
	entries, _ := q.List()
	if len(entries) != 0 {
		t.Fatalf("queue %+v", entries)
	}
	// The notification failed too (fake relayer): find it in failed/.
	des, _ := os.ReadDir(q.path("failed"))
	var dsn string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".msg") && !strings.HasPrefix(de.Name(), e.ID) {
			dsn = readFile(t, q.path("failed", de.Name()))
		}
	}
	m, err := message.Read(strings.NewReader(dsn))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := m.Header.ContentType()
	if params["report-type"] != "global-delivery-status" {
		t.Errorf("report-type %q", params["report-type"])
	}
	if !strings.Contains(dsn, "\nContent-Type: message/global-delivery-status\n") ||
		!strings.Contains(dsn, "\nFinal-Recipient: utf-8; ü@ëxample.org\n") ||
		!strings.Contains(dsn, "\nContent-Transfer-Encoding: 8bit\n\nSubject: é\n") {
		t.Errorf("notification:\n%s", dsn)
	}
}

func TestReadHeader(t *testing.T) {
	for in, want := range map[string]string{
		"A: 1\nB: 2\n\nbody\n": "A: 1\nB: 2\n",
		"\nbody\n":             "",
		"A: 1\n":               "A: 1\n",
		"A: 1":                 "A: 1\n",
		"":                     "",
	} {
		got, err := readHeader(strings.NewReader(in), int64(len(in)))
		if err != nil || string(got) != want {
			t.Errorf("readHeader(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	long := strings.Repeat("X-Long: "+strings.Repeat("x", 1000)+"\n", 2000)
	got, _ := readHeader(strings.NewReader(long), int64(len(long)))
	if len(got) > maxHeaderCopy || !strings.HasSuffix(string(got), "x\n") || !strings.HasPrefix(long, string(got)) {
		t.Errorf("a long header was cut to %d octets, not at a line end", len(got))
	}
}

func TestStatusOf(t *testing.T) {
	for reply, want := range map[string]string{
		"550 5.1.1 no such user":                   "5.1.1",
		"452 4.2.2 full (gave up after 5 days)":    "4.2.2",
		"mailbox full (#4.2.2)":                    "4.2.2",
		"550 no code":                              "5.0.0",
		"qmtp: cannot connect (gave up after 5 d)": "5.0.0",
		"": "5.0.0",
	} {
		if got := statusOf(reply); got != want {
			t.Errorf("statusOf(%q) = %q, want %q", reply, got, want)
		}
	}
	if hasCode("mailbox full") || hasCode("5500 x") || !hasCode("550") || !hasCode("421 bye") {
		t.Error("hasCode")
	}
}
