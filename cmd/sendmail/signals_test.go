package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestLateSignalContext checks that, once armed, SIGHUP cancels the
// context, and that stop cancels it too.
func TestLateSignalContext(t *testing.T) {
	// Our own registration keeps a SIGHUP from ending the test binary
	// before lateSignalContext has armed its own.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	ctx, stop := lateSignalContext(context.Background(), 0)
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() == nil {
		t.Fatal("SIGHUP did not cancel the armed context")
	}

	ctx2, stop2 := lateSignalContext(context.Background(), time.Hour)
	if ctx2.Err() != nil {
		t.Fatal("canceled before any signal")
	}
	stop2()
	if ctx2.Err() == nil {
		t.Error("stop did not cancel the context")
	}
}
