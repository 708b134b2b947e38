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
	"os/user"
	"strconv"
	"strings"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/maillog"
	"github.com/relaymail/relaymail/internal/privsep"
	"github.com/relaymail/relaymail/internal/submit"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/inject"
	"github.com/relaymail/relaymail/relay/smarthost"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

// defaultConfig is the configuration file read when no other is named, and
// the only one a privileged (set-group-ID) run reads. Like version it can
// be set when the program is built (-ldflags "-X
// main.defaultConfig=/path", which the attacker tests of e2e/ use), never
// when it runs.
var defaultConfig = config.DefaultPath

// keptEnv are the environment variables that still count when sendmail runs
// with privileges its caller lacks; privsep.Start removes all the others.
var keptEnv = []string{"NAME"}

func main() {
	// Before anything else: a privileged run must not read its caller's
	// environment, or let it see its memory, before this.
	if err := privsep.Start(privsep.Options{Keep: keptEnv}); err != nil {
		fmt.Fprintf(os.Stderr, "sendmail: fatal: %v\n", err)
		os.Exit(exOSErr)
	}
	submit.OneCPU()
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
	case ModeHelp, ModeVersion:
		// Nothing here needs the installed privileges.
		if err := privsep.Drop(); err != nil {
			s.errorf("fatal: %v", err)
			return exOSErr
		}
		if req.Mode == ModeHelp {
			fmt.Fprint(stdout, usageText())
		} else {
			fmt.Fprintf(stdout, "relaymail sendmail %s\n", version)
		}
		return exOK
	case ModeDeliver:
	case ModeVerify, ModePrintQueue, ModeRunQueue, ModeSMTP:
	case ModeInitAliases:
	default:
		what, reason := modeDoc(req.ModeArg)
		s.errorf("%s (%s) is not supported: %s", req.ModeArg, what, reason)
		return exUsage
	}

	// Installed set-user-ID or set-group-ID, sendmail must not let the
	// caller choose the configuration: -C would read any file with our
	// privileges and echo it in an error, and RELAYMAIL_* could redirect
	// mail (SECURITY.md; privsep has already removed RELAYMAIL_* from the
	// environment, and IgnoreEnv makes sure).
	priv := privileged()
	if priv && req.ConfigPath != "" {
		s.errorf("-C is not permitted: this sendmail runs with set-user-ID or set-group-ID privileges and reads only %s", defaultConfig)
		return exNoPerm
	}
	tag := "relaymail"
	if req.SyslogTag != "" {
		tag = req.SyslogTag
	}
	var cfg *config.Config
	err = privsep.Do(func() (err error) {
		cfg, err = config.Load(config.Options{Path: req.ConfigPath, DefaultPath: defaultConfig, IgnoreEnv: priv})
		return err
	})
	if err != nil {
		return s.configError(err, priv, tag)
	}
	s.log = maillog.New(cfg.Log, tag, stderr)
	defer s.log.Close()
	for _, w := range cfg.Warnings {
		s.errorf("warning: %s", w)
		s.log.Warning("warning: %s", w)
	}
	if req.Mode == ModeInitAliases {
		return s.newaliases(cfg)
	}
	if code := s.loadAliases(req, cfg); code != exOK {
		return code
	}
	switch req.Mode {
	case ModeVerify:
		return s.verify(req, cfg)
	case ModePrintQueue:
		return s.printQueue(req, cfg)
	case ModeRunQueue:
		return s.runQueue(req, cfg)
	case ModeSMTP:
		return s.serveSMTP(req, cfg)
	}
	return s.deliver(req, cfg)
}

// configError reports a configuration that cannot be loaded. Its message
// may quote the file (a value, or a key that was really a stray password);
// a caller of a privileged run, who may not read the file, gets only where
// the mistake is, and the details go to syslog for the administrator.
// Root, who may read the file anyway, gets them as everybody else does.
func (s *sendmail) configError(err error, priv bool, tag string) int {
	if uid, _ := privsep.Caller(); !priv || uid == 0 {
		s.errorf("%v", err)
		return exConfig
	}
	log := maillog.SyslogOnly(tag)
	log.Warning("configuration error: %v", err)
	log.Close()
	where := defaultConfig
	var ce *config.Error
	if errors.As(err, &ce) && ce.File == defaultConfig && ce.Line > 0 {
		where += fmt.Sprintf(", line %d,", ce.Line)
	}
	s.errorf("the configuration in %s cannot be used; the details are in the mail log, not here, because the file is not yours to read (ask the administrator, who can run sendmail -bv as root to see them)", where)
	return exConfig
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
	o := inject.Options{
		Recipients:      req.Recipients,
		Extract:         req.Extract,
		IgnoreDots:      req.IgnoreDots,
		Sender:          req.Sender,
		SenderSet:       req.SenderSet,
		DefaultSender:   cfg.From,
		User:            login,
		FullName:        fullName,
		Domain:          cfg.Domain,
		Hostname:        cfg.Hostname,
		MaxHeaderBytes:  cfg.MaxHeaderSize,
		MaxMessageBytes: cfg.MaxMessageSize,
	}
	localOptions(&o, req, cfg)
	return o
}

// modeDoc finds what a -b mode means and why relaymail refuses it, in the
// flag table, so that the message says what sendmail(8) says.
func modeDoc(modeArg string) (what, reason string) {
	for _, f := range flags {
		if f.letter == 'b' && f.sub != "" && "-b"+f.sub == modeArg {
			return f.what, f.reason
		}
	}
	return "an unknown mode", "see sendmail(8)"
}

// configPath names the configuration file for hints.
func configPath(cfg *config.Config) string {
	if cfg.Path != "" {
		return cfg.Path
	}
	return defaultConfig
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
	// SIGTERM, SIGINT and SIGHUP cancel a delivery that has run for a
	// second (see lateSignalContext for why not at once).
	ctx, stop := lateSignalContext(context.Background(), lateSignalsAfter)
	defer stop()
	return sm.submit(ctx, s.stdin, injectOptions(req, cfg), false).exit
}

// submitter holds what every message of a run needs: the shared delivery
// path (internal/submit, which qmail-inject uses too) with its smarthost
// clients and queue. -bm submits one message, -bs one per SMTP
// transaction.
type submitter struct {
	s   *sendmail
	req *request
	cfg *config.Config
	sub *submit.Submitter
}

// submitterFor is the shared delivery path with sendmail's stderr, -v and
// detached queue runs.
func (s *sendmail) submitterFor(req *request, cfg *config.Config) *submit.Submitter {
	return &submit.Submitter{
		Config:     cfg,
		Log:        s.log,
		Errorf:     s.errorf,
		Verbose:    req.Verbose,
		Transcript: s.stderr,
		Detach:     func(args ...string) { s.detach(req, args...) },
	}
}

func (s *sendmail) newSubmitter(req *request, cfg *config.Config) (*submitter, int) {
	sub := s.submitterFor(req, cfg)
	if err := sub.Open(); err != nil {
		return nil, submitExit(err)
	}
	return &submitter{s: s, req: req, cfg: cfg, sub: sub}, exOK
}

// checkSpool reports a spool that cannot take a message before an SMTP
// session accepts any. A single submission needs no such check: it creates
// its spool file before it reads the message.
func (sm *submitter) checkSpool() int {
	q := sm.sub.Queue
	if q == nil {
		return exOK
	}
	if err := privsep.Do(q.CheckWritable); err != nil {
		sm.s.errorf("%v", err)
		return exCantCreat
	}
	return exOK
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
	req := sm.req
	o, err := sm.sub.Submit(ctx, in, submit.Message{
		Intake:       opts,
		DSN:          relay.DSN{Notify: req.Notify, Ret: req.Ret, EnvID: req.EnvID},
		Body:         req.Body,
		SMTPUTF8:     req.SMTPUTF8,
		Mode:         deliveryMode(req, sm.cfg),
		BounceFailed: bounceFailed,
	})
	exit := resultsExit(o.Results, o.Kept)
	if err != nil {
		exit = submitExit(err)
	}
	return outcome{results: o.Results, queuedAs: o.QueuedAs, exit: exit, err: err}
}

// submitExit maps a failure of the shared delivery path (already reported
// on stderr) to its sysexits code.
func submitExit(err error) int {
	var se *submit.Error
	if errors.As(err, &se) {
		if se.Kind == submit.KindConfig {
			return exConfig
		}
		return exCantCreat
	}
	return intakeExit(err)
}

// relayers builds one client per configured smarthost.
func (s *sendmail) relayers(req *request, cfg *config.Config) ([]relay.Relayer, int) {
	relayers, err := s.submitterFor(req, cfg).NewRelayers()
	if err != nil {
		return nil, exConfig
	}
	return relayers, exOK
}

// privileged reports whether the process runs with privileges its caller
// does not have (privsep.Start saw real and effective IDs differ). A
// variable so that tests can pretend.
var privileged = privsep.Privileged

// smarthostOptions turns the configuration into client settings. With -v the
// protocol transcript goes to stderr (AUTH payloads are redacted by the
// client); warnings always reach the log, and stderr too with -v.
func (s *sendmail) smarthostOptions(req *request, cfg *config.Config) smarthost.Options {
	return s.submitterFor(req, cfg).SmarthostOptions()
}

// resultText is the server's answer as people quote it: "552 5.2.2 text"
// for SMTP and LMTP, the bare text for QMTP and for local decisions.
func resultText(r relay.Result) string { return submit.ResultText(r) }

// oneLine keeps a server's text on one stderr or log line and makes it
// harmless for a terminal: QMTP replies may hold arbitrary bytes.
func oneLine(s string) string { return submit.OneLine(s) }

// loginName returns the caller's login name and GECOS full name, from the
// password database by real uid, not from $USER, which the caller controls.
// A uid with no entry (a container's arbitrary uid) falls back to LOGNAME or
// USER, then to "uid<N>"; a privileged run, whose caller could name anyone
// so, goes straight to "uid<N>".
func loginName() (name, gecos string) {
	uid, _ := privsep.Caller()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		g, _, _ := strings.Cut(u.Name, ",")
		return u.Username, g
	}
	if !privileged() {
		for _, v := range []string{"LOGNAME", "USER"} {
			if n := os.Getenv(v); n != "" {
				return n, ""
			}
		}
	}
	return "uid" + strconv.Itoa(uid), ""
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
