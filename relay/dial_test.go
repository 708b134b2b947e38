package relay

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// A smarthost under .invalid fails in relaymail itself, as "no such host",
// without a DNS query: the error is relaymail's, not the resolver's (which
// would name the server it asked), and it is a deferral.
func TestDialInvalid(t *testing.T) {
	for _, addr := range []string{"relay.invalid:25", "INVALID:587", "a.b.Invalid.:465"} {
		start := time.Now()
		_, err := Dial(context.Background(), "tcp", addr, 5*time.Second)
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound || !strings.Contains(err.Error(), "RFC 6761") {
			t.Errorf("%s: %v", addr, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s took %v", addr, d)
		}
		if ClassOf(Temporary("smtp", err)) != Deferred {
			t.Errorf("%s: not a deferral", addr)
		}
	}
	for _, host := range []string{"invalid.example.com", "notinvalid", "example.com"} {
		if IsInvalidName(host) {
			t.Errorf("IsInvalidName(%q)", host)
		}
	}
	// Other names are dialled as ever.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := Dial(context.Background(), "tcp", l.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
