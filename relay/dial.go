package relay

import (
	"context"
	"net"
	"strings"
	"time"
)

// Dial connects to address over network ("tcp" or "unix") within timeout,
// as net.Dialer does, with one rule of its own: a host name in the
// special-use domain "invalid" fails at once with a "no such host"
// *net.DNSError and asks no DNS server (RFC 6761 §6.4: resolution APIs
// "SHOULD always return immediate negative responses" for it; Go's
// resolver does not). Callers classify the failure like any other DNS
// failure: a deferral, never a bounce.
func Dial(ctx context.Context, network, address string, timeout time.Duration) (net.Conn, error) {
	if network == "tcp" || network == "tcp4" || network == "tcp6" {
		if host, _, err := net.SplitHostPort(address); err == nil && IsInvalidName(host) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{
				Err: "no such host (the domain invalid never resolves, RFC 6761)", Name: host, IsNotFound: true}}
		}
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, network, address)
}

// IsInvalidName reports whether host is "invalid" or a name under it,
// without regard to case or a trailing dot.
func IsInvalidName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "invalid" || strings.HasSuffix(h, ".invalid")
}
