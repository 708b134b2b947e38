package qmtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// FuzzNetstring decodes netstrings one after another from arbitrary input.
// Every netstring it accepts must re-encode to exactly the bytes it consumed
// and respect the limit; anything else must be a clean error.
func FuzzNetstring(f *testing.F) {
	f.Add([]byte("12:hello world!,"), uint16(100))
	f.Add([]byte("0:,0:,"), uint16(0))
	f.Add([]byte("05:abcde,"), uint16(100))
	f.Add([]byte("3:abc;"), uint16(100))
	f.Add([]byte("99999999999999999999:"), uint16(65535))
	f.Add([]byte("3:a"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		r := bufio.NewReader(bytes.NewReader(data))
		off := 0
		for {
			s, err := ReadNetstring(r, int64(max))
			if err != nil {
				var ne *NetstringError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &ne) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				if err == io.EOF && off != len(data) {
					t.Fatalf("io.EOF at offset %d of %d", off, len(data))
				}
				return
			}
			if len(s) > int(max) {
				t.Fatalf("netstring of %d bytes over the limit %d", len(s), max)
			}
			enc := AppendNetstring(nil, string(s))
			if !bytes.HasPrefix(data[off:], enc) {
				t.Fatalf("decoded %q at offset %d, but the input there is %q", s, off, data[off:])
			}
			off += len(enc)
		}
	})
}

// scriptConn is a net.Conn that plays a fixed reply stream and swallows
// what the client writes.
type scriptConn struct {
	r io.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c *scriptConn) Close() error                       { return nil }
func (c *scriptConn) LocalAddr() net.Addr                { return nil }
func (c *scriptConn) RemoteAddr() net.Addr               { return nil }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// refReplies is an independent, simple reading of a reply stream: for each
// of n positions, the class of a well-formed K, Z or D reply, or ok=false
// from the first position that has none.
func refReplies(data []byte, n int) (classes []relay.Class, valid int) {
	for valid < n {
		i := bytes.IndexByte(data, ':')
		if i <= 0 || i > 7 { // 65536 has 5 digits; more digits means too long or junk
			return classes, valid
		}
		digits := string(data[:i])
		if digits[0] == '0' && digits != "0" {
			return classes, valid
		}
		l, err := strconv.Atoi(digits)
		if err != nil || l < 0 || l > MaxReply || digits[0] == '+' || digits[0] == '-' {
			return classes, valid
		}
		rest := data[i+1:]
		if len(rest) < l+1 || rest[l] != ',' || l == 0 {
			return classes, valid
		}
		switch rest[0] {
		case 'K':
			classes = append(classes, relay.Delivered)
		case 'Z':
			classes = append(classes, relay.Deferred)
		case 'D':
			classes = append(classes, relay.Failed)
		default:
			return classes, valid
		}
		valid++
		data = rest[l+1:]
	}
	return classes, valid
}

// FuzzReplies feeds an arbitrary reply stream to a client sending one
// package to n recipients. It must never panic, must return exactly n
// results, and must never report Delivered (or any final class) for a
// position without a well-formed reply there and before it.
func FuzzReplies(f *testing.F) {
	f.Add([]byte("3:Kok,"), uint8(1))
	f.Add([]byte("3:Kok,6:Zlater,4:Dno.,"), uint8(3))
	f.Add([]byte("3:Kok,"), uint8(3))
	f.Add([]byte("3:Kok,5:Xjunk,3:Kok,"), uint8(3))
	f.Add([]byte("03:Kok,"), uint8(1))
	f.Add([]byte("0:,"), uint8(1))
	f.Add([]byte("70000:K"), uint8(2))
	f.Add([]byte("21:Kok 838640135 qp 1390,"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, n8 uint8) {
		n := int(n8%16) + 1
		rcpts := make([]string, n)
		for i := range rcpts {
			rcpts[i] = "r" + strconv.Itoa(i) + "@x"
		}
		c := NewClient(&scriptConn{r: bytes.NewReader(data)}, Options{Name: "fuzz"})
		res, err := c.Send(context.Background(), &relay.Envelope{Recipients: rcpts}, message("m\n"))
		if len(res) != n {
			t.Fatalf("%d results for %d recipients", len(res), n)
		}
		want, valid := refReplies(data, n)
		for i, r := range res {
			if r.Recipient != rcpts[i] || r.Host != "fuzz" {
				t.Fatalf("result %d: %+v", i, r)
			}
			if i >= valid {
				if r.Class != relay.Deferred {
					t.Fatalf("result %d is %v without a well-formed reply: %q", i, r.Class, data)
				}
				if r.Text == "" {
					t.Fatalf("result %d deferred without a reason", i)
				}
				continue
			}
			if r.Class != want[i] {
				t.Fatalf("result %d is %v, want %v: %q", i, r.Class, want[i], data)
			}
		}
		if (valid < n) != (err != nil) {
			t.Fatalf("%d of %d replies well-formed, but err = %v", valid, n, err)
		}
		if err != nil && relay.ClassOf(err) != relay.Deferred {
			t.Fatalf("error not temporary: %v", err)
		}
	})
}
