package queue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaymail/relaymail/relay"
)

// RunOptions choose what a queue run delivers, and through which
// smarthosts.
type RunOptions struct {
	// Relayers are the smarthosts in failover order. With none, nothing
	// can be delivered: Run says so and changes nothing.
	Relayers []relay.Relayer
	// Domain (sendmail -qR): only messages with a pending recipient in this
	// domain, compared without regard to case. A leading "@" is ignored.
	Domain string
	// ID (sendmail -qI): only this message; an exact queue ID or a prefix
	// that only one queued message has, without regard to case.
	ID string
	// Force ignores the retry schedule (sendmail -q, a flush). Without it
	// only messages that are due are tried (the -q5m daemon).
	Force bool
}

// Stats counts what a run did.
type Stats struct {
	// Messages taken up: locked and read, whether tried, expired or
	// finished.
	Messages int
	// Recipients delivered, still pending after an attempt, and failed for
	// good (expired recipients included).
	Delivered, Deferred, Failed int
	// Bounced counts the notifications queued; Expired the messages given
	// up on because of their age.
	Bounced, Expired int
	// Connections opened to smarthosts (each Relay call of a Relayer that
	// cannot keep a session counts as one).
	Connections int
	// Skipped counts the messages another runner held.
	Skipped int
}

// staleAge is how old a file in tmp/, or a msg/ file without an envelope,
// must be before a run removes it; see "Crashes" in doc.go.
const staleAge = 36 * time.Hour

// batchSize bounds how many messages a run holds locked at once, and so
// how many packages go into one QMTP pipeline.
const batchSize = 100

// maxHeaderCopy bounds the original header copied into a notification.
const maxHeaderCopy = 1 << 20

type runner struct {
	q     *Queue
	ro    RunOptions
	start time.Time
	st    Stats
	// One lazily opened session per smarthost, reused for message after
	// message; down[i] holds the error of a smarthost that could not be
	// reached, which is then not tried again in this run.
	sess    []relay.Session
	down    []error
	bounces []string // IDs of the notifications queued by this run
	errs    []error
	// finished holds the messages delivered to every recipient whose
	// env/ID is removed but not yet fsynced away; they keep their lock
	// until settleFinished (doc.go, "Delivery and per-recipient state").
	finished []*job
}

// job is one locked message during a run.
type job struct {
	e     *Entry
	f     *os.File // msg/ID, open read-only; its flock is the message's lock
	msg   relay.Message
	tried []int // the recipients this attempt is for (indices into e.Recipients)
	out   []int // those of them still Deferred, for the next smarthost
	res   map[int]relay.Result
	done  bool // lock released, whatever became of the state
}

func (j *job) release() {
	j.done = true
	if j.f != nil {
		j.f.Close() // the last descriptor of the open file: the flock goes with it
	}
}

// envelope is the message's envelope for the recipients still to decide.
func (j *job) envelope() *relay.Envelope {
	env := &relay.Envelope{Sender: j.e.Sender, DSN: j.e.DSN, Body: j.e.Body, SMTPUTF8: j.e.SMTPUTF8}
	for _, idx := range j.out {
		env.Recipients = append(env.Recipients, j.e.Recipients[idx].Addr)
	}
	return env
}

// apply records what host answered for j.out (got in the same order) and
// reports whether j goes on to the next smarthost. The rule is
// relay.Deliver's: only the recipients still Deferred go on, and only when
// the attempt failed as a whole, by a session error or by deferring every
// recipient it was given. A missing result is a deferral (relay.Relayer's
// contract: unknown is temporary).
func (j *job) apply(host string, got []relay.Result, err error) bool {
	fallback := "no reply for this recipient"
	if err != nil {
		fallback = err.Error()
	}
	whole := true
	var still []int
	for k, idx := range j.out {
		res := relay.Result{Class: relay.Deferred, Host: host, Text: fallback}
		if k < len(got) {
			res = got[k]
			if res.Host == "" {
				res.Host = host
			}
			if res.Class != relay.Delivered && res.Class != relay.Failed {
				res.Class = relay.Deferred
			}
		}
		res.Recipient = j.e.Recipients[idx].Addr
		if res.Class == relay.Deferred {
			still = append(still, idx)
		} else {
			whole = false
		}
		j.res[idx] = res
	}
	j.out = still
	return len(still) > 0 && (err != nil || whole)
}

// Run delivers what is queued: it removes stale leftovers of crashes,
// chooses the messages (ro's filters, the retry schedule), and tries each
// one through the smarthosts in order, over as few connections as it can.
// After each message's attempt its new state is on disk before its lock is
// released; a message that is done leaves the queue, to failed/ with a
// bounce when a recipient failed. Notifications queued by the run are sent
// in the same run.
//
// When ctx is canceled Run starts no further message, abandons the
// deliveries in flight without recording them (they are sent again by the
// next run: a duplicate at worst, never a loss) and returns ctx.Err().
// Otherwise the error, if any, joins what went wrong with single messages
// (an unreadable envelope moved to failed/, a state that could not be
// written); the run went on regardless.
func (q *Queue) Run(ctx context.Context, ro RunOptions) (Stats, error) {
	if len(ro.Relayers) == 0 {
		return Stats{}, errors.New("queue: no smarthost is configured, so nothing can be delivered (the queue is unchanged)")
	}
	ro.Domain = strings.TrimPrefix(ro.Domain, "@")
	r := &runner{
		q:     q,
		ro:    ro,
		start: q.opts.Now(),
		sess:  make([]relay.Session, len(ro.Relayers)),
		down:  make([]error, len(ro.Relayers)),
	}
	defer r.closeSessions()
	defer r.settleFinished()
	r.cleanup()
	ids, err := r.choose()
	if err != nil {
		return r.st, err
	}
	r.process(ctx, ids, true)
	// A notification is due at once; sending it now spares the sender a
	// wait for the next run. Notifications are never bounced, so this ends.
	for len(r.bounces) > 0 && ctx.Err() == nil {
		ids := r.bounces
		r.bounces = nil
		r.process(ctx, ids, false)
	}
	if err := ctx.Err(); err != nil {
		return r.st, err
	}
	return r.st, errors.Join(r.errs...)
}

func (r *runner) fail(err error) { r.errs = append(r.errs, err) }

// failf records an error of a spool file: an *UntrustedError as it is
// (it names the file), anything else with the "queue: " prefix. Every
// such error is also logged, so that a planted file shows in the mail
// log of a run nobody watches.
func (r *runner) failf(err error) {
	var ue *UntrustedError
	if !errors.As(err, &ue) {
		err = fmt.Errorf("queue: %w", err)
	} else {
		r.q.logf("warning: %v", err)
	}
	r.fail(err)
}

func (r *runner) closeSessions() {
	for i := range r.sess {
		r.closeSession(i)
	}
}

func (r *runner) closeSession(i int) {
	if r.sess[i] != nil {
		r.sess[i].Close()
		r.sess[i] = nil
	}
}

// cleanup removes what crashes left behind (doc.go, "Crashes"): files in
// tmp/, and msg/ files without an envelope, once they are staleAge old.
// failed/ is never touched.
func (r *runner) cleanup() {
	q := r.q
	cutoff := r.start.Add(-staleAge)
	stale := func(de fs.DirEntry) bool {
		if !de.Type().IsRegular() {
			return false
		}
		fi, err := de.Info()
		return err == nil && fi.ModTime().Before(cutoff)
	}
	des, err := os.ReadDir(q.path(dirTmp))
	if err != nil {
		r.fail(fmt.Errorf("queue: cannot clean up: %w", err))
	}
	for _, de := range des {
		if stale(de) {
			p := q.path(dirTmp, de.Name())
			if err := os.Remove(p); err == nil {
				q.logf("removed %s, left by an intake or a run that did not finish", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				r.fail(fmt.Errorf("queue: cannot clean up: %w", err))
			}
		}
	}
	des, err = os.ReadDir(q.path(dirMsg))
	if err != nil {
		r.fail(fmt.Errorf("queue: cannot clean up: %w", err))
	}
	for _, de := range des {
		name := de.Name()
		if _, err := os.Lstat(q.path(dirEnv, name)); err == nil || !stale(de) {
			continue
		}
		// S1 or S3 after a crash. Lock it all the same, and look again
		// under the lock: a runner may be finishing it right now.
		f, err := q.openTrusted(q.path(dirMsg, name), 2)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if _, err := os.Lstat(q.path(dirEnv, name)); errors.Is(err, fs.ErrNotExist) {
				if err := os.Remove(q.path(dirMsg, name)); err == nil {
					q.logf("removed %s, a message that was never queued or was already delivered", q.path(dirMsg, name))
				} else if !errors.Is(err, fs.ErrNotExist) {
					r.fail(fmt.Errorf("queue: cannot clean up: %w", err))
				}
			}
		}
		f.Close()
	}
}

// choose lists env/ and returns the IDs to try, in ID (arrival) order.
// Envelopes that cannot be parsed are chosen too: they are moved to
// failed/ once locked.
func (r *runner) choose() ([]string, error) {
	des, err := os.ReadDir(r.q.path(dirEnv))
	if err != nil {
		return nil, fmt.Errorf("queue: cannot list the queue: %w", err)
	}
	var ids []string
	for _, de := range des {
		if name := de.Name(); validID(name) {
			ids = append(ids, name)
		} else {
			// Not a name relaymail writes; leave it for a person to look at.
			r.fail(fmt.Errorf("queue: %s is not a queue ID (a stray file?); it was left alone", r.q.path(dirEnv, name)))
		}
	}
	if r.ro.ID != "" {
		id, err := matchID(ids, r.ro.ID)
		if err != nil {
			return nil, err
		}
		ids = []string{id}
	}
	var chosen []string
	for _, id := range ids {
		e, err := r.q.readEntry(id)
		var pe *parseError
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case errors.As(err, &pe):
			chosen = append(chosen, id)
		case err != nil:
			r.failf(err)
		case r.selected(e):
			chosen = append(chosen, id)
		}
	}
	return chosen, nil
}

// matchID finds the queue ID that want names, exactly or as a unique
// prefix.
func matchID(ids []string, want string) (string, error) {
	var found []string
	for _, id := range ids {
		if strings.EqualFold(id, want) {
			return id, nil
		}
		if len(want) < len(id) && strings.EqualFold(id[:len(want)], want) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: no queued message has the ID %q (mailq lists them)", ErrBadID, want)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: %q is the start of %d queue IDs (give more of the ID)", ErrBadID, want, len(found))
}

// ErrBadID says that -qI named no queued message, or several: asking again
// cannot help, so sendmail reports a usage error.
var ErrBadID = errors.New("queue: bad queue ID")

// selected applies the run's filters. A message with no pending recipient
// left (a run stopped between its last attempt and its removal) is always
// chosen, so that it is finished.
func (r *runner) selected(e *Entry) bool {
	pending, inDomain := false, r.ro.Domain == ""
	for _, rc := range e.Recipients {
		if rc.State == Pending {
			pending = true
			if !inDomain && strings.EqualFold(domainOf(rc.Addr), r.ro.Domain) {
				inDomain = true
			}
		}
	}
	if !pending {
		return true
	}
	if !inDomain {
		return false
	}
	now := r.q.opts.Now()
	return r.ro.Force || !e.NextAttempt.After(now) || r.q.expired(e, now)
}

func (q *Queue) expired(e *Entry, now time.Time) bool {
	return now.Sub(e.Arrival) > q.opts.Lifetime
}

// process locks the messages in groups and delivers each group.
func (r *runner) process(ctx context.Context, ids []string, filtered bool) {
	for len(ids) > 0 && ctx.Err() == nil {
		var group []*job
		for len(ids) > 0 && len(group) < batchSize && ctx.Err() == nil {
			id := ids[0]
			ids = ids[1:]
			if j := r.take(id, filtered); j != nil {
				group = append(group, j)
			}
		}
		r.deliver(ctx, group)
	}
}

// take locks msg/ID and reads env/ID again under the lock. It returns a
// job to deliver, or nil when there is nothing to send: another runner
// holds the message or has just dealt with it, or take dealt with it
// itself (moved it to failed/, expired it, finished it).
func (r *runner) take(id string, filtered bool) *job {
	q := r.q
	f, err := q.openTrusted(q.path(dirMsg, id), 2)
	if errors.Is(err, fs.ErrNotExist) {
		r.orphanEnv(id)
		return nil
	}
	if err != nil {
		r.failf(err)
		return nil
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			r.st.Skipped++
		} else {
			r.fail(fmt.Errorf("queue: %s: cannot lock %s: %w", id, q.path(dirMsg, id), err))
		}
		return nil
	}
	j := &job{f: f}
	e, err := q.readEntry(id)
	var pe *parseError
	switch {
	case errors.Is(err, fs.ErrNotExist): // finished by another runner
		j.release()
		return nil
	case errors.As(err, &pe):
		r.quarantine(j, id, pe.err.Error())
		return nil
	case err != nil:
		r.failf(err)
		j.release()
		return nil
	}
	j.e = e
	if filtered && !r.selected(e) { // another runner has just tried it
		j.release()
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		r.fail(fmt.Errorf("queue: %s: %w", id, err))
		j.release()
		return nil
	}
	if fi.Size() != e.Size {
		r.quarantine(j, id, fmt.Sprintf("%s has %d octets, but the envelope says %d", q.path(dirMsg, id), fi.Size(), e.Size))
		return nil
	}
	r.st.Messages++
	for i, rc := range e.Recipients {
		if rc.State == Pending {
			j.tried = append(j.tried, i)
		}
	}
	if len(j.tried) == 0 {
		r.complete(j, "")
		return nil
	}
	if q.expired(e, q.opts.Now()) {
		r.expire(j)
		return nil
	}
	eight, long, err := scan(f, fi.Size())
	if err != nil {
		r.fail(fmt.Errorf("queue: %s: reading %s: %w", id, q.path(dirMsg, id), err))
		j.release()
		return nil
	}
	j.out = append([]int(nil), j.tried...)
	j.res = make(map[int]relay.Result, len(j.tried))
	j.msg = relay.Message{Data: f, Size: fi.Size(), EightBit: eight, LongLines: long}
	return j
}

// scan finds what intake knew about the message and the envelope does not
// keep: whether it has 8-bit bytes and lines over 998 octets (RFC 5322
// §2.1.1), which the SMTP client needs for BODY= and its warnings.
func scan(r io.ReaderAt, size int64) (eightBit, longLines bool, err error) {
	buf := make([]byte, 64<<10)
	line := 0
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for _, c := range buf[:n] {
			switch {
			case c == '\n':
				line = 0
				continue
			case c >= 0x80:
				eightBit = true
			}
			line++
			if line > 998 {
				longLines = true
			}
		}
		off += int64(n)
		if err != nil && !(err == io.EOF && off == size) {
			return eightBit, longLines, err
		}
	}
	return eightBit, longLines, nil
}

// deliver tries a group of locked messages through the smarthosts in
// order. A session is opened for a smarthost the first time a message
// needs it and kept for the next ones; a session that can pipeline
// (relay.BatchSender, QMTP) gets the whole group at once. A message whose
// attempt is settled is finished at once (its state written, its lock
// released); the others go on to the next smarthost.
func (r *runner) deliver(ctx context.Context, group []*job) {
	// What is not finished when deliver returns was abandoned because ctx
	// was canceled: its state stays as it was and the next run sends it
	// again.
	defer func() {
		r.settleFinished()
		for _, j := range group {
			if !j.done {
				j.release()
			}
		}
	}()
	active := group
	for i, rl := range r.ro.Relayers {
		if len(active) == 0 {
			return
		}
		if ctx.Err() != nil {
			return
		}
		host := rl.String()
		var next []*job
		settle := func(j *job, got []relay.Result, err error) {
			if j.apply(host, got, err) {
				next = append(next, j)
			} else {
				r.finish(j)
			}
		}
		sr, ok := rl.(relay.SessionRelayer)
		if !ok {
			for _, j := range active {
				if ctx.Err() != nil {
					return
				}
				got, err := rl.Relay(ctx, j.envelope(), &j.msg)
				r.st.Connections++
				if ctx.Err() != nil {
					return
				}
				settle(j, got, err)
			}
			active = next
			continue
		}
		sess, err := r.session(ctx, i, sr)
		if ctx.Err() != nil {
			return
		}
		if bs, ok := sess.(relay.BatchSender); ok && err == nil && len(active) > 1 {
			batch := make([]relay.Batch, len(active))
			for k, j := range active {
				batch[k] = relay.Batch{Envelope: j.envelope(), Message: &j.msg}
			}
			got, err := bs.SendBatch(ctx, batch)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				r.closeSession(i)
			}
			// A session error fails the batch as a whole, so every message
			// with a recipient still deferred goes on to the next
			// smarthost, as it would after its own session error.
			for k, j := range active {
				var g []relay.Result
				if k < len(got) {
					g = got[k]
				}
				settle(j, g, err)
			}
			active = next
			continue
		}
		for _, j := range active {
			if ctx.Err() != nil {
				return
			}
			sess, err := r.session(ctx, i, sr)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				settle(j, nil, err)
				continue
			}
			got, err := sess.Send(ctx, j.envelope(), &j.msg)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				r.closeSession(i) // unusable after an error; the next message opens a new one
			}
			settle(j, got, err)
		}
		active = next
	}
	for _, j := range active {
		r.finish(j)
	}
}

// session returns the open session to smarthost i, opening one if there is
// none.
func (r *runner) session(ctx context.Context, i int, sr relay.SessionRelayer) (relay.Session, error) {
	if r.down[i] != nil {
		return nil, r.down[i]
	}
	if r.sess[i] != nil {
		return r.sess[i], nil
	}
	s, err := sr.Open(ctx)
	if err == nil && s == nil {
		err = fmt.Errorf("%s: no session", sr)
	}
	if err != nil {
		if ctx.Err() == nil {
			// A smarthost that cannot be reached is not tried again in
			// this run: every further message would wait for the same
			// timeout. Its messages go on to the next smarthost, or wait
			// for the next run.
			r.down[i] = err
			r.q.logf("smarthost %s cannot be reached, not trying it again in this run: %v", sr, err)
		}
		return nil, err
	}
	r.st.Connections++
	r.sess[i] = s
	return s, nil
}

// finish records an attempt: each tried recipient's new state and reply,
// the attempt count and the next attempt. A message with recipients still
// pending gets its new state written; one without leaves the queue.
func (r *runner) finish(j *job) {
	q, e := r.q, j.e
	now := q.opts.Now()
	pending := 0
	for _, idx := range j.tried {
		res := j.res[idx]
		rc := &e.Recipients[idx]
		switch res.Class {
		case relay.Delivered:
			rc.State = Delivered
			r.st.Delivered++
		case relay.Failed:
			rc.State = Failed
			r.st.Failed++
		default:
			rc.State = Pending
			r.st.Deferred++
		}
		if reply := replyText(res); reply != "" {
			rc.Reply = reply
		}
		q.logf("%s: to=<%s>, relay=%s, attempt=%d, status=%s (%s)", e.ID, rc.Addr, res.Host, e.Attempts+1, res.Class, rc.Reply)
	}
	for _, rc := range e.Recipients {
		if rc.State == Pending {
			pending++
		}
	}
	if e.Attempts < maxAttempts {
		e.Attempts++
	}
	e.LastAttempt = now.UTC()
	e.NextAttempt = now.Add(q.backoff(e.Attempts)).UTC()
	if pending == 0 {
		r.complete(j, "")
		return
	}
	if err := q.writeState(e); err != nil {
		// The old state stays: the recipients delivered just now are sent
		// again by the next run. A duplicate, never a loss.
		r.fail(err)
	} else {
		q.logf("%s: deferred, %d of %d recipients pending, next attempt %s", e.ID, pending, len(e.Recipients), e.NextAttempt.Format(time.RFC3339))
	}
	j.release()
}

// replyText renders a result as the reply line the envelope keeps:
// "code enhanced-code text", on one line.
func replyText(res relay.Result) string {
	var parts []string
	text := strings.TrimSpace(res.Text)
	if res.Code > 0 {
		parts = append(parts, strconv.Itoa(res.Code))
	}
	// The SMTP client takes the enhanced code off the text; a QMTP reply
	// keeps qmail's "(#5.1.1)" in it.
	if res.Enhanced != "" && (res.Code > 0 || !strings.Contains(text, res.Enhanced)) {
		parts = append(parts, res.Enhanced)
	}
	if text != "" {
		parts = append(parts, text)
	}
	return oneLine(strings.Join(parts, " "), maxReply)
}

// expire gives up on a message queued for longer than the lifetime: its
// pending recipients fail with the last reply they got.
func (r *runner) expire(j *job) {
	q, e := r.q, j.e
	after := humanDuration(q.opts.Lifetime)
	suffix := "(gave up after " + after + ")"
	n := 0
	for i := range e.Recipients {
		rc := &e.Recipients[i]
		if rc.State != Pending {
			continue
		}
		rc.State = Failed
		reply := truncate(rc.Reply, maxReply-len(suffix)-1)
		rc.Reply = strings.TrimSpace(reply + " " + suffix)
		n++
		q.logf("%s: to=<%s>, status=expired (%s)", e.ID, rc.Addr, rc.Reply)
	}
	r.st.Expired++
	r.st.Failed += n
	q.logf("%s: expired: queued for more than %s, %d recipients given up", e.ID, after, n)
	r.complete(j, fmt.Sprintf("expired: queued for more than %s", after))
}

// humanDuration writes a lifetime as people say it: "5 days", "36 hours".
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}

// complete takes a message whose recipients are all final out of the
// queue. Delivered to all: env/ID is removed (the commit of completion),
// then msg/ID. With a failed recipient: the final state is written, the
// bounce is queued, and only then does the message move to failed/, so
// that a crash in between may bounce twice but never not at all.
func (r *runner) complete(j *job, reason string) {
	q, e := r.q, j.e
	var failed []Recipient
	for _, rc := range e.Recipients {
		if rc.State == Failed {
			failed = append(failed, rc)
		}
	}
	if len(failed) == 0 {
		err := os.Remove(q.path(dirEnv, e.ID))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.fail(fmt.Errorf("queue: %s: %w", e.ID, err))
			j.release()
			return
		}
		r.finished = append(r.finished, j)
		if len(r.finished) >= batchSize {
			r.settleFinished()
		}
		return
	}
	if reason == "" {
		reason = fmt.Sprintf("%d of %d recipients failed", len(failed), len(e.Recipients))
	}
	if err := q.writeState(e); err != nil {
		r.fail(err)
		j.release()
		return
	}
	switch {
	case e.Sender == "":
		q.logf("%s: no notification: the sender is <>", e.ID)
	case e.Bounce:
		q.logf("%s: no notification: the message is a notification itself", e.ID)
	case !notifyFailure(e.DSN.Notify):
		q.logf("%s: no notification: the sender asked for none (NOTIFY=%s)", e.ID, strings.Join(e.DSN.Notify, ","))
	default:
		id, err := r.bounce(j, failed)
		if err != nil {
			// env/ID stays, with no pending recipient: the next run
			// tries the notification again.
			r.fail(fmt.Errorf("queue: %s: cannot queue the notification to %s: %w", e.ID, e.Sender, err))
			j.release()
			return
		}
		r.bounces = append(r.bounces, id)
		r.st.Bounced++
		q.logf("%s: sender non-delivery notification: %s", e.ID, id)
	}
	data, err := marshal(e)
	if err != nil {
		r.fail(fmt.Errorf("queue: %s: %w", e.ID, err))
		j.release()
		return
	}
	if err := r.toFailed(j, e.ID, bytes.NewReader(data), reason); err != nil {
		r.fail(err)
	}
}

// settleFinished makes the removal of the finished messages' envelopes
// durable with one fsync of env/, then removes their msg/ files and
// releases their locks. One fsync per group instead of one per message
// is most of what a queue flush spends on the file system.
func (r *runner) settleFinished() {
	if len(r.finished) == 0 {
		return
	}
	q := r.q
	if err := q.ops.syncDir(q.path(dirEnv)); err != nil {
		// Should the removals be lost, those messages are sent again.
		r.fail(fmt.Errorf("queue: fsync %s after %d delivered messages left it: %w", q.path(dirEnv), len(r.finished), err))
	}
	for _, j := range r.finished {
		id := j.e.ID
		if err := os.Remove(q.path(dirMsg, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.logf("%s: warning: %v (removed by a later run)", id, err)
		}
		// No fsync of msg/: should this unlink be lost, msg/ID has no
		// envelope and the age rule removes it (state S3 in doc.go).
		q.logf("%s: removed, delivered to every recipient", id)
		j.release()
	}
	r.finished = r.finished[:0]
}

// notifyFailure reports whether RFC 3461 NOTIFY asks for failure
// notifications: it does when absent (the default) or when it has FAILURE.
func notifyFailure(notify []string) bool {
	if len(notify) == 0 {
		return true
	}
	for _, n := range notify {
		if n == "FAILURE" {
			return true
		}
	}
	return false
}

// toFailed moves a message to failed/: failed/ID.env gets src (the final
// envelope, or the unreadable one) and a "reason" line, msg/ID becomes
// failed/ID.msg, and env/ID is removed last, so that a crash at any point
// leaves the message queued or moved, never lost. It releases j.
func (r *runner) toFailed(j *job, id string, src io.Reader, reason string) error {
	defer j.release()
	q := r.q
	// Not tmp/ID.env: a damaged envelope may be moved without a lock
	// (its message file is gone), and a unique name keeps two runners
	// apart. The age rule removes it after a crash.
	tmp, err := os.CreateTemp(q.path(dirTmp), id+".env.")
	if err != nil {
		return fmt.Errorf("queue: %s: cannot move to failed/: %w", id, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("queue: %s: cannot move to failed/: %w", id, err)
	}
	if q.fileMode != 0o600 {
		if err := tmp.Chmod(q.fileMode); err != nil {
			return fail(err)
		}
	}
	bw := bufio.NewWriter(tmp)
	n, err := io.Copy(bw, io.LimitReader(src, 2*maxEnvelopeBytes))
	if err != nil {
		return fail(err)
	}
	if n > 0 {
		// A copied file may lack its last newline: the reason goes on a
		// line of its own all the same.
		if last, err := lastByte(tmp, bw, n); err != nil {
			return fail(err)
		} else if last != '\n' {
			bw.WriteByte('\n')
		}
	}
	bw.WriteString("reason " + oneLine(reason, 2*maxReply) + "\n")
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := q.ops.sync(tmp); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := q.ops.rename(tmp.Name(), q.path(dirFailed, id+".env")); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("queue: %s: cannot move to failed/: %w", id, err)
	}
	if err := q.ops.rename(q.path(dirMsg, id), q.path(dirFailed, id+".msg")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: %s: cannot move to failed/: %w", id, err)
	}
	if err := q.ops.syncDir(q.path(dirFailed)); err != nil {
		return fmt.Errorf("queue: %s: cannot move to failed/: fsync: %w", id, err)
	}
	if err := q.ops.syncDir(q.path(dirMsg)); err != nil {
		return fmt.Errorf("queue: %s: cannot move to failed/: fsync: %w", id, err)
	}
	if err := os.Remove(q.path(dirEnv, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: %s: cannot move to failed/: %w", id, err)
	}
	if err := q.ops.syncDir(q.path(dirEnv)); err != nil {
		return fmt.Errorf("queue: %s: fsync %s: %w", id, q.path(dirEnv), err)
	}
	q.logf("%s: moved to %s: %s", id, q.path(dirFailed), oneLine(reason, 2*maxReply))
	return nil
}

// lastByte returns the last byte copied so far into f through bw.
func lastByte(f *os.File, bw *bufio.Writer, n int64) (byte, error) {
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	var b [1]byte
	_, err := f.ReadAt(b[:], n-1)
	return b[0], err
}

// quarantine moves an envelope that cannot be used to failed/, with the
// reason, rather than guess what it meant (doc.go: "moves a file it cannot
// parse to failed/"). j holds the lock when there is a message file.
func (r *runner) quarantine(j *job, id, why string) {
	src, err := r.q.openTrusted(r.q.path(dirEnv, id), 1)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.failf(err)
		}
		j.release()
		return
	}
	defer src.Close()
	r.q.logf("%s: cannot use the envelope: %s", id, why)
	if err := r.toFailed(j, id, src, "cannot use the envelope: "+why); err != nil {
		r.fail(err)
		return
	}
	r.fail(fmt.Errorf("queue: %s: moved to failed/: cannot use the envelope: %s", id, why))
}

// orphanEnv deals with env/ID whose msg/ID is missing. Either a move to
// failed/ stopped after msg/ID was renamed (failed/ID.msg and
// failed/ID.env exist: remove env/ID to finish it), or the spool was
// damaged (move the envelope to failed/).
func (r *runner) orphanEnv(id string) {
	q := r.q
	j := &job{}
	if f, err := q.openTrusted(q.path(dirFailed, id+".msg"), 2); err == nil {
		// The same inode as msg/ID was: a runner still moving the message
		// holds its lock.
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				r.st.Skipped++
			} else {
				r.fail(fmt.Errorf("queue: %s: %w", id, err))
			}
			return
		}
		j.f = f
		if fi, err := os.Lstat(q.path(dirFailed, id+".env")); err == nil && fi.Mode().IsRegular() {
			defer j.release()
			if err := os.Remove(q.path(dirEnv, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				r.fail(fmt.Errorf("queue: %s: %w", id, err))
				return
			}
			q.ops.syncDir(q.path(dirEnv))
			q.logf("%s: finished moving it to %s", id, q.path(dirFailed))
			return
		}
	}
	r.quarantine(j, id, q.path(dirMsg, id)+" is missing")
}
