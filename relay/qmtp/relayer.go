package qmtp

import (
	"context"
	"errors"
	"strings"

	"github.com/relaymail/relaymail/relay"
)

// Relayer delivers each message over a new QMTP connection: dial, send one
// package, close.
type Relayer struct{ Options Options }

var _ relay.Relayer = (*Relayer)(nil)

// Relay implements relay.Relayer. A message without recipients is refused
// before any connection is made.
func (r *Relayer) Relay(ctx context.Context, env *relay.Envelope, msg *relay.Message) ([]relay.Result, error) {
	opts := r.Options.withDefaults()
	pkgs := []Package{{Envelope: env, Message: msg}}
	if err := validate(pkgs); err != nil {
		var results []relay.Result
		if env != nil {
			results = deferAll(env.Recipients, opts.Name, "qmtp: not sent: "+strings.TrimPrefix(err.Error(), "qmtp: "))
		}
		return results, relay.Permanent("", err)
	}
	c, err := Dial(ctx, opts)
	if err != nil {
		var se *sessionError
		text := "qmtp: cannot connect"
		if errors.As(err, &se) {
			text = "qmtp: " + se.detail
		}
		return deferAll(env.Recipients, opts.Name, text), err
	}
	defer c.Close()
	return c.Send(ctx, env, msg)
}

// String names the server, as Options.Name does.
func (r *Relayer) String() string { return r.Options.withDefaults().Name }

func deferAll(rcpts []string, host, text string) []relay.Result {
	results := make([]relay.Result, len(rcpts))
	for i, rc := range rcpts {
		results[i] = relay.Result{Recipient: rc, Class: relay.Deferred, Host: host, Text: text}
	}
	return results
}

var _ relay.SessionRelayer = (*Relayer)(nil)

// Open connects and returns a session. Its SendBatch pipelines the packages
// (QMTP.txt §2), so a queue run sends a whole backlog in one stream.
func (r *Relayer) Open(ctx context.Context) (relay.Session, error) {
	c, err := Dial(ctx, r.Options.withDefaults())
	if err != nil {
		return nil, err
	}
	return &relaySession{c: c}, nil
}

type relaySession struct{ c *Client }

var _ relay.BatchSender = (*relaySession)(nil)

func (s *relaySession) Send(ctx context.Context, env *relay.Envelope, msg *relay.Message) ([]relay.Result, error) {
	return s.c.Send(ctx, env, msg)
}

func (s *relaySession) SendBatch(ctx context.Context, batch []relay.Batch) ([][]relay.Result, error) {
	pkgs := make([]Package, len(batch))
	for i, b := range batch {
		pkgs[i] = Package{Envelope: b.Envelope, Message: b.Message}
	}
	return s.c.SendAll(ctx, pkgs)
}

func (s *relaySession) Close() error { return s.c.Close() }
