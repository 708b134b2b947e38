package smtp

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge the next segments that arrive on c at
// once instead of after the delayed-ACK timer (TCP_QUICKACK, tcp(7)). The
// kernel leaves quick-ACK mode again by itself, so it is asked before every
// read.
//
// Servers that answer in more than one write while Nagle's algorithm is on
// hold the second write until the first is acknowledged. Postfix does so
// after STARTTLS: OpenSSL writes a TLS 1.3 NewSessionTicket, then smtpd its
// EHLO reply; and under TLS it writes the replies to a pipelined group one
// by one. With a delayed ACK every such hold costs 40 ms (a STARTTLS session
// to Postfix on loopback took 53 ms for one recipient and 95 ms for ten,
// with this 8 ms each; bench/README.md). An immediate ACK makes it cost the
// network's round trip at most.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		// An error changes nothing but the timing: ignored.
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
