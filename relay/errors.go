package relay

import (
	"errors"
	"fmt"
)

// Error is an error that carries its class. Protocol clients wrap every
// session-level failure in one, so that callers never match on strings.
type Error struct {
	Class Class // Deferred or Failed
	Op    string
	Err   error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary wraps err as a temporary (Deferred) failure.
func Temporary(op string, err error) error { return &Error{Class: Deferred, Op: op, Err: err} }

// Permanent wraps err as a permanent (Failed) failure.
func Permanent(op string, err error) error { return &Error{Class: Failed, Op: op, Err: err} }

// Temporaryf and Permanentf build classified errors from a format.
func Temporaryf(format string, a ...any) error {
	return &Error{Class: Deferred, Err: fmt.Errorf(format, a...)}
}

func Permanentf(format string, a ...any) error {
	return &Error{Class: Failed, Err: fmt.Errorf(format, a...)}
}

// ClassOf returns the class an error carries. An unclassified error is
// Deferred: a relay never drops mail because of a surprise.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Deferred
}

// IsPermanent reports whether err is classified as a permanent failure.
func IsPermanent(err error) bool { return err != nil && ClassOf(err) == Failed }
