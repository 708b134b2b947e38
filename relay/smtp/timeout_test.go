package smtp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// short is a timeout that expires quickly; the tests assert what failed
// and how, never how long it took.
const short = 30 * time.Millisecond

func TestSilentServer(t *testing.T) {
	t.Run("greeting", func(t *testing.T) {
		sc := newScript(t, turn{silent: true})
		opts := testOptions()
		opts.Timeouts.Greeting = short
		_, err := NewClient(ctx, sc, opts)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || relay.IsPermanent(err) ||
			!strings.Contains(err.Error(), "no reply to greeting within 30ms") {
			t.Fatalf("err = %v", err)
		}
		if sc.deadReads != 1 {
			t.Errorf("%d reads hit their deadline", sc.deadReads)
		}
		sc.done()
	})
	t.Run("end of data", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
			turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 21 LAST\r\n" + simpleWire},
				reply: "250 ok\r\n250 ok\r\n550 5.1.1 no b\r\n"},
			turn{silent: true},
		)
		opts := testOptions()
		opts.Timeouts.DataEnd = short
		c := dial(t, sc, opts)
		res, err := c.Send(ctx, envelope("s@x", "a@x", "b@x"), message(simpleMsg))
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no reply to BDAT within 30ms") {
			t.Fatalf("err = %v", err)
		}
		if res[0].Class != relay.Deferred || res[1].Class != relay.Failed {
			t.Errorf("results %+v", res)
		}
		sc.done()
	})
}

// A server that stops reading after 354 must not block the client: the
// write deadline (DataBlock) fires while the message is being written.
func TestStalledAfter354(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloP},
		turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"}, reply: "250 ok\r\n250 ok\r\n354 go\r\n", stopReading: true},
	)
	opts := testOptions()
	opts.Timeouts.DataBlock = short
	c := dial(t, sc, opts)
	res, err := c.Send(ctx, envelope("s@x", "a@x"), message(simpleMsg))
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) ||
		!strings.Contains(err.Error(), "timed out after 30ms sending the message (the server stopped reading)") {
		t.Fatalf("err = %v", err)
	}
	if res[0].Class != relay.Deferred {
		t.Errorf("result %+v", res[0])
	}
	if sc.deadWrites != 1 || sc.wdlAtBlock.IsZero() {
		t.Errorf("%d writes hit their deadline; deadline at the blocked write %v", sc.deadWrites, sc.wdlAtBlock)
	}
	sc.done()
}

// The same with BDAT: the group with the message is written under the
// DataBlock deadline.
func TestStalledDuringBDAT(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC, stopReading: true},
	)
	opts := testOptions()
	opts.Timeouts.DataBlock = short
	c := dial(t, sc, opts)
	_, err := c.Send(ctx, envelope("s@x", "a@x"), message(simpleMsg))
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "sending the message") {
		t.Fatalf("err = %v", err)
	}
	if sc.deadWrites != 1 {
		t.Errorf("%d writes hit their deadline", sc.deadWrites)
	}
}

// bigMessage is a message of n octets that is generated, not stored.
type bigMessage int64

func (b bigMessage) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(b) {
		return 0, io.EOF
	}
	n := len(p)
	if rest := int64(b) - off; int64(n) > rest {
		n = int(rest)
	}
	for i := range n {
		if (off+int64(i))%80 == 79 {
			p[i] = '\n'
		} else {
			p[i] = 'x'
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Over real TCP: the server answers DATA with 354 and then never reads.
// Once the socket buffers are full the client's write blocks, and only the
// write deadline gets it out.
func TestStalledAfter354TCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(guard))
		br := bufio.NewReader(conn)
		io.WriteString(conn, greet220)
		br.ReadString('\n') // EHLO
		io.WriteString(conn, ehloP)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if l == "DATA\r\n" {
				break
			}
		}
		io.WriteString(conn, "250 ok\r\n250 ok\r\n354 go\r\n")
		<-release // stop reading
	}()
	defer func() { close(release); <-done }()

	opts := testOptions()
	opts.Address = ln.Addr().String()
	opts.ServerName = "mx.test"
	opts.Timeouts.DataBlock = 200 * time.Millisecond
	c, err := Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	size := int64(256 << 20) // far more than any socket buffer
	res, err := c.Send(ctx, envelope("s@x", "a@x"), &relay.Message{Data: bigMessage(size), Size: size})
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "sending the message") {
		t.Fatalf("err = %v", err)
	}
	if res[0].Class != relay.Deferred {
		t.Errorf("result %+v", res[0])
	}
}

func TestContextCanceled(t *testing.T) {
	sc := newScript(t, turn{silent: true})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(short, cancel)
	_, err := NewClient(ctx, sc, testOptions())
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("err = %v", err)
	}
}

// A hostile server cannot make the client read an endless line or an
// endless reply.
func TestReplyCaps(t *testing.T) {
	t.Run("long line", func(t *testing.T) {
		sc := newScript(t, turn{reply: "220 " + strings.Repeat("x", 5000) + "\r\n"})
		_, err := NewClient(ctx, sc, testOptions())
		if err == nil || !strings.Contains(err.Error(), "protocol error in the reply to greeting: reply line longer than 4096 bytes") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("many lines", func(t *testing.T) {
		sc := newScript(t,
			turn{reply: greet220},
			turn{want: []string{"EHLO client.example\r\n"}, reply: strings.Repeat("250-X\r\n", 1001) + "250 Y\r\n"},
		)
		_, err := NewClient(ctx, sc, testOptions())
		if err == nil || !strings.Contains(err.Error(), "reply has more than 1000 lines") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		sc := newScript(t, turn{reply: "HTTP/1.1 400 Bad Request\r\n"})
		_, err := NewClient(ctx, sc, testOptions())
		if err == nil || !strings.Contains(err.Error(), `malformed reply line "HTTP/1.1 400 Bad Request"`) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestGreetingRefused(t *testing.T) {
	sc := newScript(t, turn{reply: "554 5.7.1 no mail from you\r\n"})
	_, err := NewClient(ctx, sc, testOptions())
	var re *ReplyError
	if err == nil || !relay.IsPermanent(err) || !errors.As(err, &re) || re.Command != "greeting" || re.Code != 554 {
		t.Fatalf("err = %v", err)
	}
	sc.done("QUIT\r\n")

	sc = newScript(t, turn{reply: "421 4.3.2 busy\r\n", eof: true})
	if _, err = NewClient(ctx, sc, testOptions()); err == nil || relay.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
}

// Canceling the context aborts a Send that waits on a silent server: the
// undecided recipients are Deferred and the error says why.
func TestContextCanceledDuringSend(t *testing.T) {
	sc := newScript(t,
		turn{reply: greet220},
		turn{want: []string{"EHLO client.example\r\n"}, reply: ehloPC},
		turn{want: []string{"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 21 LAST\r\n" + simpleWire}, silent: true},
	)
	c := dial(t, sc, testOptions())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(short, cancel)
	res, err := c.Send(ctx, envelope("s@x", "a@x"), message(simpleMsg))
	if err == nil || !errors.Is(err, context.Canceled) || relay.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if res[0].Class != relay.Deferred || !strings.Contains(res[0].Text, "canceled") {
		t.Errorf("result %+v", res[0])
	}
	if c.Quit() != nil {
		t.Error("Quit after cancel failed")
	}
	sc.done()
}
