package relaytest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/qmtp"
)

const wait = 10 * time.Second // upper bound for WaitPackages; nothing is timed

func ns(s string) string { return string(qmtp.AppendNetstring(nil, s)) }

// pkg builds a package by hand: netstring(enc+msg), sender, recipient list.
func pkg(enc, msg, sender string, rcpts ...string) string {
	var list string
	for _, r := range rcpts {
		list += ns(r)
	}
	return ns(enc+msg) + ns(sender) + ns(list)
}

func dialRaw(t *testing.T, s *QMTPServer) net.Conn {
	t.Helper()
	conn, err := net.Dial(s.Network(), s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(wait)) // a guard against hangs only
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readReplies reads n reply netstrings.
func readReplies(t *testing.T, r *bufio.Reader, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		b, err := qmtp.ReadNetstring(r, 1<<16)
		if err != nil {
			t.Fatalf("reply %d: %v", i+1, err)
		}
		out = append(out, string(b))
	}
	return out
}

// readRest reads until the server closes; a reset counts as a close.
func readRest(conn net.Conn) string {
	b, _ := io.ReadAll(conn)
	return string(b)
}

func TestQMTPEncodings(t *testing.T) {
	s := NewQMTPServer(t)
	conn := dialRaw(t, s)
	io.WriteString(conn, pkg("\r", "line1\r\nline2\r\r\nx\r", "s@x", "a@x")+
		pkg("\n", "a\r\nb\x00\xff", "", "b@x"))
	replies := readReplies(t, bufio.NewReader(conn), 2)
	for _, r := range replies {
		if !strings.HasPrefix(r, "Kok ") || !strings.Contains(r, " qp ") {
			t.Errorf("reply %q, want qmail's Kok <time> qp <n>", r)
		}
	}
	got := s.Packages()
	if len(got) != 2 {
		t.Fatalf("%d packages", len(got))
	}
	// Encoding #1: CR LF pairs become LF, a lone CR stays.
	if p := got[0]; p.Encoding != '\r' || string(p.Message) != "line1\nline2\r\nx\r" || p.Sender != "s@x" {
		t.Errorf("encoding #1 stored %q (enc %q sender %q)", p.Message, p.Encoding, p.Sender)
	}
	// Encoding #2: verbatim.
	if p := got[1]; p.Encoding != '\n' || string(p.Message) != "a\r\nb\x00\xff" || p.Sender != "" {
		t.Errorf("encoding #2 stored %q (enc %q sender %q)", p.Message, p.Encoding, p.Sender)
	}
	if got[0].Replies[0] != replies[0] || got[1].Replies[0] != replies[1] {
		t.Errorf("recorded replies %q %q, sent %q", got[0].Replies, got[1].Replies, replies)
	}
}

func TestDecodeCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		"\r\n":         "\n",
		"\r":           "\r",
		"\r\r\n":       "\r\n",
		"a\rb":         "a\rb",
		"a\r\r":        "a\r\r",
		"\n\n":         "\n\n",
		"x\r\ny\r\n\r": "x\ny\n\r",
	} {
		var b bytes.Buffer
		if !decodeCRLF(&b, strings.NewReader(in), int64(len(in))) || b.String() != want {
			t.Errorf("decodeCRLF(%q) = %q, want %q", in, b.String(), want)
		}
	}
	if decodeCRLF(&bytes.Buffer{}, strings.NewReader("ab"), 3) {
		t.Error("decodeCRLF accepted a short input")
	}
}

// qmail-qmtpd's badproto: the connection is closed with no reply, and
// nothing is recorded.
func TestQMTPBadProto(t *testing.T) {
	for name, in := range map[string]string{
		"zero-length message":  "0:," + ns("s@x") + ns(ns("a@x")),
		"bad encoding byte":    pkg("x", "msg\n", "s@x", "a@x"),
		"non-digit length":     "a:",
		"leading zero":         "05:\nabcd,",
		"missing comma":        "4:\nabc;",
		"bad recipient list":   ns("\nm") + ns("s@x") + ns("3:a@x"),
		"message over the cap": "200000001:",
	} {
		t.Run(name, func(t *testing.T) {
			s := NewQMTPServer(t)
			conn := dialRaw(t, s)
			io.WriteString(conn, in)
			if rest := readRest(conn); rest != "" {
				t.Errorf("server replied %q", rest)
			}
			if p := s.Packages(); len(p) != 0 {
				t.Errorf("recorded %+v", p)
			}
		})
	}
}

// QMTP.txt §2: a package cut off before its final byte is thrown away, but
// the packages before it on the connection are kept.
func TestQMTPCutOffPackageIsDiscarded(t *testing.T) {
	s := NewQMTPServer(t)
	conn := dialRaw(t, s)
	second := pkg("\n", "second\n", "s@x", "b@x")
	io.WriteString(conn, pkg("\n", "first\n", "s@x", "a@x")+second[:len(second)-1])
	conn.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(conn)
	readReplies(t, br, 1)
	// The server closes once it sees the end of input, so after this read
	// it is done with the connection.
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("reply to a cut-off package: %q", rest)
	}
	got := s.Packages()
	if len(got) != 1 || string(got[0].Message) != "first\n" {
		t.Errorf("recorded %+v", got)
	}
}

// qmail-qmtpd answers an empty recipient list with zero replies and waits
// for the next package.
func TestQMTPZeroRecipients(t *testing.T) {
	s := NewQMTPServer(t)
	s.Script = func(p *QMTPPackage, i int) QMTPAction {
		return Reply("K", fmt.Sprintf("package %d", p.Seq))
	}
	conn := dialRaw(t, s)
	io.WriteString(conn, pkg("\n", "none\n", "s@x")+pkg("\n", "one\n", "s@x", "a@x"))
	br := bufio.NewReader(conn)
	if r := readReplies(t, br, 1); r[0] != "Kpackage 2" {
		t.Errorf("first reply %q, want the reply to package 2", r[0])
	}
	got := s.Packages()
	if len(got) != 2 || len(got[0].Recipients) != 0 || len(got[0].Replies) != 0 || len(got[1].Replies) != 1 {
		t.Errorf("recorded %+v", got)
	}
}

// Pipelined input: several packages in one write, replies in order.
func TestQMTPPipelined(t *testing.T) {
	s := NewUnixQMTPServer(t)
	s.Script = func(p *QMTPPackage, i int) QMTPAction {
		codes := "KZD"
		return Reply(codes[(p.Seq-1)%3:(p.Seq-1)%3+1], fmt.Sprintf("%d.%d", p.Seq, i))
	}
	conn := dialRaw(t, s)
	io.WriteString(conn, pkg("\n", "1\n", "s@x", "a@x", "b@x")+pkg("\n", "2\n", "s@x", "c@x")+pkg("\r", "3\r\n", "s@x", "d@x", "d@x"))
	got := readReplies(t, bufio.NewReader(conn), 5)
	want := []string{"K1.0", "K1.1", "Z2.0", "D3.0", "D3.1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("replies %q, want %q", got, want)
	}
	pkgs := s.Packages()
	for i, p := range pkgs {
		if p.N != i+1 || p.Conn != 1 || p.Seq != i+1 {
			t.Errorf("package %d: N %d conn %d seq %d", i+1, p.N, p.Conn, p.Seq)
		}
	}
	if len(pkgs) != 3 || s.Conns() != 1 || strings.Join(pkgs[2].Recipients, " ") != "d@x d@x" {
		t.Errorf("recorded %+v on %d connections", pkgs, s.Conns())
	}
}

func TestQMTPScriptClose(t *testing.T) {
	s := NewQMTPServer(t)
	s.Script = func(p *QMTPPackage, i int) QMTPAction {
		if i == 1 {
			return CloseConn()
		}
		return QMTPAction{}
	}
	conn := dialRaw(t, s)
	io.WriteString(conn, pkg("\n", "m\n", "s@x", "a@x", "b@x", "c@x"))
	br := bufio.NewReader(conn)
	readReplies(t, br, 1)
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("more replies after the scripted close: %q", rest)
	}
	got := s.Packages()
	if len(got) != 1 || len(got[0].Replies) != 1 {
		t.Errorf("recorded %+v", got)
	}
}

func TestQMTPScriptStall(t *testing.T) {
	s := NewQMTPServer(t)
	s.Script = func(p *QMTPPackage, i int) QMTPAction {
		if i == 1 {
			return Stall()
		}
		return QMTPAction{}
	}
	conn := dialRaw(t, s)
	io.WriteString(conn, pkg("\n", "m\n", "s@x", "a@x", "b@x"))
	br := bufio.NewReader(conn)
	readReplies(t, br, 1)
	if _, err := s.WaitPackages(1, wait); err != nil {
		t.Fatal(err)
	}
	s.Close() // ends the stall
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("replies after the stall: %q", rest)
	}
	if _, err := s.WaitPackages(2, wait); err == nil {
		t.Error("WaitPackages on a closed server did not fail")
	}
}

func TestQMTPBeforePackage(t *testing.T) {
	whole := pkg("\n", "m\n", "s@x", "a@x")
	s := NewQMTPServer(t)
	s.BeforePackage = func(p *QMTPPackage) QMTPAction {
		switch p.Conn {
		case 1:
			return CloseAfter(int64(len(whole) - 1)) // cut one byte short
		case 2:
			return CloseAfter(int64(len(whole))) // whole, then close
		}
		return CloseConn()
	}
	for conn := 1; conn <= 3; conn++ {
		c := dialRaw(t, s)
		io.WriteString(c, whole)
		if rest := readRest(c); rest != "" {
			t.Errorf("connection %d: reply %q", conn, rest)
		}
	}
	got := s.Packages()
	if len(got) != 1 || got[0].Conn != 2 || len(got[0].Replies) != 0 {
		t.Errorf("recorded %+v; want only connection 2's package, without replies", got)
	}
}

// The default replies follow qmail-qmtpd's checks on the envelope.
func TestQMTPDefaultRefusals(t *testing.T) {
	s := NewQMTPServer(t)
	conn := dialRaw(t, s)
	long := strings.Repeat("x", 1000)
	io.WriteString(conn, pkg("\n", "m\n", long, "a@x")+pkg("\n", "m\n", "s@x", "ok@x", "nul\x00@x", long))
	got := readReplies(t, bufio.NewReader(conn), 4)
	want := []string{
		"Dunacceptable sender (#5.1.7)",
		"", // Kok..., checked below
		"Dsorry, I can't handle that recipient (#5.1.3)",
		"Dsorry, I can't handle that recipient (#5.1.3)",
	}
	for i := range want {
		if i == 1 {
			if !strings.HasPrefix(got[i], "Kok ") {
				t.Errorf("reply %d = %q", i, got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("reply %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestQMTPPackagesIsACopy(t *testing.T) {
	s := NewQMTPServer(t)
	conn := dialRaw(t, s)
	io.WriteString(conn, pkg("\n", "m\n", "s@x", "a@x"))
	readReplies(t, bufio.NewReader(conn), 1)
	got := s.Packages()
	got[0].Message[0] = 'X'
	got[0].Recipients[0] = "changed"
	if again := s.Packages(); string(again[0].Message) != "m\n" || again[0].Recipients[0] != "a@x" {
		t.Errorf("Packages shares memory with the server: %+v", again[0])
	}
	if _, err := s.WaitPackages(2, time.Millisecond); err == nil {
		t.Error("WaitPackages(2) with one package did not fail")
	}
}

func TestQMTPOnPackageBeforeReply(t *testing.T) {
	s, err := StartQMTPServer("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seen := make(chan QMTPPackage, 1)
	s.OnPackage = func(p QMTPPackage) { seen <- p }
	conn := dialRaw(t, s)
	io.WriteString(conn, pkg("\n", "m\n", "s@x", "a@x"))
	readReplies(t, bufio.NewReader(conn), 1)
	// OnPackage ran before the reply was written, so it is there already.
	select {
	case p := <-seen:
		if p.N != 1 || p.Recipients[0] != "a@x" {
			t.Errorf("OnPackage got %+v", p)
		}
	default:
		t.Error("OnPackage had not run when the reply arrived")
	}
}
