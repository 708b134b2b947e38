package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// lateSignalsAfter is how long a delivery runs before SIGTERM, SIGINT and
// SIGHUP are caught (lateSignalContext).
const lateSignalsAfter = time.Second

// lateSignalContext is signal.NotifyContext for SIGTERM, SIGINT and SIGHUP,
// armed only after delay. A delivery still running then is canceled by the
// signal and queues what it has not delivered, as with NotifyContext. A
// signal before that ends the process by its default action, as a SIGKILL
// at the same moment would, which the queue's commit protocol covers
// (relay/queue/doc.go, state S0): sendmail has not exited 0, so the caller
// knows the message was not accepted, and the file left in tmp/ is removed
// later. (Should the smarthost have taken the message just before, the
// caller's retry sends it twice: a duplicate, never a loss.)
//
// Why: os/signal starts a thread of its own to receive signals, and its
// Stop waits for that thread. Together they cost 0.4 ms of a 2.8 ms
// delivery to a local smarthost, and 0.6 ms when the machine was idle just
// before, more than any step of the delivery itself (bench/README.md). A
// delivery that ends within delay pays nothing for them.
func lateSignalContext(parent context.Context, delay time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	var (
		mu      sync.Mutex
		ch      chan os.Signal
		stopped bool
	)
	t := time.AfterFunc(delay, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		ch = make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		go func() {
			select {
			case <-ch:
				cancel()
			case <-ctx.Done():
			}
		}()
	})
	return ctx, func() {
		t.Stop()
		mu.Lock()
		stopped = true
		if ch != nil {
			signal.Stop(ch)
		}
		mu.Unlock()
		cancel()
	}
}
