package queue

import (
	"fmt"
	"strings"

	"github.com/relaymail/relaymail/relay/inject"
)

// checkAddress applies to a spooled address the rules intake applied when
// the message came in, so that a planted or damaged envelope cannot put on
// the wire what sendmail would have refused.
func checkAddress(addr string) error {
	if err := inject.CheckAddress(addr); err != nil {
		return fmt.Errorf("address %w", err)
	}
	return nil
}

// domainOf returns the domain of an address, for -qR.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}
