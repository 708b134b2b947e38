package qmtp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/qmtp"
	"github.com/relaymail/relaymail/relay/relaytest"
)

func message(s string) *relay.Message {
	return &relay.Message{Data: strings.NewReader(s), Size: int64(len(s))}
}

func rcpts(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d@example.org", prefix, i)
	}
	return out
}

func dial(t *testing.T, s *relaytest.QMTPServer) *qmtp.Client {
	t.Helper()
	c, err := qmtp.Dial(context.Background(), qmtp.Options{Network: s.Network(), Address: s.Addr(), IOTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// SendAll pipelines packages on one connection. The first package's replies
// are large enough to fill the socket buffers while the second package, a
// large message, is still being written: a client that did not read replies
// while writing would deadlock with the server (QMTP.txt §2), and time out.
func TestSendAllPipelines(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	longText := strings.Repeat("z", 60<<10) // each reply just under MaxReply
	s.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
		switch p.Seq {
		case 1:
			return relaytest.Reply("K", fmt.Sprintf("%d %s", i, longText))
		case 3:
			if i == 1 {
				return relaytest.Reply("D", "no such user (#5.1.1)")
			}
		}
		return relaytest.QMTPAction{}
	}
	big := strings.Repeat("0123456789 abcdefghijklmnopqrstuvwxyz\n", 200000) // ~7.6 MB
	pkgs := []qmtp.Package{
		{Envelope: &relay.Envelope{Sender: "a@example.com", Recipients: rcpts("first", 120)}, Message: message("Subject: 1\n\none\n")},
		{Envelope: &relay.Envelope{Sender: "", Recipients: rcpts("big", 2)}, Message: message(big)},
		{Envelope: &relay.Envelope{Sender: "c@example.com", Recipients: rcpts("third", 3)}, Message: message("Subject: 3\n\nthree\n")},
		{Envelope: &relay.Envelope{Sender: "d@example.com", Recipients: []string{"x@y", "x@y"}}, Message: message("")},
	}
	// Small socket buffers on the client side, so that neither the replies
	// nor the big message fit in the buffers between the two sides.
	raw, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	raw.(*net.TCPConn).SetReadBuffer(16 << 10)
	raw.(*net.TCPConn).SetWriteBuffer(16 << 10)
	c := qmtp.NewClient(raw, qmtp.Options{IOTimeout: 30 * time.Second})
	defer c.Close()
	all, err := c.SendAll(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(pkgs) {
		t.Fatalf("%d result lists for %d packages", len(all), len(pkgs))
	}
	for k, res := range all {
		want := pkgs[k].Envelope.Recipients
		if len(res) != len(want) {
			t.Fatalf("package %d: %d results for %d recipients", k+1, len(res), len(want))
		}
		for i, r := range res {
			wantClass := relay.Delivered
			if k == 2 && i == 1 {
				wantClass = relay.Failed
			}
			if r.Recipient != want[i] || r.Class != wantClass {
				t.Errorf("package %d result %d: %s %v (%.40q), want %s %v", k+1, i, r.Recipient, r.Class, r.Text, want[i], wantClass)
			}
		}
	}
	if got := all[0][7].Text; got != "7 "+longText {
		t.Errorf("reply text for package 1 recipient 8 has %d bytes, want the 8th reply", len(got))
	}
	if r := all[2][1]; r.Enhanced != "5.1.1" || r.Scope != relay.RecipientScope {
		t.Errorf("D reply: %+v", r)
	}

	got := s.Packages()
	if len(got) != len(pkgs) {
		t.Fatalf("server recorded %d packages, want %d", len(got), len(pkgs))
	}
	if s.Conns() != 1 {
		t.Errorf("%d connections, want 1", s.Conns())
	}
	for k, p := range got {
		if p.Conn != 1 || p.Seq != k+1 || p.Encoding != '\n' {
			t.Errorf("package %d: conn %d seq %d encoding %q", k+1, p.Conn, p.Seq, p.Encoding)
		}
		if p.Sender != pkgs[k].Envelope.Sender || strings.Join(p.Recipients, ",") != strings.Join(pkgs[k].Envelope.Recipients, ",") {
			t.Errorf("package %d envelope: %q %q", k+1, p.Sender, p.Recipients)
		}
	}
	if string(got[1].Message) != big {
		t.Errorf("big message: stored %d bytes, sent %d", len(got[1].Message), len(big))
	}
}

// opConn records the order of writes and of reads that returned data. The
// client's reader waits in Read while the writer writes, so a read counts
// when it returns.
type opConn struct {
	net.Conn
	mu  sync.Mutex
	ops []byte
}

func (c *opConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.add('R')
	}
	return n, err
}

func (c *opConn) Write(p []byte) (int, error) {
	c.add('W')
	return c.Conn.Write(p)
}

func (c *opConn) add(op byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops = append(c.ops, op)
}

// cycles collapses runs of the same operation: "WWRR" is "WR".
func (c *opConn) cycles() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []byte
	for _, op := range c.ops {
		if len(out) == 0 || out[len(out)-1] != op {
			out = append(out, op)
		}
	}
	return string(out)
}

// One package costs one connection and one write-then-read cycle, whatever
// the number of recipients: QMTP has no greeting, no per-recipient command
// and no QUIT.
func TestOneRoundTripPerPackage(t *testing.T) {
	for _, n := range []int{1, 10} {
		t.Run(fmt.Sprint(n, " recipients"), func(t *testing.T) {
			s := relaytest.NewQMTPServer(t)
			raw, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			conn := &opConn{Conn: raw}
			c := qmtp.NewClient(conn, qmtp.Options{})
			env := &relay.Envelope{Sender: "s@example.com", Recipients: rcpts("r", n)}
			res, err := c.Send(context.Background(), env, message("Subject: x\n\nbody\n"))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Class != relay.Delivered {
					t.Errorf("%s: %v %q", r.Recipient, r.Class, r.Text)
				}
			}
			if got := conn.cycles(); got != "WR" {
				t.Errorf("client I/O was %q, want one write phase then one read phase (WR)", got)
			}
			c.Close()
			pkgs, err := s.WaitPackages(1, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// relaytest replies only after the final byte of a package, so
			// the whole package was read before the first reply.
			if len(pkgs) != 1 || len(pkgs[0].Replies) != n || s.Conns() != 1 {
				t.Errorf("server: %d packages, %d replies, %d connections", len(pkgs), len(pkgs[0].Replies), s.Conns())
			}
		})
	}
}

// The server closes the connection before replying to the second recipient
// of the second package: what came before stands, the rest is deferred.
func TestSendAllServerCloses(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	s.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
		if p.Seq == 2 && i == 1 {
			return relaytest.CloseConn()
		}
		return relaytest.QMTPAction{}
	}
	pkgs := []qmtp.Package{
		{Envelope: &relay.Envelope{Recipients: rcpts("a", 2)}, Message: message("1\n")},
		{Envelope: &relay.Envelope{Recipients: rcpts("b", 3)}, Message: message("2\n")},
		{Envelope: &relay.Envelope{Recipients: rcpts("c", 2)}, Message: message("3\n")},
	}
	c := dial(t, s)
	all, err := c.SendAll(context.Background(), pkgs)
	var re *relay.Error
	if !errors.As(err, &re) || re.Class != relay.Deferred {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	classes := func(res []relay.Result) string {
		var b strings.Builder
		for _, r := range res {
			b.WriteString(r.Class.String()[:3] + " ")
		}
		return b.String()
	}
	var got []string
	for _, res := range all {
		got = append(got, classes(res))
	}
	want := []string{"del del ", "del def def ", "def def "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("classes %q, want %q", got, want)
	}
	for _, r := range all[2] {
		if r.Text == "" {
			t.Errorf("%s: deferred without a reason", r.Recipient)
		}
	}
}

// A package cut off mid-stream is thrown away by the server and deferred by
// the client, while the earlier package stays delivered.
func TestSendAllCutOff(t *testing.T) {
	s := relaytest.NewQMTPServer(t)
	s.BeforePackage = func(p *relaytest.QMTPPackage) relaytest.QMTPAction {
		if p.Seq == 2 {
			return relaytest.CloseAfter(100)
		}
		return relaytest.QMTPAction{}
	}
	pkgs := []qmtp.Package{
		{Envelope: &relay.Envelope{Recipients: []string{"a@x"}}, Message: message("small\n")},
		{Envelope: &relay.Envelope{Recipients: []string{"b@x"}}, Message: message(strings.Repeat("long line\n", 1000))},
	}
	c := dial(t, s)
	all, err := c.SendAll(context.Background(), pkgs)
	if err == nil {
		t.Fatal("no error")
	}
	if all[0][0].Class != relay.Delivered || all[1][0].Class != relay.Deferred {
		t.Errorf("results %+v", all)
	}
	if got := s.Packages(); len(got) != 1 || got[0].Recipients[0] != "a@x" {
		t.Errorf("server recorded %+v", got)
	}
}

func TestRelayer(t *testing.T) {
	for _, unix := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "unix"}[unix], func(t *testing.T) {
			var s *relaytest.QMTPServer
			if unix {
				s = relaytest.NewUnixQMTPServer(t)
			} else {
				s = relaytest.NewQMTPServer(t)
			}
			s.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
				if p.Recipients[i] == "temp@x" {
					return relaytest.Reply("Z", "try later (#4.2.1)")
				}
				return relaytest.QMTPAction{}
			}
			r := &qmtp.Relayer{Options: qmtp.Options{Network: s.Network(), Address: s.Addr(), Name: "qmtp://sink"}}
			if r.String() != "qmtp://sink" {
				t.Errorf("String() = %q", r.String())
			}
			env := &relay.Envelope{Sender: "me@x", Recipients: []string{"you@x", "temp@x"}}
			res, err := r.Relay(context.Background(), env, message("Subject: t\n\nhi\n"))
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Class != relay.Delivered || res[1].Class != relay.Deferred || res[1].Enhanced != "4.2.1" || res[0].Host != "qmtp://sink" {
				t.Errorf("results %+v", res)
			}
			got, err := s.WaitPackages(1, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[0].Message, []byte("Subject: t\n\nhi\n")) || got[0].Sender != "me@x" {
				t.Errorf("stored %+v", got[0])
			}
		})
	}
}

func TestRelayerCannotConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := &qmtp.Relayer{Options: qmtp.Options{Address: addr}}
	if r.String() != "tcp:"+addr {
		t.Errorf("String() = %q", r.String())
	}
	res, err := r.Relay(context.Background(), &relay.Envelope{Recipients: []string{"a@x", "b@x"}}, message("m\n"))
	var re *relay.Error
	if !errors.As(err, &re) || re.Class != relay.Deferred || !strings.HasPrefix(err.Error(), "qmtp: ") {
		t.Fatalf("err = %v, want a temporary qmtp error", err)
	}
	if len(res) != 2 || res[0].Class != relay.Deferred || res[1].Host != "tcp:"+addr || !strings.HasPrefix(res[1].Text, "qmtp: cannot connect: ") {
		t.Errorf("results %+v", res)
	}

	// Without recipients nothing is dialled: the error is about the
	// recipients, not the connection.
	res, err = r.Relay(context.Background(), &relay.Envelope{}, message("m\n"))
	if len(res) != 0 || !errors.Is(err, qmtp.ErrNoRecipients) {
		t.Errorf("Relay without recipients = %+v, %v", res, err)
	}
}

// A session sends a batch of packages over one connection.
func TestRelayerSessionBatch(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	r := &qmtp.Relayer{Options: qmtp.Options{Network: "tcp", Address: srv.Addr()}}
	sess, err := r.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msg := &relay.Message{Data: strings.NewReader("Subject: x\n\nbody\n"), Size: 17}
	var batch []relay.Batch
	for i := 0; i < 5; i++ {
		batch = append(batch, relay.Batch{Envelope: &relay.Envelope{Sender: "a@x", Recipients: []string{fmt.Sprintf("r%d@x", i)}}, Message: msg})
	}
	results, err := sess.(relay.BatchSender).SendBatch(context.Background(), batch)
	sess.Close()
	if err != nil || len(results) != 5 {
		t.Fatalf("%v, %d results", err, len(results))
	}
	for i, res := range results {
		if len(res) != 1 || res[0].Class != relay.Delivered || res[0].Recipient != fmt.Sprintf("r%d@x", i) {
			t.Errorf("package %d: %+v", i, res)
		}
	}
	if srv.Conns() != 1 || len(srv.Packages()) != 5 {
		t.Errorf("%d connections, %d packages", srv.Conns(), len(srv.Packages()))
	}
}
