package main

import "github.com/relaymail/relaymail/relay"

// sysexits.h values; sendmail(8) EXIT STATUS documents each one.
const (
	exOK          = 0
	exUsage       = 64 // bad flags, no recipients
	exDataErr     = 65 // unusable input: bad address, header too large
	exNoUser      = 67 // the smarthost permanently rejected a recipient
	exUnavailable = 69 // the smarthost permanently rejected the whole message
	exSoftware    = 70 // internal error
	exOSErr       = 71 // the privileges could not be set up safely
	exCantCreat   = 73 // the spool file cannot be created
	exIOErr       = 74 // standard input cannot be read
	exTempFail    = 75 // a temporary failure, and nothing was kept
	exNoPerm      = 77 // not permitted
	exConfig      = 78 // configuration error
)

// resultsExit is the one place where delivery results become an exit status.
//
// A permanent failure outranks a temporary one: a rejected recipient needs a
// person to act, whatever happened to the others, and the stderr lines say
// which recipient had which outcome. Among permanent failures, a rejected
// recipient (67) outranks a rejected message (69) because it is the more
// specific report.
//
// kept says whether the deferred recipients were committed to the queue:
// then they are safe and count as success (0), as in every MTA; without a
// queue they exit 75.
func resultsExit(results []relay.Result, kept bool) int {
	var rcptFailed, msgFailed, deferred bool
	for _, r := range results {
		switch r.Class {
		case relay.Failed:
			if r.Scope == relay.MessageScope {
				msgFailed = true
			} else {
				rcptFailed = true
			}
		case relay.Deferred:
			deferred = true
		}
	}
	switch {
	case rcptFailed:
		return exNoUser
	case msgFailed:
		return exUnavailable
	case deferred && !kept:
		return exTempFail
	}
	return exOK
}
