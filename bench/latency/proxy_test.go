package latency

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestProxyForwards checks that bytes pass unchanged both ways, that a
// half-close travels, and that Close ends everything. It makes no timing
// assertion: those belong to `make bench`, never to `make check`.
func TestProxyForwards(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// An echo server that answers with what it read, upper-cased by a
	// fixed offset, once the client half-closed.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("hello\n"))
				data, _ := io.ReadAll(c)
				c.Write(bytes.ToUpper(data))
			}()
		}
	}()
	for _, rtt := range []time.Duration{0, 2 * time.Millisecond} {
		p, err := Start("tcp", "127.0.0.1:0", "tcp", ln.Addr().String(), rtt)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := bytes.Repeat([]byte("abcdefghij"), 10000) // several chunks
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte("hello\n"), bytes.ToUpper(msg)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("rtt %v: got %d bytes, want %d", rtt, len(got), len(want))
			}
			c.Close()
		}
		if n := p.Connections(); n != 3 {
			t.Errorf("Connections() = %d, want 3", n)
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestProxyClose checks that Close returns while a connection is open.
func TestProxyClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	p, err := Start("tcp", "127.0.0.1:0", "tcp", ln.Addr().String(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
