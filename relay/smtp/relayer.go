package smtp

import (
	"context"
	"errors"

	"github.com/relaymail/relaymail/relay"
)

// Relayer delivers each message over a new connection: Dial, Send, Quit.
type Relayer struct{ Options Options }

var _ relay.Relayer = (*Relayer)(nil)

// Relay implements relay.Relayer. When the session cannot be set up, every
// recipient gets the class of the error: Deferred for a connection, TLS or
// 4xx failure, Failed (MessageScope) for a permanent one such as a refused
// password (535), with the server's reply when there was one.
func (r *Relayer) Relay(ctx context.Context, env *relay.Envelope, msg *relay.Message) ([]relay.Result, error) {
	opts := r.Options.withDefaults()
	p := protoName(opts.LMTP)
	if env == nil {
		return nil, relay.Permanentf("%s: not sent: no envelope", p)
	}
	if len(env.Recipients) == 0 {
		return nil, relay.Permanentf("%s: not sent: no recipients", p)
	}
	if msg == nil || msg.Data == nil {
		err := relay.Permanentf("%s: no message", p)
		return resultsFor(env.Recipients, opts.Name, err, relay.Deferred), err
	}
	c, err := Dial(ctx, opts)
	if err != nil {
		return resultsFor(env.Recipients, opts.Name, err, relay.ClassOf(err)), err
	}
	defer c.Close()
	res, err := c.Send(ctx, env, msg)
	c.Quit()
	return res, err
}

// String names the server, as Options.Name does.
func (r *Relayer) String() string { return r.Options.withDefaults().Name }

// resultsFor gives every recipient the outcome of a session error.
func resultsFor(rcpts []string, host string, err error, cl relay.Class) []relay.Result {
	res := relay.Result{Class: cl, Host: host, Text: err.Error()}
	if cl == relay.Failed {
		res.Scope = relay.MessageScope
	}
	// The text is the whole explanation ("smtp: authentication failed:
	// ... rejected user ...'s password: 535 5.7.8 ..."), more useful than
	// the bare reply text; the code comes from the reply.
	var re *ReplyError
	if errors.As(err, &re) {
		res.Code, res.Enhanced = re.Code, re.Enhanced
	}
	out := make([]relay.Result, len(rcpts))
	for i, rc := range rcpts {
		out[i] = res
		out[i].Recipient = rc
	}
	return out
}

var _ relay.SessionRelayer = (*Relayer)(nil)

// Open connects and greets (TLS, AUTH included) and returns a session that
// sends message after message on the connection, with RSET in between.
func (r *Relayer) Open(ctx context.Context) (relay.Session, error) {
	c, err := Dial(ctx, r.Options.withDefaults())
	if err != nil {
		return nil, err
	}
	return &session{c: c}, nil
}

type session struct{ c *Client }

func (s *session) Send(ctx context.Context, env *relay.Envelope, msg *relay.Message) ([]relay.Result, error) {
	return s.c.Send(ctx, env, msg)
}

// Close says QUIT; an error then changes nothing that was delivered.
func (s *session) Close() error {
	s.c.Quit()
	return s.c.Close()
}
