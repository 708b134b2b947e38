package qmtp

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestAppendNetstring(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "0:,"},
		{"hello world!", "12:hello world!,"}, // NETSTR.txt §2
		{"God-DSN-37@heaven.af.mil", "24:God-DSN-37@heaven.af.mil,"},
		{"26:djb@silverton.berkeley.edu,", "30:26:djb@silverton.berkeley.edu,,"},
		{strings.Repeat("x", 1000), "1000:" + strings.Repeat("x", 1000) + ","},
	} {
		if got := string(AppendNetstring(nil, tc.in)); got != tc.want {
			t.Errorf("AppendNetstring(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := string(AppendNetstring([]byte("pre"), "a")); got != "pre1:a," {
		t.Errorf("AppendNetstring appends to %q, got %q", "pre", got)
	}
}

func TestReadNetstring(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int64
		want     string
		wantErr  error // sentinel for errors.Is; nil with bad means *NetstringError
		bad      bool
		tooLong  bool
	}{
		{name: "empty string", in: "0:,", max: 10, want: ""},
		{name: "hello", in: "12:hello world!,", max: 100, want: "hello world!"},
		{name: "exactly max", in: "5:abcde,", max: 5, want: "abcde"},
		{name: "binary", in: "3:\x00:,,", max: 5, want: "\x00:,"},
		{name: "trailing data left", in: "1:a,1:b,", max: 5, want: "a"},
		{name: "clean eof", in: "", max: 5, wantErr: io.EOF},
		{name: "eof in length", in: "12", max: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "eof in data", in: "5:abc", max: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "eof before comma", in: "3:abc", max: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "leading zero", in: "05:abcde,", max: 100, bad: true},
		{name: "double zero", in: "00:,", max: 100, bad: true},
		{name: "empty length", in: ":,", max: 100, bad: true},
		{name: "sign", in: "+1:a,", max: 100, bad: true},
		{name: "space", in: " 1:a,", max: 100, bad: true},
		{name: "missing comma", in: "3:abc;", max: 100, bad: true},
		{name: "length too short", in: "2:abc,", max: 100, bad: true},
		{name: "over max", in: "6:abcdef,", max: 5, bad: true, tooLong: true},
		{name: "over max while reading digits", in: "99999999999999999999999999:", max: 1 << 20, bad: true, tooLong: true},
		{name: "huge max does not overflow", in: "99999999999999999999999999:", max: 1<<63 - 1, bad: true, tooLong: true},
		{name: "zero max", in: "1:a,", max: 0, bad: true, tooLong: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadNetstring(bufio.NewReader(strings.NewReader(tc.in)), tc.max)
			var ne *NetstringError
			switch {
			case tc.wantErr != nil:
				if err != tc.wantErr {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			case tc.bad:
				if !errors.As(err, &ne) {
					t.Fatalf("err = %v, want a *NetstringError", err)
				}
				if ne.TooLong != tc.tooLong {
					t.Errorf("TooLong = %v, want %v (%v)", ne.TooLong, tc.tooLong, err)
				}
				if !strings.HasPrefix(err.Error(), "qmtp: ") {
					t.Errorf("error %q lacks the qmtp: prefix", err)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if string(got) != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

// A reader that fails with a non-EOF error must see that error, unchanged,
// so that callers can tell a timeout from a close.
func TestReadNetstringPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := bufio.NewReader(io.MultiReader(strings.NewReader("3:a"), errReader{boom}))
	if _, err := ReadNetstring(r, 10); err != boom {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// The streaming parts let a reader handle a long netstring without holding
// it: length, then the bytes by the caller, then the comma.
func TestReadNetstringParts(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("4:abcd,x"))
	n, err := ReadNetstringLength(r, 10)
	if err != nil || n != 4 {
		t.Fatalf("ReadNetstringLength = %d, %v", n, err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "abcd" {
		t.Fatalf("body %q, %v", buf, err)
	}
	if err := ReadNetstringEnd(r); err != nil {
		t.Fatal(err)
	}
	if err := ReadNetstringEnd(r); err == nil {
		t.Fatal("ReadNetstringEnd accepted 'x'")
	}
	if err := ReadNetstringEnd(r); err != io.ErrUnexpectedEOF {
		t.Fatalf("ReadNetstringEnd at EOF = %v", err)
	}
}
