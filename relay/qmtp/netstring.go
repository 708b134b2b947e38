package qmtp

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// Netstrings (NETSTR.txt §2, repeated in QMTP.txt §6): a string of 8-bit
// bytes is encoded as [len]":"[string]",", where [len] is a nonempty
// sequence of ASCII digits without leading zeros ("0:," is the empty
// string). This file is shared by the client and by relay/relaytest's
// QMTP server.

// NetstringError reports input that is not a well-formed netstring, or one
// whose declared length is over the caller's limit.
type NetstringError struct {
	// Reason says what was wrong, e.g. "leading zero in length".
	Reason string
	// TooLong is set when the declared length is over the limit.
	TooLong bool
}

func (e *NetstringError) Error() string { return "qmtp: bad netstring: " + e.Reason }

// AppendNetstring appends the netstring encoding of s to dst.
func AppendNetstring(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	dst = append(dst, s...)
	return append(dst, ',')
}

// ReadNetstringLength reads the length prefix of a netstring, including the
// ':', and returns the length. It accepts digits only, with no leading zeros
// except for "0:" itself, and fails as soon as the length being read goes
// over max (as qmail-qmtpd's getlen does), so that a peer cannot make the
// caller wait for or allocate more than max bytes.
//
// At a clean end of input (no byte read) it returns io.EOF; an end of input
// after the first byte is io.ErrUnexpectedEOF. Other read errors (timeouts,
// resets) are returned as they are.
func ReadNetstringLength(r *bufio.Reader, max int64) (int64, error) {
	if max < 0 {
		max = 0
	}
	var n uint64
	digits := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && digits > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		switch {
		case c == ':':
			if digits == 0 {
				return 0, &NetstringError{Reason: "empty length"}
			}
			return int64(n), nil
		case c < '0' || c > '9':
			return 0, &NetstringError{Reason: fmt.Sprintf("unexpected byte %q in length", c)}
		case digits > 0 && n == 0:
			// NETSTR.txt §2: "[len] begins with <30> exactly when [string] is empty."
			return 0, &NetstringError{Reason: "leading zero in length"}
		}
		// Checking n against max/10 first keeps n*10+9 inside a uint64.
		if n > uint64(max)/10 {
			return 0, tooLong(max)
		}
		n = n*10 + uint64(c-'0')
		digits++
		if n > uint64(max) {
			return 0, tooLong(max)
		}
	}
}

func tooLong(max int64) error {
	return &NetstringError{Reason: fmt.Sprintf("length over the limit of %d bytes", max), TooLong: true}
}

// ReadNetstringEnd reads the ',' that ends a netstring.
func ReadNetstringEnd(r *bufio.Reader) error {
	c, err := r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if c != ',' {
		return &NetstringError{Reason: fmt.Sprintf("%q where the closing ',' should be", c)}
	}
	return nil
}

// ReadNetstring reads one whole netstring of at most max bytes and returns
// its contents. Errors are as for ReadNetstringLength; an end of input after
// the length is io.ErrUnexpectedEOF.
func ReadNetstring(r *bufio.Reader, max int64) ([]byte, error) {
	n, err := ReadNetstringLength(r, max)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if err := ReadNetstringEnd(r); err != nil {
		return nil, err
	}
	return b, nil
}
