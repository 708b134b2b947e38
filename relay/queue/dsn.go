package queue

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// bounce queues a delivery status notification for the failed recipients
// of j's message (RFC 3464), from the null sender to the envelope sender,
// and returns its queue ID. It is committed before the original leaves
// env/, so that a crash may bounce twice but never not at all.
func (r *runner) bounce(j *job, failed []Recipient) (string, error) {
	q, e := r.q, j.e
	fi, err := j.f.Stat()
	if err != nil {
		return "", err
	}
	header, err := readHeader(j.f, fi.Size())
	if err != nil {
		return "", fmt.Errorf("reading the original header: %w", err)
	}
	data, msgID := buildDSN(dsnInput{
		e:        e,
		failed:   failed,
		header:   header,
		now:      q.opts.Now(),
		hostname: q.opts.Hostname,
		domain:   q.opts.Domain,
	})
	sp, err := q.NewSpool()
	if err != nil {
		return "", err
	}
	if _, err := sp.File.Write(data); err != nil {
		sp.Discard()
		return "", err
	}
	b := &Entry{
		MessageID:  msgID,
		Bounce:     true,
		SMTPUTF8:   !relay.IsASCII(e.Sender),
		Recipients: []Recipient{{Addr: e.Sender, State: Pending}},
	}
	if !relay.IsASCII(string(data)) {
		b.Body = "8BITMIME"
	}
	if err := q.Commit(sp, b); err != nil {
		return "", err
	}
	return sp.ID, nil
}

// readHeader returns the message's header, up to the empty line that ends
// it, at most maxHeaderCopy octets cut at a line end. The spool form has
// LF line endings.
func readHeader(r io.ReaderAt, size int64) ([]byte, error) {
	buf, err := io.ReadAll(io.NewSectionReader(r, 0, min(size, maxHeaderCopy)))
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(buf, []byte("\n")) {
		return nil, nil // no header at all
	}
	if i := bytes.Index(buf, []byte("\n\n")); i >= 0 {
		return buf[:i+1], nil
	}
	if size > maxHeaderCopy {
		// Cut at the last line end; the rest of the header is left out.
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return buf[:i+1], nil
		}
		return nil, nil
	}
	if len(buf) > 0 && buf[len(buf)-1] != '\n' {
		buf = append(buf, '\n')
	}
	return buf, nil
}

type dsnInput struct {
	e                *Entry
	failed           []Recipient
	header           []byte
	now              time.Time
	hostname, domain string
}

// buildDSN writes the notification in the spool form (LF line endings):
// a multipart/report (RFC 6522) with a human-readable part, a
// message/delivery-status part (RFC 3464) and the original header
// (text/rfc822-headers). An address that is not ASCII makes it a
// message/global-delivery-status report with utf-8 address types (RFC
// 6533). It returns the message and its Message-ID.
func buildDSN(in dsnInput) ([]byte, string) {
	e := in.e
	msgID := fmt.Sprintf("<%s.%s@%s>", in.now.UTC().Format("20060102150405"), randomHex(8), in.hostname)
	// Random, so that no line of the original header can end the part;
	// 42 characters, within RFC 2046 §5.1.1's 70.
	boundary := e.ID + "/" + randomHex(8)
	global := false
	for _, rc := range in.failed {
		if !relay.IsASCII(rc.Addr) {
			global = true
		}
	}
	reportType, statusType := "delivery-status", "message/delivery-status"
	if global {
		reportType, statusType = "global-delivery-status", "message/global-delivery-status"
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", in.domain)
	fmt.Fprintf(&b, "To: %s\n", e.Sender)
	b.WriteString("Subject: Undelivered Mail Returned to Sender\n")
	fmt.Fprintf(&b, "Date: %s\n", in.now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\n", msgID)
	b.WriteString("MIME-Version: 1.0\n")
	// RFC 3834 §5: an automatic reply; responders must not answer it.
	b.WriteString("Auto-Submitted: auto-replied\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=%s;\n\tboundary=\"%s\"\n", reportType, boundary)
	b.WriteString("\nThis is a MIME-encapsulated message.\n")

	// 1. For people.
	var text bytes.Buffer
	fmt.Fprintf(&text, "This is the mail system at host %s.\n\n", in.hostname)
	text.WriteString("Your message could not be delivered to one or more of its recipients.\n")
	text.WriteString("The mail system gave up on the recipients below, for the reasons shown.\n\n")
	fmt.Fprintf(&text, "Queue ID:   %s\n", e.ID)
	if e.MessageID != "" {
		fmt.Fprintf(&text, "Message-ID: %s\n", e.MessageID)
	}
	fmt.Fprintf(&text, "Queued:     %s\n\n", e.Arrival.Format(time.RFC1123Z))
	for _, rc := range in.failed {
		reply := rc.Reply
		if reply == "" {
			reply = "no reason was given"
		}
		fmt.Fprintf(&text, "<%s>: %s\n", rc.Addr, reply)
	}
	text.WriteString("\nThe header of your message is attached.\n")
	fmt.Fprintf(&b, "\n--%s\n", boundary)
	b.WriteString("Content-Description: Notification\n")
	if relay.IsASCII(text.String()) {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\n")
	} else {
		b.WriteString("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n")
	}
	b.WriteString("\n")
	b.Write(text.Bytes())

	// 2. For programs (RFC 3464 §2.2 and §2.3): the per-message fields,
	// then one group per failed recipient, separated by empty lines.
	fmt.Fprintf(&b, "\n--%s\n", boundary)
	b.WriteString("Content-Description: Delivery report\n")
	fmt.Fprintf(&b, "Content-Type: %s\n\n", statusType)
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\n", in.hostname)
	fmt.Fprintf(&b, "X-Relaymail-Queue-ID: %s\n", e.ID)
	if e.DSN.EnvID != "" {
		// RFC 3464 §2.2.1: the ENVID as the sender gave it, in xtext.
		fmt.Fprintf(&b, "Original-Envelope-Id: %s\n", encodeXtext(e.DSN.EnvID))
	}
	fmt.Fprintf(&b, "Arrival-Date: %s\n", e.Arrival.Format(time.RFC1123Z))
	for _, rc := range in.failed {
		b.WriteString("\n")
		addrType := "rfc822"
		if !relay.IsASCII(rc.Addr) {
			addrType = "utf-8" // RFC 6533 §3
		}
		fmt.Fprintf(&b, "Final-Recipient: %s; %s\n", addrType, rc.Addr)
		b.WriteString("Action: failed\n")
		fmt.Fprintf(&b, "Status: %s\n", statusOf(rc.Reply))
		if hasCode(rc.Reply) {
			// RFC 3464 §2.3.6; LMTP replies are SMTP replies too.
			fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\n", asciiOnly(rc.Reply))
		}
		if !e.LastAttempt.IsZero() {
			fmt.Fprintf(&b, "Last-Attempt-Date: %s\n", e.LastAttempt.Format(time.RFC1123Z))
		}
	}

	// 3. The original header (RFC 6522 §3: text/rfc822-headers).
	fmt.Fprintf(&b, "\n--%s\n", boundary)
	b.WriteString("Content-Description: Undelivered Message Headers\n")
	b.WriteString("Content-Type: text/rfc822-headers\n")
	if !relay.IsASCII(string(in.header)) {
		b.WriteString("Content-Transfer-Encoding: 8bit\n")
	}
	b.WriteString("\n")
	b.Write(in.header)
	fmt.Fprintf(&b, "\n--%s--\n", boundary)
	return b.Bytes(), msgID
}

// hasCode reports whether a stored reply starts with an SMTP reply code.
func hasCode(reply string) bool {
	if len(reply) < 3 || (len(reply) > 3 && reply[3] != ' ') {
		return false
	}
	return reply[0] >= '2' && reply[0] <= '5' && reply[1] >= '0' && reply[1] <= '9' && reply[2] >= '0' && reply[2] <= '9'
}

// statusOf finds the RFC 3463 status code of a stored reply, after its
// reply code or as qmail's "(#5.1.1)"; without one it is 5.0.0 (RFC 3463
// §3.1: other undefined status).
func statusOf(reply string) string {
	rest := reply
	if hasCode(reply) {
		rest = strings.TrimPrefix(reply[3:], " ")
	}
	if s := relay.ParseEnhanced(rest); s != "" {
		return s
	}
	return "5.0.0"
}

// asciiOnly replaces what a message/delivery-status field may not hold.
func asciiOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x80 {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
