// Command sendmail is relaymail's sendmail-compatible front end. It parses
// the sendmail command line (Postfix's letter set, Sendmail 8's extras),
// hands the message to intake, relays it to the configured smarthosts and
// turns the per-recipient results into one exit status.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/maillog"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/inject"
	"github.com/relaymail/relaymail/relay/queue"
	"github.com/relaymail/relaymail/relay/smarthost"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// sendmail holds what one run needs from the process, so tests can drive it.
type sendmail struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *maillog.Logger
}

func (s *sendmail) errorf(format string, a ...any) {
	fmt.Fprintf(s.stderr, "sendmail: "+format+"\n", a...)
}

func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &sendmail{stdin: stdin, stdout: stdout, stderr: stderr}
	req, err := parseArgs(argv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exUsage
	}
	switch req.Mode {
	case ModeHelp:
		fmt.Fprint(stdout, usageText())
		return exOK
	case ModeVersion:
		fmt.Fprintf(stdout, "relaymail sendmail %s\n", version)
		return exOK
	case ModeDeliver:
	case ModeVerify, ModePrintQueue, ModeRunQueue:
	case ModeSMTP, ModeInitAliases:
		s.errorf("%s is not supported yet: this relaymail release delivers (-bm), verifies (-bv) and runs the queue (-q, mailq); -bs and aliases come in later releases", req.ModeArg)
		return exUsage
	default:
		s.errorf("%s is not supported: relaymail is a relay client, not a daemon or an address tester (use -bm, the default)", req.ModeArg)
		return exUsage
	}

	// Installed set-user-ID or set-group-ID, sendmail must not let the
	// caller choose the configuration: -C would read any file with our
	// privileges and echo it in an error, and RELAYMAIL_* could redirect
	// mail. DESIGN.md §4; the full privilege model is a later release.
	priv := privileged()
	if priv && req.ConfigPath != "" {
		s.errorf("-C is not permitted: this sendmail runs with set-user-ID or set-group-ID privileges and reads only %s", config.DefaultPath)
		return exNoPerm
	}
	cfg, err := config.Load(config.Options{Path: req.ConfigPath, IgnoreEnv: priv})
	if err != nil {
		s.errorf("%v", err)
		return exConfig
	}
	tag := "relaymail"
	if req.SyslogTag != "" {
		tag = req.SyslogTag
	}
	s.log = maillog.New(cfg.Log, tag, stderr)
	defer s.log.Close()
	switch req.Mode {
	case ModeVerify:
		return s.verify(req, cfg)
	case ModePrintQueue:
		return s.printQueue(req, cfg)
	case ModeRunQueue:
		return s.runQueue(req, cfg)
	}
	return s.deliver(req, cfg)
}

// injectOptions maps the command line and the configuration onto intake.
func injectOptions(req *request, cfg *config.Config) inject.Options {
	login, gecos := loginName()
	fullName := req.FullName
	if !req.FullNameSet {
		if n, ok := os.LookupEnv("NAME"); ok {
			fullName = n
		} else {
			fullName = gecos
		}
	}
	return inject.Options{
		Recipients:     req.Recipients,
		Extract:        req.Extract,
		IgnoreDots:     req.IgnoreDots,
		Sender:         req.Sender,
		SenderSet:      req.SenderSet,
		DefaultSender:  cfg.From,
		User:           login,
		FullName:       fullName,
		Domain:         cfg.Domain,
		Hostname:       cfg.Hostname,
		MaxHeaderBytes: cfg.MaxHeaderSize,
	}
}

// configPath names the configuration file for hints.
func configPath(cfg *config.Config) string {
	if cfg.Path != "" {
		return cfg.Path
	}
	return config.DefaultPath
}

// noSmarthost reports a configuration without smarthosts, where what was
// asked (why) cannot be done.
func (s *sendmail) noSmarthost(cfg *config.Config, why string) int {
	s.errorf("no smarthost is configured, %s (set smarthost in %s or RELAYMAIL_SMARTHOST, e.g. smtp://mail.example.com or qmtp://mx.example.com)", why, configPath(cfg))
	return exConfig
}

func (s *sendmail) deliver(req *request, cfg *config.Config) int {
	sm, code := s.newSubmitter(req, cfg)
	if sm == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	return sm.submit(ctx, s.stdin, injectOptions(req, cfg), false).exit
}

// submitter holds what every message of a run needs: the smarthost
// clients and the queue (nil when the queue is off). -bm submits one
// message, -bs one per SMTP transaction.
type submitter struct {
	s        *sendmail
	req      *request
	cfg      *config.Config
	relayers []relay.Relayer
	q        *queue.Queue
}

func (s *sendmail) newSubmitter(req *request, cfg *config.Config) (*submitter, int) {
	relayers, code := s.relayers(req, cfg)
	if code != exOK {
		return nil, code
	}
	sm := &submitter{s: s, req: req, cfg: cfg, relayers: relayers}
	if !cfg.Queue {
		if len(relayers) == 0 {
			return nil, s.noSmarthost(cfg, "the queue is off, so the message cannot be sent")
		}
		return sm, exOK
	}
	if sm.q, code = s.openQueue(cfg); sm.q == nil {
		return nil, code
	}
	return sm, exOK
}

// outcome is what became of one submitted message.
type outcome struct {
	results  []relay.Result // one per recipient; nil when nothing was tried
	queuedAs string         // the queue ID, when anything was committed
	exit     int            // sendmail's exit status for this message
	err      error          // a failure before delivery (already reported)
}

// submit reads one message from in, relays it and queues what must wait.
// With bounceFailed (-bs, where the failure of some recipients can no
// longer be reported per recipient once the message is accepted), the
// recipients that failed are committed too, so that the queue bounces them
// to the sender.
func (sm *submitter) submit(ctx context.Context, in io.Reader, opts inject.Options, bounceFailed bool) outcome {
	s, req, cfg := sm.s, sm.req, sm.cfg
	var sp *queue.Spool
	if sm.q != nil {
		var err error
		if sp, err = sm.q.NewSpool(); err != nil {
			s.errorf("%v", err)
			return outcome{exit: exCantCreat, err: err}
		}
		opts.SpoolFile = sp.File
	}
	sub, err := inject.Intake(in, opts)
	if err != nil {
		if sp != nil {
			sp.Discard()
		}
		s.errorf("%v", err)
		return outcome{exit: intakeExit(err), err: err}
	}
	defer sub.Close()
	env := envelopeFor(req, sub)
	id := ""
	if sp != nil {
		id = "queue id " + sp.ID + ", "
	}
	s.log.Info("%s: %sfrom=<%s>, size=%d, nrcpt=%d", sub.MessageID, id, env.Sender, sub.Message.Size, len(env.Recipients))

	mode := deliveryMode(req, cfg)
	if sp != nil && (len(sm.relayers) == 0 || mode != 'i') {
		if err := sm.q.Commit(sp, newEntry(&env, sub, nil, 0)); err != nil {
			s.errorf("cannot queue the message: %v", err)
			return outcome{exit: exCantCreat, err: err}
		}
		switch {
		case len(sm.relayers) == 0:
			s.errorf("no smarthost is configured: the message was queued as %s in %s (set smarthost in %s or RELAYMAIL_SMARTHOST, e.g. smtp://mail.example.com, then run sendmail -q)", sp.ID, cfg.QueueDir, configPath(cfg))
		case mode == 'b':
			s.detach(req, "-qI"+sp.ID)
		}
		return outcome{queuedAs: sp.ID, exit: exOK}
	}

	results, derr := relay.Deliver(ctx, sm.relayers, &env, &sub.Message)
	var keep []relay.Result
	pending := 0
	for _, r := range results {
		switch {
		case r.Class == relay.Deferred:
			keep = append(keep, r)
			pending++
		case r.Class == relay.Failed && bounceFailed:
			keep = append(keep, r)
		}
	}
	if pending == 0 && len(keep) == len(results) {
		keep = nil // every recipient failed: the caller hears it, no bounce
	}
	queuedAs := ""
	if sp != nil {
		if len(keep) > 0 {
			if err := sm.q.Commit(sp, newEntry(&env, sub, keep, 1)); err != nil {
				s.report(req, sub.MessageID, results, derr, "")
				s.errorf("cannot queue the deferred recipients: %v", err)
				return outcome{results: results, exit: exCantCreat, err: err}
			}
			queuedAs = sp.ID
		} else {
			sp.Discard()
		}
	}
	kept := queuedAs != "" && pending > 0
	reportedAs := ""
	if kept {
		reportedAs = queuedAs
	}
	s.report(req, sub.MessageID, results, derr, reportedAs)
	if sm.q != nil && cfg.FlushAfterSend && hasDelivered(results) {
		// The smarthost works: let a detached run drain what earlier runs
		// left (and send a bounce just queued), so that a container without
		// cron empties its queue. The message's own deferred recipients
		// alone are no reason: they would only be deferred again.
		own := 0
		if kept {
			own = 1
		}
		if entries, err := sm.q.List(); err == nil && len(entries) > own {
			s.detach(req, "-q")
		}
	}
	return outcome{results: results, queuedAs: queuedAs, exit: resultsExit(results, kept)}
}

// envelopeFor adds the command line's DSN and body parameters to what
// intake found.
func envelopeFor(req *request, sub *inject.Submission) relay.Envelope {
	env := sub.Envelope
	env.DSN = relay.DSN{Notify: req.Notify, Ret: req.Ret, EnvID: req.EnvID}
	env.Body = req.Body
	env.SMTPUTF8 = env.SMTPUTF8 || req.SMTPUTF8
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

// report writes the log line of each recipient and one stderr line per
// recipient that was not delivered (with -v also the delivered ones).
// queuedAs is the queue ID the deferred recipients were committed under,
// "" when they were not kept.
func (s *sendmail) report(req *request, msgID string, results []relay.Result, derr error, queuedAs string) {
	kept := queuedAs != ""
	deferred := 0
	shown := ""
	for _, r := range results {
		text := oneLine(resultText(r))
		s.log.Info("%s: to=<%s>, relay=%s, status=%s (%s)", msgID, r.Recipient, r.Host, statusWord(r.Class, kept), text)
		switch {
		case r.Class == relay.Failed, r.Class == relay.Deferred && !kept:
			s.errorf("%s: %s: %s", r.Recipient, r.Class, text)
			shown += text + "\n"
		case r.Class == relay.Deferred:
			s.errorf("%s: deferred: %s (queued as %s)", r.Recipient, text, queuedAs)
		case req.Verbose > 0:
			s.errorf("%s: %s via %s: %s", r.Recipient, r.Class, r.Host, text)
		}
		if r.Class == relay.Deferred {
			deferred++
		}
	}
	if deferred > 0 && !kept {
		// The session error usually is what the recipients' lines already
		// say; print it only when it adds something.
		if derr != nil {
			if msg := oneLine(derr.Error()); !strings.Contains(shown, msg) {
				s.errorf("%s", msg)
			}
		}
		s.errorf("%d of %d recipients were not sent and nothing was kept: the queue is off (send the message again later)", deferred, len(results))
	}
}

// relayers builds one client per configured smarthost.
func (s *sendmail) relayers(req *request, cfg *config.Config) ([]relay.Relayer, int) {
	relayers := make([]relay.Relayer, 0, len(cfg.Smarthosts))
	for _, u := range cfg.Smarthosts {
		r, err := u.Relayer(s.smarthostOptions(req, cfg))
		if err != nil {
			s.errorf("%v", err)
			return nil, exConfig
		}
		relayers = append(relayers, r)
	}
	return relayers, exOK
}

// privileged reports whether the process runs with privileges its caller
// does not have. A variable so that tests can pretend.
var privileged = func() bool {
	return os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid()
}

// smarthostOptions turns the configuration into client settings. With -v the
// protocol transcript goes to stderr (AUTH payloads are redacted by the
// client); warnings always reach the log, and stderr too with -v.
func (s *sendmail) smarthostOptions(req *request, cfg *config.Config) smarthost.Options {
	o := smarthost.Options{
		Hostname:       cfg.Hostname,
		Timeout:        cfg.Timeout,
		Password:       cfg.Password,
		TLSCAFile:      cfg.TLSCAFile,
		TLSCertFile:    cfg.TLSCertFile,
		TLSKeyFile:     cfg.TLSKeyFile,
		TLSFingerprint: cfg.TLSFingerprint,
		Warn: func(w string) {
			s.log.Warning("warning: %s", oneLine(w))
			if req.Verbose > 0 {
				s.errorf("warning: %s", oneLine(w))
			}
		},
	}
	if req.Verbose > 0 {
		o.Transcript = s.stderr
	}
	return o
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

// resultText is the server's answer as people quote it: "552 5.2.2 text"
// for SMTP and LMTP, the bare text for QMTP and for local decisions.
func resultText(r relay.Result) string {
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

// oneLine keeps a server's text on one stderr or log line and makes it
// harmless for a terminal: QMTP replies may hold arbitrary bytes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' && r != '\n' && r != '\r' || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// loginName returns the caller's login name and GECOS full name, from the
// password database by real uid, not from $USER, which the caller controls.
// A uid with no entry (a container's arbitrary uid) falls back to LOGNAME or
// USER, then to "uid<N>".
func loginName() (name, gecos string) {
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		g, _, _ := strings.Cut(u.Name, ",")
		return u.Username, g
	}
	for _, v := range []string{"LOGNAME", "USER"} {
		if n := os.Getenv(v); n != "" {
			return n, ""
		}
	}
	return "uid" + strconv.Itoa(os.Getuid()), ""
}

func intakeExit(err error) int {
	var ie *inject.Error
	if !errors.As(err, &ie) {
		return exSoftware
	}
	switch ie.Kind {
	case inject.KindUsage:
		return exUsage
	case inject.KindData:
		return exDataErr
	case inject.KindRead:
		return exIOErr
	case inject.KindSpool:
		return exCantCreat
	}
	return exSoftware
}
