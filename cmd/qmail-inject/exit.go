package main

import (
	"errors"

	"github.com/relaymail/relaymail/internal/submit"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/inject"
)

// qmail-inject's exit codes (qmail-inject(8)): 0, 100 for a usage error or
// a permanent failure, 111 for a temporary one.
const (
	exOK   = 0
	exPerm = 100
	exTemp = 111
)

// configError is a configuration (or alias file) that cannot be used.
// qmail-inject exits 111 when it cannot read its control files: the mail
// is not lost, and the caller may try again once the file is fixed.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// tempError is any other failure that trying again later may cure.
type tempError struct{ err error }

func (e *tempError) Error() string { return e.err.Error() }
func (e *tempError) Unwrap() error { return e.err }

// exitStatus is the one place where the outcome of a run becomes
// qmail-inject's exit status. Without an error: a permanent rejection of
// any recipient is 100, a deferral that was not queued is 111, and mail
// that was delivered or queued is 0. Unknown errors are temporary: a relay
// never reports a surprise as permanent.
func exitStatus(o submit.Outcome, err error) int {
	var ue *usageError
	var ie *inject.Error
	var se *submit.Error
	switch {
	case err == nil:
		code := exOK
		for _, r := range o.Results {
			switch r.Class {
			case relay.Failed:
				return exPerm
			case relay.Deferred:
				if !o.Kept {
					code = exTemp
				}
			}
		}
		return code
	case errors.As(err, &ue):
		return exPerm
	case errors.As(err, &ie):
		switch ie.Kind {
		case inject.KindUsage, inject.KindData:
			// No recipients, a bad address, a header too large: the same
			// input fails the same way again.
			return exPerm
		}
		return exTemp
	case errors.As(err, &se):
		return exTemp
	}
	return exTemp
}
