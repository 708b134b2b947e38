//go:build !linux

package privsep

import "errors"

var errUnsupported = errors.New("a set-user-ID or set-group-ID install is supported on Linux only")

func harden() error                       { return errUnsupported }
func cloexecFrom(int) error               { return errUnsupported }
func setUmask(int)                        {}
func setIDs(_, _, _, _, _, _ int) error   { return errUnsupported }
func serviceUser(int) (string, int, bool) { return "", 0, false }
func becomeUser(_, _ int) error           { return errUnsupported }
func raiseLimits()                        {}
func finiteLimits() []string              { return nil }
