package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/privsep"
	"github.com/relaymail/relaymail/internal/submit"
	"github.com/relaymail/relaymail/relay/queue"
)

// openQueue opens the spool; when it cannot be used the error names the
// directory and the missing permission, and nothing has been accepted.
func (s *sendmail) openQueue(cfg *config.Config) (*queue.Queue, int) {
	q, err := submit.OpenQueue(cfg, s.log)
	if err != nil {
		s.errorf("%v", err)
		return nil, exCantCreat
	}
	return q, exOK
}

// deliveryMode is -od<x> when given, else the delivery_mode key. -odd
// (defer, Sendmail 8) also means: queue only.
func deliveryMode(req *request, cfg *config.Config) byte {
	switch req.DeliveryMode {
	case 'i', 'b', 'q':
		return req.DeliveryMode
	case 'd':
		return 'q'
	}
	switch cfg.DeliveryMode {
	case "background":
		return 'b'
	case "queue":
		return 'q'
	}
	return 'i'
}

// detach starts "sendmail <args>" in a new session, with no terminal and
// no standard streams, and does not wait for it: -odb and the flush after
// a send must not keep the caller (a PHP request, a cron job) waiting.
func (s *sendmail) detach(req *request, args ...string) {
	self, err := os.Executable()
	if err != nil {
		s.log.Warning("warning: cannot start a queue run: %v", err)
		return
	}
	if req.ConfigPath != "" {
		args = append([]string{"-C", req.ConfigPath}, args...)
	}
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		s.log.Warning("warning: cannot start a queue run: %v", err)
		return
	}
	cmd.Process.Release()
}

// queueRun is what -q asked for.
type queueRun struct {
	interval time.Duration // 0: once
	opts     queue.RunOptions
}

// parseQueueArg reads the value glued to -q: nothing (run once), an
// interval (5m, 1h30m, 2d: run as a daemon), R<domain> or I<id>.
func parseQueueArg(arg string) (queueRun, error) {
	switch {
	case arg == "":
		return queueRun{opts: queue.RunOptions{Force: true}}, nil
	case arg[0] == 'R':
		if len(arg) == 1 {
			return queueRun{}, fmt.Errorf("-qR needs a domain, e.g. -qRexample.com")
		}
		return queueRun{opts: queue.RunOptions{Force: true, Domain: arg[1:]}}, nil
	case arg[0] == 'S':
		return queueRun{}, fmt.Errorf("-qS (select by sender) is not supported, as in Postfix; use -qR<domain> or -qI<queue id>")
	case arg[0] == 'I':
		if len(arg) == 1 {
			return queueRun{}, fmt.Errorf("-qI needs a queue ID, as mailq shows it")
		}
		return queueRun{opts: queue.RunOptions{Force: true, ID: arg[1:]}}, nil
	}
	d, err := parseInterval(arg)
	if err != nil {
		return queueRun{}, fmt.Errorf("-q%s: %v (write e.g. -q, -q5m, -q1h, -qRexample.com or -qI<queue id>)", arg, err)
	}
	return queueRun{interval: d}, nil
}

// parseInterval reads sendmail's queue interval: Go durations plus d for
// days; a bare number is minutes, as in Sendmail 8.
func parseInterval(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Minute, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("%q is not an interval", v)
	}
	return d, nil
}

// runQueue is sendmail -q[...]: one run that delivers everything it may, or
// with an interval a foreground daemon for containers and systemd, which
// stops cleanly on SIGTERM.
func (s *sendmail) runQueue(req *request, cfg *config.Config) int {
	run, err := parseQueueArg(req.QueueArg)
	if err != nil {
		s.errorf("%v", err)
		return exUsage
	}
	if !cfg.Queue {
		s.errorf("the queue is off (queue off in %s), so there is nothing to run", configPath(cfg))
		return exUsage
	}
	if limits := privsep.CallerLimits(); len(limits) > 0 {
		// A run under the caller's limits could be stopped after a
		// delivery and before its state is written, again and again:
		// every run would send the queue's messages once more.
		s.errorf("a queue run is not permitted under a hard limit on %s: it could be stopped part-way and send messages twice (the queue is run by root's cron job or the relaymail systemd service; ask the administrator)", strings.Join(limits, ", "))
		s.log.Warning("warning: a queue run by uid %d was refused: hard limit on %s", os.Getuid(), strings.Join(limits, ", "))
		return exNoPerm
	}
	relayers, code := s.relayers(req, cfg)
	if code != exOK {
		return code
	}
	if len(relayers) == 0 {
		return s.noSmarthost(cfg, "so the queue cannot be delivered")
	}
	q, code := s.openQueue(cfg)
	if q == nil {
		return code
	}
	// A run writes the state of every message it tries: a spool it cannot
	// write is one error now, not one per message.
	if err := privsep.Do(q.CheckWritable); err != nil {
		s.errorf("%v", err)
		return exCantCreat
	}
	run.opts.Relayers = relayers
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if run.interval == 0 {
		st, err := runPrivileged(ctx, q, run.opts)
		s.logRun(st)
		if errors.Is(err, queue.ErrBadID) {
			s.errorf("%v", err)
			return exUsage
		}
		if err != nil && ctx.Err() == nil {
			s.errorf("queue run: %v", err)
			return exTempFail
		}
		if req.Verbose > 0 {
			fmt.Fprintf(s.stderr, "sendmail: queue run: %d messages, %d recipients delivered, %d deferred, %d failed, %d connections\n",
				st.Messages, st.Delivered, st.Deferred, st.Failed, st.Connections)
		}
		return exOK
	}
	s.log.Info("queue daemon started: a run every %v", run.interval)
	for {
		st, err := runPrivileged(ctx, q, run.opts)
		s.logRun(st)
		if err != nil && ctx.Err() == nil {
			s.log.Warning("warning: queue run: %v", err)
		}
		select {
		case <-ctx.Done():
			s.log.Info("queue daemon stopped")
			return exOK
		case <-time.After(run.interval):
		}
	}
}

// runPrivileged is one queue run with the installed privileges: it reads
// and writes the spool throughout.
func runPrivileged(ctx context.Context, q *queue.Queue, opts queue.RunOptions) (st queue.Stats, err error) {
	perr := privsep.Do(func() error {
		st, err = q.Run(ctx, opts)
		return nil
	})
	if perr != nil {
		return st, perr
	}
	return st, err
}

func (s *sendmail) logRun(st queue.Stats) {
	if st.Messages > 0 {
		s.log.Info("queue run: %d messages, %d delivered, %d deferred, %d failed, %d bounced, %d expired, %d connections",
			st.Messages, st.Delivered, st.Deferred, st.Failed, st.Bounced, st.Expired, st.Connections)
	}
}

// printQueue is mailq and sendmail -bp.
func (s *sendmail) printQueue(req *request, cfg *config.Config) int {
	if !cfg.Queue {
		if req.JSON {
			if err := queue.WriteJSON(s.stdout, nil); err != nil {
				return exIOErr
			}
			return exOK
		}
		fmt.Fprintln(s.stdout, "Mail queue is empty (the queue is off)")
		return exOK
	}
	q, code := s.openQueue(cfg)
	if q == nil {
		return code
	}
	var entries []queue.Entry
	var err error
	if perr := privsep.Do(func() error {
		entries, err = q.List()
		return nil
	}); perr != nil {
		s.errorf("fatal: %v", perr)
		return exOSErr
	}
	// The listing is all that was needed of the spool. mailq shows
	// envelopes, as Postfix's does, never a message's content.
	if derr := privsep.Drop(); derr != nil {
		s.errorf("fatal: %v", derr)
		return exOSErr
	}
	if err != nil {
		s.errorf("%v", err)
	}
	if req.JSON {
		err = queue.WriteJSON(s.stdout, entries)
	} else {
		err = queue.WriteListing(s.stdout, entries)
	}
	if err != nil {
		s.errorf("%v", err)
		return exIOErr
	}
	return exOK
}
