package smtp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay"
)

const (
	simpleMsg  = "Subject: t\n\nhello\n"
	simpleWire = "Subject: t\r\n\r\nhello\r\n" // 21 octets
)

var ctx = context.Background()

// With PIPELINING and CHUNKING one message costs three server turns after
// connecting, whatever the number of recipients: greeting, EHLO, and one
// group of MAIL, every RCPT and BDAT with the message, in one write.
func TestPipeliningChunking(t *testing.T) {
	for _, n := range []int{1, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var rcpts []string
			for i := range n {
				rcpts = append(rcpts, fmt.Sprintf("r%d@example.org", i))
			}
			group := "MAIL FROM:<s@example.com>\r\n" + rcptLines(rcpts...) + "BDAT 21 LAST\r\n" + simpleWire
			sc := newScript(t,
				turn{reply: greet220},
				turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
				turn{want: []string{group}, reply: "250 2.1.0 ok\r\n" + repeat("250 2.1.5 ok\r\n", n) + "250 2.0.0 queued as 1\r\n"},
			)
			c := dial(t, sc, testOptions())
			res, err := c.Send(ctx, envelope("s@example.com", rcpts...), message(simpleMsg))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != n {
				t.Fatalf("%d results", len(res))
			}
			for i, r := range res {
				checkResult(t, r, rcpts[i], relay.Delivered, 250, "2.0.0")
				if r.Text != "queued as 1" || r.Host != "smtp://mx.test:25" {
					t.Errorf("result %+v", r)
				}
			}
			if got := sc.turnsTaken(); got > 3 {
				t.Errorf("%d server turns, want at most 3", got)
			}
			c.Quit()
			sc.done("QUIT\r\n")
		})
	}
}

// With PIPELINING and DATA: four turns (greeting, EHLO, MAIL/RCPT/DATA,
// message and end of data).
func TestPipeliningData(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
		turn{want: []string{"MAIL FROM:<s@example.com>\r\n" + rcptLines("a@example.org", "b@example.org") + "DATA\r\n"},
			reply: "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"},
		turn{want: []string{simpleWire + ".\r\n"}, reply: "250 2.0.0 queued\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@example.com", "a@example.org", "b@example.org"), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@example.org", relay.Delivered, 250, "2.0.0")
	checkResult(t, res[1], "b@example.org", relay.Failed, 550, "5.1.1")
	if res[1].Scope != relay.RecipientScope || res[1].Text != "no such user" {
		t.Errorf("result %+v", res[1])
	}
	if got := sc.turnsTaken(); got > 4 {
		t.Errorf("%d server turns, want at most 4", got)
	}
	c.Quit()
	sc.done("QUIT\r\n")
}

// Without PIPELINING every command waits for its reply.
func TestNoPipelining(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloNone},
		turn{want: []string{"MAIL FROM:<s@example.com>\r\n"}, reply: "250 ok\r\n"},
		turn{want: []string{"RCPT TO:<a@example.org>\r\n"}, reply: "250 ok\r\n"},
		turn{want: []string{"RCPT TO:<b@example.org>\r\n"}, reply: "451 4.3.0 try later\r\n"},
		turn{want: []string{"DATA\r\n"}, reply: "354 go ahead\r\n"},
		turn{want: []string{simpleWire + ".\r\n"}, reply: "250 queued\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@example.com", "a@example.org", "b@example.org"), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@example.org", relay.Delivered, 250, "")
	checkResult(t, res[1], "b@example.org", relay.Deferred, 451, "4.3.0")
	c.Quit()
	sc.done("QUIT\r\n")
}

// Without PIPELINING, a refused MAIL stops the transaction: no RCPT is sent.
func TestNoPipeliningMailRefused(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloNone},
		turn{want: []string{"MAIL FROM:<s@example.com>\r\n"}, reply: "553 5.7.1 sender refused\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@example.com", "a@example.org", "b@example.org"), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Class != relay.Failed || r.Scope != relay.MessageScope || r.Code != 553 || r.Text != "sender refused" {
			t.Errorf("result %+v", r)
		}
	}
	c.Quit()
	sc.done("QUIT\r\n")
}

func TestEHLORefusedFallsBackToHELO(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: "502 5.5.2 EHLO not implemented\r\n"},
		turn{want: []string{"HELO client.example\r\n"}, reply: "250 mx.test\r\n"},
		turn{want: []string{"MAIL FROM:<s@example.com>\r\n"}, reply: "250 ok\r\n"},
		turn{want: []string{"RCPT TO:<a@example.org>\r\n"}, reply: "250 ok\r\n"},
		turn{want: []string{"DATA\r\n"}, reply: "354 go ahead\r\n"},
		turn{want: []string{simpleWire + ".\r\n"}, reply: "250 queued\r\n"},
	)
	c := dial(t, sc, testOptions())
	if info := c.Info(); len(info.Extensions) != 0 || info.Greeting != "mx.test ESMTP ready" {
		t.Errorf("info %+v", info)
	}
	res, err := c.Send(ctx, envelope("s@example.com", "a@example.org"), message(simpleMsg))
	if err != nil || res[0].Class != relay.Delivered {
		t.Fatalf("%+v, %v", res, err)
	}
	sc.done()
}

// An empty Hostname sends the address literal of the local end
// (RFC 5321 §4.1.4), never "localhost".
func TestDefaultHostname(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO [127.0.0.1]\r\n"}, reply: ehloPC},
	)
	opts := testOptions()
	opts.Hostname = ""
	c := dial(t, sc, opts)
	c.Close()
	sc.done()
	if got := addressLiteral(nil); got != "[127.0.0.1]" {
		t.Errorf("addressLiteral(nil) = %q", got)
	}
}

// LMTP: one reply per accepted RCPT after the message, in order, even for a
// duplicated recipient (RFC 2033 §4.2).
func TestLMTPPerRecipient(t *testing.T) {
	rcpts := []string{"a@x", "a@x", "b@x", "c@x", "d@x"}
	sc := newScript(t,
		turn{reply: "220 lmtp.test LMTP ready\r\n"},
		turn{want: []string{"LHLO client.example\r\n"}, reply: "250-lmtp.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"},
		turn{want: []string{"MAIL FROM:<s@x>\r\n" + rcptLines(rcpts...) + "DATA\r\n"},
			reply: "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n550 5.1.1 <d@x> unknown\r\n354 go ahead\r\n"},
		turn{want: []string{simpleWire + ".\r\n"},
			reply: "250 2.0.0 <a@x> saved\r\n452 4.2.2 <a@x> mailbox full\r\n552 5.2.2 <b@x> over quota\r\n250 2.0.0 <c@x> saved\r\n"},
	)
	opts := testOptions()
	opts.LMTP = true
	opts.Address = "lmtp.test:24"
	c := dial(t, sc, opts)
	res, err := c.Send(ctx, envelope("s@x", rcpts...), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@x", relay.Delivered, 250, "2.0.0")
	checkResult(t, res[1], "a@x", relay.Deferred, 452, "4.2.2")
	checkResult(t, res[2], "b@x", relay.Failed, 552, "5.2.2")
	checkResult(t, res[3], "c@x", relay.Delivered, 250, "2.0.0")
	checkResult(t, res[4], "d@x", relay.Failed, 550, "5.1.1")
	if res[2].Scope != relay.RecipientScope || res[1].Text != "<a@x> mailbox full" {
		t.Errorf("results %+v", res)
	}
	if got := sc.turnsTaken(); got > 4 {
		t.Errorf("%d turns", got)
	}
	c.Quit()
	sc.done("QUIT\r\n")
}

// Every RCPT refused but DATA accepted (the pipelined DATA could not wait):
// the client sends "." alone (RFC 2920 §3.1); the next message on the
// connection starts with RSET.
func TestAllRecipientsRefusedLoneDot(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
		turn{want: []string{"MAIL FROM:<s@x>\r\n" + rcptLines("a@x", "b@x") + "DATA\r\n"},
			reply: "250 ok\r\n550 5.1.1 no a\r\n550 5.1.1 no b\r\n354 go ahead\r\n"},
		turn{want: []string{".\r\n"}, reply: "554 5.5.1 no valid recipients\r\n"},
		turn{want: []string{"RSET\r\nMAIL FROM:<s@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n"},
			reply: "250 2.0.0 reset\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n"},
		turn{want: []string{simpleWire + ".\r\n"}, reply: "250 queued\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x"), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@x", relay.Failed, 550, "5.1.1")
	checkResult(t, res[1], "b@x", relay.Failed, 550, "5.1.1")
	res, err = c.Send(ctx, envelope("s@x", "c@x"), message(simpleMsg))
	if err != nil || res[0].Class != relay.Delivered {
		t.Fatalf("second message: %+v, %v", res, err)
	}
	c.Quit()
	sc.done("QUIT\r\n")
}

// DATA refused after accepted RCPTs: the refusal applies to the accepted
// recipients; the refused one keeps its own reply.
func TestDataRefused(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
		turn{want: []string{"MAIL FROM:<s@x>\r\n" + rcptLines("a@x", "b@x") + "DATA\r\n"},
			reply: "250 ok\r\n250 ok\r\n550 5.1.1 no b\r\n554 5.7.0 transaction failed\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x"), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@x", relay.Failed, 554, "5.7.0")
	checkResult(t, res[1], "b@x", relay.Failed, 550, "5.1.1")
	if res[0].Scope != relay.MessageScope {
		t.Errorf("scope %v", res[0].Scope)
	}
	sc.done()
}

// A 421 ends the session: every undecided recipient is Deferred with it,
// and later sends on the client are Deferred without I/O.
func TestReply421MidTransaction(t *testing.T) {
	t.Run("pipelined", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
			turn{want: []string{"MAIL FROM:<s@x>\r\n" + rcptLines("a@x", "b@x", "c@x") + "BDAT 21 LAST\r\n" + simpleWire},
				reply: "250 ok\r\n250 ok\r\n550 5.1.1 no b\r\n421 4.3.2 shutting down\r\n", eof: true},
		)
		c := dial(t, sc, testOptions())
		res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x", "c@x"), message(simpleMsg))
		var re *ReplyError
		if err == nil || relay.ClassOf(err) != relay.Deferred || !errors.As(err, &re) || re.Code != 421 || re.Command != "RCPT" {
			t.Fatalf("err = %v", err)
		}
		checkResult(t, res[0], "a@x", relay.Deferred, 421, "4.3.2")
		checkResult(t, res[1], "b@x", relay.Failed, 550, "5.1.1")
		checkResult(t, res[2], "c@x", relay.Deferred, 421, "4.3.2")
		res, err = c.Send(ctx, envelope("s@x", "d@x"), message(simpleMsg))
		if err == nil || res[0].Class != relay.Deferred || !strings.Contains(res[0].Text, "unusable") {
			t.Errorf("send after 421: %+v, %v", res, err)
		}
		if c.Quit() != nil {
			t.Error("Quit after 421 failed")
		}
		sc.done()
	})
	t.Run("lock-step", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloNone},
			turn{want: []string{"MAIL FROM:<s@x>\r\n"}, reply: "250 ok\r\n"},
			turn{want: []string{"RCPT TO:<a@x>\r\n"}, reply: "250 ok\r\n"},
			turn{want: []string{"RCPT TO:<b@x>\r\n"}, reply: "421 4.4.2 timeout\r\n", eof: true},
		)
		c := dial(t, sc, testOptions())
		res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x", "c@x"), message(simpleMsg))
		if err == nil || relay.IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
		for i, r := range res {
			checkResult(t, r, []string{"a@x", "b@x", "c@x"}[i], relay.Deferred, 421, "4.4.2")
		}
		sc.done()
	})
	t.Run("end of data", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
			turn{want: []string{"MAIL FROM:<s@x>\r\n" + rcptLines("a@x") + "DATA\r\n"}, reply: "250 ok\r\n250 ok\r\n354 go\r\n"},
			turn{want: []string{simpleWire + ".\r\n"}, eof: true},
		)
		c := dial(t, sc, testOptions())
		res, err := c.Send(ctx, envelope("s@x", "a@x"), message(simpleMsg))
		if err == nil || !strings.Contains(err.Error(), "closed the connection instead of replying to end of data") {
			t.Fatalf("err = %v", err)
		}
		if res[0].Class != relay.Deferred || res[0].Code != 0 || !strings.HasPrefix(res[0].Text, "smtp: mx.test closed") {
			t.Errorf("result %+v", res[0])
		}
		sc.done()
	})
}

// 452 "too many recipients": the rest go into a further transaction on the
// same connection once the first is done.
func TestTooManyRecipientsOverflow(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
		turn{want: []string{"MAIL FROM:<s@x>\r\n" + rcptLines("a@x", "b@x", "c@x", "d@x") + "BDAT 21 LAST\r\n" + simpleWire},
			reply: "250 ok\r\n250 ok\r\n550 5.1.1 no b\r\n452 4.5.3 too many recipients\r\n452 4.5.3 too many recipients\r\n250 2.0.0 queued 1\r\n"},
		turn{want: []string{"RSET\r\nMAIL FROM:<s@x>\r\n" + rcptLines("c@x", "d@x") + "BDAT 21 LAST\r\n" + simpleWire},
			reply: "250 2.0.0 reset\r\n250 ok\r\n250 ok\r\n452 Too many recipients\r\n250 2.0.0 queued 2\r\n"},
		turn{want: []string{"RSET\r\nMAIL FROM:<s@x>\r\n" + rcptLines("d@x") + "BDAT 21 LAST\r\n" + simpleWire},
			reply: "250 2.0.0 reset\r\n250 ok\r\n250 ok\r\n250 2.0.0 queued 3\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x", "c@x", "d@x"), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@x", relay.Delivered, 250, "2.0.0")
	checkResult(t, res[1], "b@x", relay.Failed, 550, "5.1.1")
	checkResult(t, res[2], "c@x", relay.Delivered, 250, "2.0.0")
	checkResult(t, res[3], "d@x", relay.Delivered, 250, "2.0.0")
	if res[0].Text != "queued 1" || res[2].Text != "queued 2" || res[3].Text != "queued 3" {
		t.Errorf("results %+v", res)
	}
	c.Quit()
	sc.done("QUIT\r\n")
}

// A "too many recipients" refusal with nothing accepted in the transaction
// stays Deferred (even as 552, RFC 5321 §4.5.3.1.10): no endless retry.
func TestTooManyRecipientsNoProgress(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloNone},
		turn{want: []string{"MAIL FROM:<s@x>\r\n"}, reply: "250 ok\r\n"},
		turn{want: []string{"RCPT TO:<a@x>\r\n"}, reply: "552 5.5.3 too many recipients\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x"), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@x", relay.Deferred, 552, "5.5.3")
	checkResult(t, res[1], "b@x", relay.Deferred, 552, "5.5.3")
	sc.done()
}

func TestSize(t *testing.T) {
	ehlo := func(size string) string {
		return "250-mx.test\r\n250-PIPELINING\r\n250 SIZE" + size + "\r\n"
	}
	t.Run("over the limit", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehlo(" 20")},
		)
		c := dial(t, sc, testOptions())
		// 19 octets stored, 21 with CRLF line endings: over 20.
		res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x"), message(simpleMsg))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Class != relay.Failed || r.Scope != relay.MessageScope || r.Enhanced != "5.3.4" || r.Code != 0 ||
				!strings.Contains(r.Text, "21 octets, over the limit of 20") {
				t.Errorf("result %+v", r)
			}
		}
		c.Quit()
		sc.done("QUIT\r\n") // nothing of the message was sent
	})
	for _, tc := range []struct{ name, size string }{{"at the limit", " 21"}, {"no limit", ""}, {"zero", " 0"}} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newScript(t,
				turn{reply: greet220},
				turn{want: []string{"EHLO client.example\r\n"}, reply: ehlo(tc.size)},
				turn{want: []string{"MAIL FROM:<s@x> SIZE=21\r\nRCPT TO:<a@x>\r\nDATA\r\n"}, reply: "250 ok\r\n250 ok\r\n354 go\r\n"},
				turn{want: []string{simpleWire + ".\r\n"}, reply: "250 ok\r\n"},
			)
			c := dial(t, sc, testOptions())
			if res, err := c.Send(ctx, envelope("s@x", "a@x"), message(simpleMsg)); err != nil || res[0].Class != relay.Delivered {
				t.Fatalf("%+v, %v", res, err)
			}
			sc.done()
		})
	}
}

// sendOne runs a one-recipient pipelined DATA session with the given EHLO
// extensions and checks the MAIL and RCPT lines; it returns the warnings.
func sendOne(t *testing.T, ext string, env *relay.Envelope, msg *relay.Message, mailRcpt string, wire string) []string {
	t.Helper()
	var warnings []string
	opts := testOptions()
	opts.Warn = func(s string) { warnings = append(warnings, s) }
	turns := []turn{
		{reply: greet220},
		{want: []string{"EHLO client.example\r\n"}, reply: "250-mx.test\r\n250-PIPELINING\r\n" + ext + "250 ENHANCEDSTATUSCODES\r\n"},
	}
	if mailRcpt != "" {
		n := strings.Count(mailRcpt, "\r\n")
		turns = append(turns,
			turn{want: []string{mailRcpt + "DATA\r\n"}, reply: repeat("250 ok\r\n", n) + "354 go\r\n"},
			turn{want: []string{wire + ".\r\n"}, reply: "250 2.0.0 ok\r\n"})
	}
	sc := newScript(t, turns...)
	c := dial(t, sc, opts)
	res, err := c.Send(ctx, env, msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Class == relay.Deferred {
			t.Errorf("result %+v", r)
		}
	}
	sc.done()
	return warnings
}

func Test8BitMIME(t *testing.T) {
	const eight = "Subject: caf\xc3\xa9\n\nna\xc3\xafve\n"
	const eightWire = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n"
	t.Run("offered", func(t *testing.T) {
		w := sendOne(t, "250-8BITMIME\r\n", envelope("s@x", "a@x"), message(eight),
			"MAIL FROM:<s@x> BODY=8BITMIME\r\nRCPT TO:<a@x>\r\n", eightWire)
		if len(w) != 0 {
			t.Errorf("warnings %q", w)
		}
	})
	t.Run("absent", func(t *testing.T) {
		w := sendOne(t, "", envelope("s@x", "a@x"), message(eight), "MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\n", eightWire)
		if len(w) != 1 || !strings.Contains(w[0], "does not offer 8BITMIME") {
			t.Errorf("warnings %q", w)
		}
	})
	t.Run("7bit declared", func(t *testing.T) {
		env := envelope("s@x", "a@x")
		env.Body = "7BIT"
		sendOne(t, "250-8BITMIME\r\n", env, message(simpleMsg), "MAIL FROM:<s@x> BODY=7BIT\r\nRCPT TO:<a@x>\r\n", simpleWire)
	})
	t.Run("7bit message", func(t *testing.T) {
		env := envelope("s@x", "a@x")
		env.Body = "8BITMIME" // -B8BITMIME from cron: no BODY= for a 7-bit message
		sendOne(t, "250-8BITMIME\r\n", env, message(simpleMsg), "MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\n", simpleWire)
	})
}

func TestSMTPUTF8(t *testing.T) {
	t.Run("offered", func(t *testing.T) {
		sendOne(t, "250-SMTPUTF8\r\n", envelope("s@x", "a@x", "jø@x"), message(simpleMsg),
			"MAIL FROM:<s@x> SMTPUTF8\r\nRCPT TO:<a@x>\r\nRCPT TO:<jø@x>\r\n", simpleWire)
	})
	t.Run("requested", func(t *testing.T) {
		env := envelope("s@x", "a@x")
		env.SMTPUTF8 = true
		sendOne(t, "250-SMTPUTF8\r\n", env, message(simpleMsg), "MAIL FROM:<s@x> SMTPUTF8\r\nRCPT TO:<a@x>\r\n", simpleWire)
	})
	t.Run("absent", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
			turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"}, reply: "250 ok\r\n250 ok\r\n354 go\r\n"},
			turn{want: []string{simpleWire + ".\r\n"}, reply: "250 ok\r\n"},
		)
		c := dial(t, sc, testOptions())
		res, err := c.Send(ctx, envelope("s@x", "jø@x", "a@x"), message(simpleMsg))
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res[0], "jø@x", relay.Failed, 0, "5.6.7")
		checkResult(t, res[1], "a@x", relay.Delivered, 250, "")
		if res[0].Scope != relay.RecipientScope || !strings.Contains(res[0].Text, "does not support SMTPUTF8") {
			t.Errorf("result %+v", res[0])
		}
		sc.done()
	})
	t.Run("sender absent", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
		)
		c := dial(t, sc, testOptions())
		res, err := c.Send(ctx, envelope("jø@x", "a@x"), message(simpleMsg))
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Class != relay.Failed || res[0].Scope != relay.MessageScope {
			t.Errorf("result %+v", res[0])
		}
		sc.done()
	})
}

func TestDSN(t *testing.T) {
	env := envelope("s@x", "r+tag@x", "jø@x")
	env.DSN = relay.DSN{Notify: []string{"SUCCESS", "FAILURE"}, Ret: "hdrs", EnvID: "id+1=x y"}
	env.SMTPUTF8 = true
	t.Run("offered", func(t *testing.T) {
		w := sendOne(t, "250-DSN\r\n250-SMTPUTF8\r\n", env, message(simpleMsg),
			"MAIL FROM:<s@x> SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx+20y\r\n"+
				"RCPT TO:<r+tag@x> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r+2Btag@x\r\n"+
				"RCPT TO:<jø@x> NOTIFY=SUCCESS,FAILURE\r\n", simpleWire)
		if len(w) != 0 {
			t.Errorf("warnings %q", w)
		}
	})
	t.Run("absent", func(t *testing.T) {
		w := sendOne(t, "250-SMTPUTF8\r\n", env, message(simpleMsg),
			"MAIL FROM:<s@x> SMTPUTF8\r\nRCPT TO:<r+tag@x>\r\nRCPT TO:<jø@x>\r\n", simpleWire)
		if len(w) != 1 || !strings.Contains(w[0], "does not support DSN") {
			t.Errorf("warnings %q", w)
		}
	})
	t.Run("never", func(t *testing.T) {
		env := envelope("", "a@x")
		env.DSN.Notify = []string{"NEVER"}
		sendOne(t, "250-DSN\r\n", env, message(simpleMsg),
			"MAIL FROM:<>\r\nRCPT TO:<a@x> NOTIFY=NEVER ORCPT=rfc822;a@x\r\n", simpleWire)
	})
}

func TestXText(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"plain@x":       "plain@x",
		"a+b=c":         "a+2Bb+3Dc",
		"sp ace\ttab":   "sp+20ace+09tab",
		"\x7f~!":        "+7F~!",
		"j\xc3\xb8":     "j+C3+B8",
		"<id@host.ex>":  "<id@host.ex>",
		"\x00\x1f\x20!": "+00+1F+20!",
	} {
		if got := xtext(in); got != want {
			t.Errorf("xtext(%q) = %q, want %q", in, got, want)
		}
	}
}

// The stored message (LF) goes out as CRLF, dot-stuffed for DATA, with
// lines over 998 octets folded by CRLF SP, Postfix style.
func TestBodyTransparency(t *testing.T) {
	stored := ".hidden\n..two\nplain\n.\n" +
		repeat("x", 1000) + "\n" +
		repeat("y", 2000) + "\n" +
		"." + repeat("z", 998) + "\n" +
		repeat("w", 998) + "\n"
	stuffed := "..hidden\r\n...two\r\nplain\r\n..\r\n" +
		repeat("x", 998) + "\r\n xx\r\n" +
		repeat("y", 998) + "\r\n " + repeat("y", 997) + "\r\n yyyyy\r\n" +
		".." + repeat("z", 997) + "\r\n z\r\n" +
		repeat("w", 998) + "\r\n"
	unstuffed := ".hidden\r\n..two\r\nplain\r\n.\r\n" +
		repeat("x", 998) + "\r\n xx\r\n" +
		repeat("y", 998) + "\r\n " + repeat("y", 997) + "\r\n yyyyy\r\n" +
		"." + repeat("z", 997) + "\r\n z\r\n" +
		repeat("w", 998) + "\r\n"
	msg := message(stored)
	if !msg.LongLines {
		t.Fatal("fixture has no long lines")
	}
	t.Run("DATA", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
			turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"}, reply: "250 ok\r\n250 ok\r\n354 go\r\n"},
			turn{want: []string{stuffed + ".\r\n"}, reply: "250 ok\r\n"},
		)
		c := dial(t, sc, testOptions())
		if res, err := c.Send(ctx, envelope("s@x", "a@x"), msg); err != nil || res[0].Class != relay.Delivered {
			t.Fatalf("%+v, %v", res, err)
		}
		sc.done()
	})
	t.Run("BDAT", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
			turn{want: []string{fmt.Sprintf("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT %d LAST\r\n", len(unstuffed)) + unstuffed},
				reply: "250 ok\r\n250 ok\r\n250 ok\r\n"},
		)
		c := dial(t, sc, testOptions())
		if res, err := c.Send(ctx, envelope("s@x", "a@x"), msg); err != nil || res[0].Class != relay.Delivered {
			t.Fatalf("%+v, %v", res, err)
		}
		sc.done()
	})
}

// Bytes the server sent after its 220 to STARTTLS, before the handshake,
// were sent in plain text and may be injected: the session is aborted
// before TLS starts.
func TestStartTLSInjection(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"},
		turn{want: []string{"STARTTLS\r\n"}, reply: "220 2.0.0 go ahead\r\n250-mx.test\r\n250 AUTH PLAIN\r\n"},
	)
	opts := testOptions()
	opts.TLS = TLSStartTLS
	_, err := NewClient(ctx, sc, opts)
	if err == nil || !errors.Is(err, errInjection) || relay.IsPermanent(err) ||
		!strings.Contains(err.Error(), "sent 29 bytes after its reply to STARTTLS") {
		t.Fatalf("err = %v", err)
	}
	sc.done()
	if !sc.closed {
		t.Error("connection left open")
	}
}

func TestStartTLSRequired(t *testing.T) {
	t.Run("not offered", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
		)
		opts := testOptions()
		opts.TLS = TLSStartTLS
		_, err := NewClient(ctx, sc, opts)
		want := "smtp: mx.test does not offer STARTTLS; relaymail requires TLS (use ?tls=none only for a trusted relay)"
		if err == nil || err.Error() != want || relay.ClassOf(err) != relay.Deferred {
			t.Fatalf("err = %v\nwant %s", err, want)
		}
		sc.done()
	})
	t.Run("refused", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: "250-mx.test\r\n250 STARTTLS\r\n"},
			turn{want: []string{"STARTTLS\r\n"}, reply: "502 5.5.1 not now\r\n"},
		)
		opts := testOptions()
		opts.TLS = TLSStartTLS
		_, err := NewClient(ctx, sc, opts)
		var re *ReplyError
		if err == nil || relay.ClassOf(err) != relay.Deferred || !errors.As(err, &re) || re.Code != 502 {
			t.Fatalf("err = %v", err)
		}
		sc.done()
	})
}

// Two messages on one connection: the second transaction starts with RSET
// in the same pipelined group.
func TestTwoMessagesRSET(t *testing.T) {
	second := "Subject: 2\n\nagain\n"
	secondWire := "Subject: 2\r\n\r\nagain\r\n"
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
		turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 21 LAST\r\n" + simpleWire}, reply: "250 ok\r\n250 ok\r\n250 2.0.0 first\r\n"},
		turn{want: []string{"RSET\r\nMAIL FROM:<t@x>\r\nRCPT TO:<b@x>\r\nBDAT 21 LAST\r\n" + secondWire},
			reply: "250 2.0.0 flushed\r\n250 ok\r\n250 ok\r\n250 2.0.0 second\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@x", "a@x"), message(simpleMsg))
	if err != nil || res[0].Text != "first" {
		t.Fatalf("%+v, %v", res, err)
	}
	res, err = c.Send(ctx, envelope("t@x", "b@x"), message(second))
	if err != nil || res[0].Text != "second" || res[0].Class != relay.Delivered {
		t.Fatalf("%+v, %v", res, err)
	}
	c.Quit()
	sc.done("QUIT\r\n")
}

func TestVerify(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
		turn{want: []string{"MAIL FROM:<s@x>\r\n" + rcptLines("a@x", "b@x", "c@x") + "RSET\r\n"},
			reply: "250 ok\r\n250 2.1.5 a ok\r\n550 5.1.1 no b\r\n450 4.2.0 greylisted\r\n250 2.0.0 reset\r\n"},
		turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<d@x>\r\nBDAT 21 LAST\r\n" + simpleWire}, reply: "250 ok\r\n250 ok\r\n250 ok\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Verify(ctx, envelope("s@x", "a@x", "b@x", "c@x"))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res[0], "a@x", relay.Delivered, 250, "2.1.5")
	checkResult(t, res[1], "b@x", relay.Failed, 550, "5.1.1")
	checkResult(t, res[2], "c@x", relay.Deferred, 450, "4.2.0")
	// The RSET was accepted: the next transaction needs none.
	if res, err := c.Send(ctx, envelope("s@x", "d@x"), message(simpleMsg)); err != nil || res[0].Class != relay.Delivered {
		t.Fatalf("%+v, %v", res, err)
	}
	sc.done()
}

// Addresses that would break the command line never reach it.
func TestInvalidAddresses(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
		turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<ok@x>\r\nRCPT TO:<\"a b\"@x>\r\nBDAT 21 LAST\r\n" + simpleWire},
			reply: "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n"},
	)
	c := dial(t, sc, testOptions())
	res, err := c.Send(ctx, envelope("s@x", "evil@x>\r\nRSET", "ok@x", "a>b@x", "", "sp ace@x", `"a b"@x`), message(simpleMsg))
	if err != nil {
		t.Fatal(err)
	}
	want := []relay.Class{relay.Failed, relay.Delivered, relay.Failed, relay.Failed, relay.Failed, relay.Delivered}
	for i, r := range res {
		if r.Class != want[i] {
			t.Errorf("result %d %+v, want %v", i, r, want[i])
		}
	}
	sc.done()

	sc = newScript(t, turn{reply: greet220}, turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC})
	c = dial(t, sc, testOptions())
	res, err = c.Send(ctx, envelope("bad\nsender@x", "a@x"), message(simpleMsg))
	if err != nil || res[0].Class != relay.Failed || res[0].Scope != relay.MessageScope {
		t.Errorf("%+v, %v", res, err)
	}
	sc.done()
}

const (
	authUser = "tim"
	authPass = "tanstaaftanstaaf"
	ehloAuth = "250-mx.test\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN CRAM-MD5 XOAUTH2\r\n"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func authOptions(mech string, tr *strings.Builder) Options {
	opts := testOptions()
	opts.Auth = &Auth{User: authUser, Password: func() (string, error) { return authPass, nil }, Mechanism: mech}
	if tr != nil {
		opts.Transcript = tr
	}
	return opts
}

// checkRedacted fails when the transcript shows a credential, or when it
// shows no redacted line although the client sent credentials.
func checkRedacted(t *testing.T, transcript string) {
	t.Helper()
	checkNoSecrets(t, transcript)
	if !strings.Contains(transcript, "[redacted]") {
		t.Errorf("transcript has no [redacted]:\n%s", transcript)
	}
}

func checkNoSecrets(t *testing.T, transcript string) {
	t.Helper()
	for _, secret := range []string{authPass, b64(authPass), b64("\x00" + authUser + "\x00" + authPass),
		"b913a602c7eda7a495b4e6e7334d3890", "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"} {
		if strings.Contains(transcript, secret) {
			t.Errorf("transcript shows %q:\n%s", secret, transcript)
		}
	}
}

func TestAuthMechanisms(t *testing.T) {
	for _, tc := range []struct {
		name, mech, used string
		turns            []turn
	}{
		{"plain", "plain", "PLAIN", []turn{
			{want: []string{"AUTH PLAIN " + b64("\x00tim\x00tanstaaftanstaaf") + "\r\n"}, reply: "235 2.7.0 ok\r\n"}}},
		{"login", "login", "LOGIN", []turn{
			{want: []string{"AUTH LOGIN\r\n"}, reply: "334 VXNlcm5hbWU6\r\n"},
			{want: []string{b64(authUser) + "\r\n"}, reply: "334 UGFzc3dvcmQ6\r\n"},
			{want: []string{b64(authPass) + "\r\n"}, reply: "235 2.7.0 ok\r\n"}}},
		{"login other prompts", "login", "LOGIN", []turn{
			{want: []string{"AUTH LOGIN\r\n"}, reply: "334 " + b64("User Name\x00") + "\r\n"},
			{want: []string{b64(authUser) + "\r\n"}, reply: "334 Password:\r\n"},
			{want: []string{b64(authPass) + "\r\n"}, reply: "235 2.7.0 ok\r\n"}}},
		{"login no prompts", "login", "LOGIN", []turn{
			{want: []string{"AUTH LOGIN\r\n"}, reply: "334 \r\n"},
			{want: []string{b64(authUser) + "\r\n"}, reply: "334\r\n"},
			{want: []string{b64(authPass) + "\r\n"}, reply: "235 2.7.0 ok\r\n"}}},
		// RFC 2195 §2's example, the default choice when offered.
		{"cram-md5", "", "CRAM-MD5", []turn{
			{want: []string{"AUTH CRAM-MD5\r\n"}, reply: "334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"},
			{want: []string{"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"}, reply: "235 2.7.0 ok\r\n"}}},
		{"xoauth2", "xoauth2", "XOAUTH2", []turn{
			{want: []string{"AUTH XOAUTH2 " + b64("user=tim\x01auth=Bearer tanstaaftanstaaf\x01\x01") + "\r\n"}, reply: "235 2.7.0 ok\r\n"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			turns := append([]turn{
				{reply: greet220},
				{want: []string{"EHLO client.example\r\n"}, reply: ehloAuth},
			}, tc.turns...)
			sc := newScript(t, turns...)
			var tr strings.Builder
			c := dial(t, sc, authOptions(tc.mech, &tr))
			if info := c.Info(); !info.AuthOK || info.AuthMechanism != tc.used {
				t.Errorf("info %+v", info)
			}
			sc.done()
			checkRedacted(t, tr.String())
		})
	}
}

func TestCRAMMD5Vector(t *testing.T) {
	// RFC 2195 §2.
	got := cramMD5("tim", "tanstaaftanstaaf", []byte("<1896.697170952@postoffice.reston.mci.net>"))
	if got != "tim b913a602c7eda7a495b4e6e7334d3890" {
		t.Errorf("got %q", got)
	}
}

func TestAuthFailures(t *testing.T) {
	for _, tc := range []struct {
		name, mech string
		turns      []turn
		class      relay.Class
		code       int
		text       string
	}{
		{"535", "plain", []turn{{want: []string{"AUTH PLAIN " + b64("\x00tim\x00tanstaaftanstaaf") + "\r\n"},
			reply: "535 5.7.8 Authentication credentials invalid\r\n"}},
			relay.Failed, 535, `authentication failed: mx.test rejected user "tim"'s password: 535 5.7.8 Authentication credentials invalid`},
		{"454", "plain", []turn{{want: []string{"AUTH PLAIN " + b64("\x00tim\x00tanstaaftanstaaf") + "\r\n"},
			reply: "454 4.7.0 Temporary authentication failure\r\n"}},
			relay.Deferred, 454, "temporary authentication failure at mx.test"},
		{"534", "login", []turn{{want: []string{"AUTH LOGIN\r\n"}, reply: "534 5.7.9 Authentication mechanism is too weak\r\n"}},
			relay.Failed, 534, "too weak"},
		{"538", "login", []turn{{want: []string{"AUTH LOGIN\r\n"}, reply: "538 5.7.11 Encryption required\r\n"}},
			relay.Failed, 538, "requires a stronger encryption"},
		{"xoauth2 error challenge", "xoauth2", []turn{
			{want: []string{"AUTH XOAUTH2 " + b64("user=tim\x01auth=Bearer tanstaaftanstaaf\x01\x01") + "\r\n"},
				reply: "334 " + b64(`{"status":"401","schemes":"bearer"}`) + "\r\n"},
			{want: []string{"\r\n"}, reply: "535 5.7.8 Username and Password not accepted\r\n"}},
			relay.Failed, 535, `rejected user "tim"'s token: 535 5.7.8 Username and Password not accepted (server said {"status":"401","schemes":"bearer"})`},
		{"unexpected challenge", "plain", []turn{
			{want: []string{"AUTH PLAIN " + b64("\x00tim\x00tanstaaftanstaaf") + "\r\n"}, reply: "334 \r\n"},
			{want: []string{"*\r\n"}, reply: "501 5.0.0 cancelled\r\n"}},
			relay.Deferred, 0, "AUTH PLAIN with mx.test failed: unexpected challenge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			turns := append([]turn{
				{reply: greet220},
				{want: []string{"EHLO client.example\r\n"}, reply: ehloAuth},
			}, tc.turns...)
			sc := newScript(t, turns...)
			var tr strings.Builder
			_, err := NewClient(ctx, sc, authOptions(tc.mech, &tr))
			if err == nil || relay.ClassOf(err) != tc.class || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v\nwant class %v and %q", err, tc.class, tc.text)
			}
			var re *ReplyError
			if tc.code != 0 && (!errors.As(err, &re) || re.Code != tc.code || re.Command != "AUTH") {
				t.Errorf("reply error %+v", re)
			}
			if strings.Contains(err.Error(), authPass) {
				t.Errorf("error shows the password: %v", err)
			}
			sc.done()
			checkNoSecrets(t, tr.String())
			if tc.mech != "login" {
				checkRedacted(t, tr.String())
			}
		})
	}
}

func TestAuthRefusedInPlainText(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloAuth},
	)
	sc.remote = &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 587}
	var tr strings.Builder
	_, err := NewClient(ctx, sc, authOptions("", &tr))
	if err == nil || !relay.IsPermanent(err) || !strings.Contains(err.Error(), "over a connection without TLS") {
		t.Fatalf("err = %v", err)
	}
	sc.done() // no AUTH was written
	if strings.Contains(tr.String(), "> AUTH") {
		t.Errorf("transcript:\n%s", tr.String())
	}
}

func TestAuthNotOffered(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
	)
	_, err := NewClient(ctx, sc, authOptions("", nil))
	if err == nil || relay.IsPermanent(err) || !strings.Contains(err.Error(), `mx.test does not offer AUTH, but relaymail is configured to log in as "tim"`) {
		t.Fatalf("err = %v", err)
	}
	sc.done()

	sc = newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: "250-mx.test\r\n250 AUTH GSSAPI\r\n"},
	)
	_, err = NewClient(ctx, sc, authOptions("", nil))
	if err == nil || relay.IsPermanent(err) || !strings.Contains(err.Error(), "none of which relaymail supports") {
		t.Fatalf("err = %v", err)
	}
	sc.done()
}

func TestAuthOverUnixSocket(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloAuth},
		turn{want: []string{"AUTH PLAIN " + b64("\x00tim\x00tanstaaftanstaaf") + "\r\n"}, reply: "235 ok\r\n"},
	)
	sc.remote = &net.UnixAddr{Name: "/run/smtp.sock", Net: "unix"}
	opts := authOptions("plain", nil)
	opts.Network, opts.Address = "unix", "/run/smtp.sock"
	dial(t, sc, opts)
	sc.done()
}

func TestPasswordReadError(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloAuth},
	)
	opts := authOptions("", nil)
	opts.Auth.Password = func() (string, error) { return "", os.ErrNotExist }
	_, err := NewClient(ctx, sc, opts)
	if err == nil || relay.IsPermanent(err) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	sc.done()
}

func TestTranscript(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
		turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 21 LAST\r\n" + simpleWire}, reply: "250 ok\r\n250 ok\r\n250 queued\r\n"},
	)
	var tr strings.Builder
	opts := testOptions()
	opts.Transcript = &tr
	c := dial(t, sc, opts)
	if _, err := c.Send(ctx, envelope("s@x", "a@x"), message(simpleMsg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	want := `< 220 mx.test ESMTP ready
> EHLO client.example
< 250-mx.test hello
< 250-PIPELINING
< 250-CHUNKING
< 250-ENHANCEDSTATUSCODES
< 250 8BITMIME
> MAIL FROM:<s@x>
> RCPT TO:<a@x>
> BDAT 21 LAST
> [message: 21 octets]
< 250 ok
< 250 ok
< 250 queued
> QUIT
`
	if tr.String() != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", tr.String(), want)
	}
}
