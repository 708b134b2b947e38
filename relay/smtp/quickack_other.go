//go:build !linux

package smtp

import "net"

// quickAck is Linux's TCP_QUICKACK (quickack_linux.go); elsewhere the
// kernel's own acknowledgement policy stands.
func quickAck(net.Conn) {}
