package relay

import (
	"context"
	"errors"
)

// Deliver sends the message through each relayer in turn, in order, and
// returns one result per envelope recipient in envelope order.
//
// The next relayer is tried only with the recipients that are still Deferred,
// and only when the previous attempt failed as a whole: a session error
// (connection refused, dropped, timed out, garbled) or a deferral of every
// recipient it was given. A recipient that was Delivered or Failed is final
// and is never sent again. The returned error joins the session errors of the
// relayers that were tried, for logging; the results are authoritative.
func Deliver(ctx context.Context, relayers []Relayer, env *Envelope, msg *Message) ([]Result, error) {
	results := make([]Result, len(env.Recipients))
	for i, r := range env.Recipients {
		results[i] = Result{Recipient: r, Class: Deferred, Text: "no smarthost was tried"}
	}
	pending := make([]int, len(env.Recipients)) // indices into results
	for i := range pending {
		pending[i] = i
	}
	var errs []error
	for _, rl := range relayers {
		if len(pending) == 0 || ctx.Err() != nil {
			break
		}
		sub := *env
		sub.Recipients = make([]string, len(pending))
		for j, idx := range pending {
			sub.Recipients[j] = env.Recipients[idx]
		}
		got, err := rl.Relay(ctx, &sub, msg)
		if err != nil {
			errs = append(errs, err)
		}
		wholeDeferral := true
		var still []int
		for j, idx := range pending {
			res := Result{Recipient: env.Recipients[idx], Class: Deferred, Host: rl.String(),
				Text: "no reply for this recipient"}
			if j < len(got) {
				res = got[j]
				res.Recipient = env.Recipients[idx]
				if res.Host == "" {
					res.Host = rl.String()
				}
			}
			if res.Class != Deferred {
				wholeDeferral = false
			} else {
				still = append(still, idx)
			}
			results[idx] = res
		}
		pending = still
		if err == nil && !wholeDeferral {
			break
		}
	}
	if ctx.Err() != nil && len(pending) > 0 {
		errs = append(errs, ctx.Err())
	}
	return results, errors.Join(errs...)
}
