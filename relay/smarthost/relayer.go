package smarthost

import (
	"fmt"
	"time"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/qmtp"
)

// Options are the settings every protocol client shares.
type Options struct {
	Hostname string        // our name, for EHLO/LHLO
	Timeout  time.Duration // per read and per write
}

// Relayer builds the client for this smarthost.
func (u *URL) Relayer(opts Options) (relay.Relayer, error) {
	switch u.Scheme {
	case QMTP:
		return &qmtp.Relayer{Options: qmtp.Options{
			Network:   u.Network,
			Address:   u.Address(),
			IOTimeout: opts.Timeout,
			Name:      u.String(),
		}}, nil
	}
	return nil, fmt.Errorf("smarthost %s: %s delivery is not available in this release yet; use a qmtp:// smarthost", u, u.Scheme)
}
