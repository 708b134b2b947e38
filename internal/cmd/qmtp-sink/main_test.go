package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/qmtp"
)

func TestSink(t *testing.T) {
	for _, tc := range []struct {
		reply string
		class relay.Class
	}{{"K", relay.Delivered}, {"Z", relay.Deferred}, {"D", relay.Failed}} {
		t.Run(tc.reply, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, pw, "127.0.0.1:0", dir, tc.reply)
				pw.Close()
			}()
			addr, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, pr)

			body := "Subject: demo\n\nhello\n"
			msg := &relay.Message{Data: strings.NewReader(body), Size: int64(len(body))}
			r := &qmtp.Relayer{Options: qmtp.Options{Address: strings.TrimSpace(addr)}}
			res, err := r.Relay(context.Background(), &relay.Envelope{Recipients: []string{"a@x", "b@y"}}, msg)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Class != tc.class {
					t.Errorf("%s: %v %q", r.Recipient, r.Class, r.Text)
				}
			}
			// The files are written before the reply is sent.
			env, err := os.ReadFile(filepath.Join(dir, "0001.env"))
			if err != nil {
				t.Fatal(err)
			}
			if string(env) != "sender <>\nrcpt a@x\nrcpt b@y\n" {
				t.Errorf("0001.env = %q", env)
			}
			if got, err := os.ReadFile(filepath.Join(dir, "0001.msg")); err != nil || string(got) != body {
				t.Errorf("0001.msg = %q, %v", got, err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

func TestSinkNeedsADirectory(t *testing.T) {
	err := run(context.Background(), io.Discard, "127.0.0.1:0", filepath.Join(t.TempDir(), "missing"), "K")
	if err == nil {
		t.Fatal("run accepted a missing directory")
	}
}
