// Package submit is what both front ends, sendmail and qmail-inject, do with
// a message once their command line is parsed: intake (into memory, or a
// queue spool file for a large message), an immediate attempt at the
// smarthosts, the queue for whatever was deferred, and one stderr line per
// recipient that was not delivered. The front ends differ only in how they
// read their command line and in how they turn the Outcome and the error
// into an exit status; they share this code so that there is one delivery
// path, not two.
//
// In a privileged run (internal/privsep) the spool operations, the TLS
// files and the OAuth2 token are reached through privsep.Do, with the
// installed privileges; intake, which parses what the caller sent, runs
// with the caller's own. A spool file is created with privileges and
// written through that descriptor.
package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/maillog"
	"github.com/relaymail/relaymail/internal/privsep"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/aliases"
	"github.com/relaymail/relaymail/relay/inject"
	"github.com/relaymail/relaymail/relay/queue"
	"github.com/relaymail/relaymail/relay/smarthost"
)

// Submitter holds what every message of a run needs: the smarthost
// clients and the queue. sendmail -bm and qmail-inject submit one message,
// sendmail -bs one per SMTP transaction.
type Submitter struct {
	Config *config.Config
	Log    *maillog.Logger
	// Relayers are the smarthost clients, in failover order (Relayers
	// builds them); Queue is nil when the queue is off (OpenQueue).
	Relayers []relay.Relayer
	Queue    *queue.Queue
	// Errorf reports one line on stderr, with the program's prefix
	// ("sendmail: ").
	Errorf func(format string, a ...any)
	// Fatalf reports an error that ends the submission; nil is Errorf
	// (qmail-inject writes "qmail-inject: fatal: ").
	Fatalf func(format string, a ...any)
	// Verbose is sendmail -v: delivered recipients are reported too, and
	// the protocol transcript goes to Transcript.
	Verbose    int
	Transcript io.Writer
	// Detach starts a detached run of the front end with these arguments
	// ("-q", "-qI<id>"); nil means the front end has no queue runner, and
	// none is started.
	Detach func(args ...string)
}

// Kind classifies the errors of Submit that are not intake's.
type Kind int

const (
	// KindConfig: the configuration does not allow the delivery (no
	// smarthost with the queue off, a smarthost that cannot be used).
	KindConfig Kind = iota + 1
	// KindSpool: the queue cannot be opened or written; nothing was
	// accepted.
	KindSpool
)

// Error is a failure that was already reported on stderr; Kind decides the
// exit status. Intake failures are *inject.Error instead.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Message is one message to submit.
type Message struct {
	Intake inject.Options
	// DSN, Body and SMTPUTF8 come from the command line (sendmail -N -R
	// -V -B -O SMTPUTF8=yes) or the SMTP session.
	DSN      relay.DSN
	Body     string
	SMTPUTF8 bool
	// Mode is 'i' (try at once, queue what is deferred), 'b' (queue, then
	// a detached run) or 'q' (only queue).
	Mode byte
	// BounceFailed commits the recipients that failed as well, so that
	// the queue bounces them to the sender: sendmail -bs, where their
	// failure can no longer be reported once the message is accepted.
	BounceFailed bool
}

// Outcome is what became of one message.
type Outcome struct {
	// Results has one entry per recipient, in envelope order; nil when
	// nothing was tried.
	Results []relay.Result
	// QueuedAs is the queue ID when anything was committed.
	QueuedAs string
	// Kept says that deferred recipients wait in the queue, so that their
	// deferral is no failure.
	Kept bool
}

func (s *Submitter) fatalf(format string, a ...any) {
	if s.Fatalf != nil {
		s.Fatalf(format, a...)
		return
	}
	s.Errorf(format, a...)
}

// ConfigPath names the configuration file for hints.
func ConfigPath(cfg *config.Config) string {
	if cfg.Path != "" {
		return cfg.Path
	}
	return config.DefaultPath
}

// NoSmarthost reports a configuration without smarthosts, where what was
// asked (why) cannot be done.
func (s *Submitter) NoSmarthost(why string) error {
	s.fatalf("no smarthost is configured, %s (set smarthost in %s or RELAYMAIL_SMARTHOST, e.g. smtp://mail.example.com or qmtp://mx.example.com)", why, ConfigPath(s.Config))
	return &Error{Kind: KindConfig, Err: errors.New("no smarthost")}
}

// SmarthostOptions turns the configuration into client settings. Warnings
// always reach the log, and stderr too when Verbose.
func (s *Submitter) SmarthostOptions() smarthost.Options {
	cfg := s.Config
	o := smarthost.Options{
		Hostname:        cfg.Hostname,
		Timeout:         cfg.Timeout,
		Password:        cfg.Password,
		OAuth2TokenFile: cfg.OAuth2TokenFile,
		ReadFile:        ReadPrivileged,
		TLSCAFile:       cfg.TLSCAFile,
		TLSCertFile:     cfg.TLSCertFile,
		TLSKeyFile:      cfg.TLSKeyFile,
		TLSFingerprint:  cfg.TLSFingerprint,
		Warn: func(w string) {
			s.Log.Warning("warning: %s", OneLine(w))
			if s.Verbose > 0 {
				s.Errorf("warning: %s", OneLine(w))
			}
		},
	}
	if s.Verbose > 0 {
		o.Transcript = s.Transcript
	}
	return o
}

// Open builds the smarthost clients and opens the queue: what every
// submission of a run shares. With the queue off and no smarthost there
// is nowhere for mail to go, which is a configuration error.
func (s *Submitter) Open() error {
	relayers, err := s.NewRelayers()
	if err != nil {
		return err
	}
	s.Relayers = relayers
	if !s.Config.Queue {
		if len(s.Relayers) == 0 {
			return s.NoSmarthost("the queue is off, so the message cannot be sent")
		}
		return nil
	}
	q, err := OpenQueue(s.Config, s.Log)
	if err != nil {
		s.fatalf("%v", err)
		return &Error{Kind: KindSpool, Err: err}
	}
	s.Queue = q
	return nil
}

// ReadPrivileged reads a file the configuration names (the OAuth2 token)
// with the installed privileges.
func ReadPrivileged(name string) (data []byte, err error) {
	err = privsep.Do(func() error {
		data, err = os.ReadFile(name)
		return err
	})
	return data, err
}

// NewRelayers builds one client per configured smarthost. The TLS files
// the configuration names are read here, with the installed privileges.
func (s *Submitter) NewRelayers() ([]relay.Relayer, error) {
	relayers := make([]relay.Relayer, 0, len(s.Config.Smarthosts))
	for _, u := range s.Config.Smarthosts {
		var r relay.Relayer
		err := privsep.Do(func() (err error) {
			r, err = u.Relayer(s.SmarthostOptions())
			return err
		})
		if err != nil {
			s.fatalf("%v", err)
			return nil, &Error{Kind: KindConfig, Err: err}
		}
		relayers = append(relayers, r)
	}
	return relayers, nil
}

// OpenQueue opens the spool; when it cannot be used the error names the
// directory and the missing permission, and nothing has been accepted. In
// a privileged run the spool is the shared one of the packaged install.
func OpenQueue(cfg *config.Config, log *maillog.Logger) (q *queue.Queue, err error) {
	err = privsep.Do(func() error {
		q, err = queue.Open(queue.Options{
			Dir:      cfg.QueueDir,
			RetryMin: cfg.RetryMin,
			RetryMax: cfg.RetryMax,
			Lifetime: cfg.QueueLifetime,
			Hostname: cfg.Hostname,
			Domain:   cfg.Domain,
			Log:      log.Info,
			Shared:   privsep.Privileged(),
		})
		return err
	})
	return q, err
}

// OneCPU runs the Go scheduler on one CPU unless the caller set GOMAXPROCS.
// A submission is one goroutine waiting on one connection or file at a
// time; with a second CPU, each time that goroutine becomes ready the
// scheduler also wakes a thread on the other CPU to look for work, and in
// a VM, where waking an idle CPU is dear, that cost more than this call's
// stop-the-world: 4.20 -> 3.78 ms a delivery when the machine is cold,
// 2.59 -> 2.53 ms when it is warm (bench/README.md, item 8). A queue run
// and an SMTP session are the same kind of work. The front ends call it
// first thing after privsep.Start.
func OneCPU() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// Submit reads one message from in, relays it and queues what must wait:
// the smarthosts are tried at once (Mode 'i'), and whatever they defer is
// committed. With the queue on, a message larger than intake keeps in
// memory goes straight into a queue spool file; a smaller one gets a spool
// file only when something must be queued. Every problem is reported on
// stderr before Submit returns; the error, an *inject.Error or an *Error,
// only says which kind it was.
func (s *Submitter) Submit(ctx context.Context, in io.Reader, m Message) (Outcome, error) {
	cfg := s.Config
	opts := m.Intake
	arrived := time.Now()
	var sp *queue.Spool
	if s.Queue != nil {
		// Before the message is read: a spool that cannot take it is
		// the caller's to hear about now, not when a smarthost fails.
		if err := privsep.Do(s.Queue.CheckWritable); err != nil {
			s.fatalf("%v", err)
			return Outcome{}, &Error{Kind: KindSpool, Err: err}
		}
		opts.Spill = func() (*os.File, error) {
			err := privsep.Do(func() (err error) {
				sp, err = s.Queue.NewSpool()
				return err
			})
			if err != nil {
				return nil, err
			}
			return sp.File, nil
		}
	}
	sub, err := inject.Intake(in, opts)
	if err != nil {
		if sp != nil {
			privsep.Do(sp.Discard)
		}
		s.fatalf("%v", err)
		return Outcome{}, err
	}
	defer sub.Close()
	env := m.envelope(sub)
	id := ""
	if sp != nil {
		id = "queue id " + sp.ID + ", "
	}
	s.Log.Info("%s: %sfrom=<%s>, size=%d, nrcpt=%d", sub.MessageID, id, env.Sender, sub.Message.Size, len(env.Recipients))
	// enqueue commits the message with the recipients still to be tried
	// (nil: all of them), writing it into a spool file first when intake
	// held it in memory; it arrived when the caller handed it over.
	enqueue := func(pending []relay.Result, attempts int) error {
		var err error
		if sp, err = s.spool(sp, sub); err != nil {
			return err
		}
		e := NewEntry(&env, sub, pending, attempts)
		e.Arrival = arrived
		if err := s.commit(sp, e); err != nil {
			return err
		}
		// The queue's own lines name only the queue ID.
		s.Log.Info("%s: queued as %s", sub.MessageID, sp.ID)
		return nil
	}

	if s.Queue != nil && (len(s.Relayers) == 0 || m.Mode != 'i') {
		if err := enqueue(nil, 0); err != nil {
			s.fatalf("cannot queue the message: %v", err)
			return Outcome{}, &Error{Kind: KindSpool, Err: err}
		}
		switch {
		case len(s.Relayers) == 0:
			s.Errorf("no smarthost is configured: the message was queued as %s in %s (set smarthost in %s or RELAYMAIL_SMARTHOST, e.g. smtp://mail.example.com, then run sendmail -q)", sp.ID, cfg.QueueDir, ConfigPath(cfg))
		case m.Mode == 'b' && s.Detach != nil:
			s.Detach("-qI" + sp.ID)
		}
		return Outcome{QueuedAs: sp.ID, Kept: true}, nil
	}

	results, derr := relay.Deliver(ctx, s.Relayers, &env, &sub.Message)
	var keep []relay.Result
	pending := 0
	for _, r := range results {
		switch {
		case r.Class == relay.Deferred:
			keep = append(keep, r)
			pending++
		case r.Class == relay.Failed && m.BounceFailed:
			keep = append(keep, r)
		}
	}
	if pending == 0 && len(keep) == len(results) {
		keep = nil // every recipient failed: the caller hears it, no bounce
	}
	queuedAs := ""
	if s.Queue != nil {
		if len(keep) > 0 {
			if err := enqueue(keep, 1); err != nil {
				s.report(sub.MessageID, results, derr, "", true)
				s.fatalf("cannot queue the deferred recipients: %v", err)
				return Outcome{Results: results}, &Error{Kind: KindSpool, Err: err}
			}
			queuedAs = sp.ID
		} else if sp != nil {
			privsep.Do(sp.Discard)
		}
	}
	kept := queuedAs != "" && pending > 0
	reportedAs := ""
	if kept {
		reportedAs = queuedAs
	}
	s.Report(sub.MessageID, results, derr, reportedAs)
	if s.Queue != nil && s.Detach != nil && cfg.FlushAfterSend && hasDelivered(results) {
		// The smarthost works: let a detached run drain what earlier runs
		// left (and send a bounce just queued), so that a container without
		// cron empties its queue. The message's own deferred recipients
		// alone are no reason: they would only be deferred again.
		own := 0
		if kept {
			own = 1
		}
		var queued int
		err := privsep.Do(func() (err error) {
			queued, err = s.Queue.CountUpTo(own + 1)
			return err
		})
		if err == nil && queued > own {
			s.Detach("-q")
		}
	}
	return Outcome{Results: results, QueuedAs: queuedAs, Kept: kept}, nil
}

// spool returns sp, the queue spool file that intake wrote a large message
// into, or else a new one with the message that intake held in memory.
func (s *Submitter) spool(sp *queue.Spool, sub *inject.Submission) (*queue.Spool, error) {
	if sp != nil {
		return sp, nil
	}
	err := privsep.Do(func() (err error) {
		sp, err = s.Queue.NewSpool()
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(sp.File, sub.Message.Reader()); err != nil {
		privsep.Do(sp.Discard)
		return nil, fmt.Errorf("writing %s: %w", sp.File.Name(), err)
	}
	return sp, nil
}

// commit queues a spooled message with the installed privileges.
func (s *Submitter) commit(sp *queue.Spool, e *queue.Entry) error {
	return privsep.Do(func() error { return s.Queue.Commit(sp, e) })
}

// envelope adds the command line's DSN and body parameters to what intake
// found.
func (m *Message) envelope(sub *inject.Submission) relay.Envelope {
	env := sub.Envelope
	env.DSN = m.DSN
	env.Body = m.Body
	env.SMTPUTF8 = env.SMTPUTF8 || m.SMTPUTF8
	return env
}

func hasDelivered(results []relay.Result) bool {
	for _, r := range results {
		if r.Class == relay.Delivered {
			return true
		}
	}
	return false
}

// Report writes the log line of each recipient and one stderr line per
// recipient that was not delivered (with Verbose also the delivered ones).
// queuedAs is the queue ID the deferred recipients were committed under,
// "" when they were not kept.
func (s *Submitter) Report(msgID string, results []relay.Result, derr error, queuedAs string) {
	s.report(msgID, results, derr, queuedAs, false)
}

// report is Report; queueFailed says that the queue is on but could not
// keep the deferred recipients.
func (s *Submitter) report(msgID string, results []relay.Result, derr error, queuedAs string, queueFailed bool) {
	kept := queuedAs != ""
	deferred := 0
	shown := ""
	for _, r := range results {
		text := OneLine(ResultText(r))
		s.Log.Info("%s: to=<%s>, relay=%s, status=%s (%s)", msgID, r.Recipient, r.Host, statusWord(r.Class, kept), text)
		switch {
		case r.Class == relay.Failed, r.Class == relay.Deferred && !kept:
			s.Errorf("%s: %s: %s", r.Recipient, r.Class, text)
			shown += text + "\n"
		case r.Class == relay.Deferred:
			s.Errorf("%s: deferred: %s (queued as %s)", r.Recipient, text, queuedAs)
		case s.Verbose > 0:
			s.Errorf("%s: %s via %s: %s", r.Recipient, r.Class, r.Host, text)
		}
		if r.Class == relay.Deferred {
			deferred++
		}
	}
	if deferred > 0 && !kept {
		// The session error usually is what the recipients' lines already
		// say; print it only when it adds something.
		if derr != nil {
			if msg := OneLine(derr.Error()); !strings.Contains(shown, msg) {
				s.Errorf("%s", msg)
			}
		}
		if queueFailed {
			s.Errorf("%d of %d recipients were not sent, and the queue could not keep them (send the message again later)", deferred, len(results))
		} else {
			s.Errorf("%d of %d recipients were not sent and nothing was kept: the queue is off (send the message again later)", deferred, len(results))
		}
	}
}

func statusWord(c relay.Class, kept bool) string {
	switch {
	case c == relay.Delivered:
		return "sent"
	case c == relay.Failed:
		return "bounced"
	case kept:
		return "deferred, queued"
	}
	return "deferred"
}

// NewEntry describes a message for the queue. pending are the deferred
// results of an attempt (nil: every recipient, never tried).
func NewEntry(env *relay.Envelope, sub *inject.Submission, pending []relay.Result, attempts int) *queue.Entry {
	e := &queue.Entry{
		Sender:    env.Sender,
		MessageID: sub.MessageID,
		Body:      env.Body,
		SMTPUTF8:  env.SMTPUTF8,
		DSN:       env.DSN,
		Attempts:  attempts,
	}
	if pending == nil {
		for _, r := range env.Recipients {
			e.Recipients = append(e.Recipients, queue.Recipient{Addr: r, State: queue.Pending})
		}
		return e
	}
	now := time.Now()
	e.LastAttempt = now
	for _, r := range pending {
		e.Recipients = append(e.Recipients, queue.Recipient{Addr: r.Recipient, State: queue.Pending, Reply: OneLine(ResultText(r))})
	}
	return e
}

// ResultText is the server's answer as people quote it: "552 5.2.2 text"
// for SMTP and LMTP, the bare text for QMTP and for local decisions.
func ResultText(r relay.Result) string {
	if r.Code == 0 {
		return r.Text
	}
	s := fmt.Sprint(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if r.Text != "" {
		s += " " + r.Text
	}
	return s
}

// OneLine keeps a server's text on one stderr or log line and makes it
// harmless for a terminal: QMTP replies may hold arbitrary bytes.
func OneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' && r != '\n' && r != '\r' || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// LoadAliases reads the alias file the configuration names. The default
// file may be missing (a container has none): that is no aliases.
func LoadAliases(cfg *config.Config) (*aliases.Map, error) {
	var m *aliases.Map
	err := privsep.Do(func() (err error) {
		m, err = aliases.Load(cfg.Aliases)
		return err
	})
	if err != nil && cfg.Aliases == aliases.DefaultPath && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return m, err
}

// Local sets the options of intake that come from the configuration and
// are the same in both dialects: the aliases, the domains they apply to,
// rewrite_from and its masquerade address.
func Local(o *inject.Options, cfg *config.Config, m *aliases.Map) {
	o.Aliases = m
	o.LocalDomains = []string{cfg.Domain, cfg.Hostname}
	switch cfg.RewriteFrom {
	case "never":
		o.FromRewrite = inject.FromNever
	case "always":
		o.FromRewrite = inject.FromAlways
	default:
		o.FromRewrite = inject.FromMissing
	}
	o.Masquerade = cfg.From
}
