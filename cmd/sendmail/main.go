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
	case ModeSMTP, ModePrintQueue, ModeInitAliases, ModeVerify, ModeRunQueue:
		s.errorf("%s is not supported yet: this relaymail release only delivers messages (mode -bm); the queue, -bs and -bv come in later releases", req.ModeArg)
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
	return s.deliver(req, cfg)
}

func (s *sendmail) deliver(req *request, cfg *config.Config) int {
	if len(cfg.Smarthosts) == 0 {
		where := config.DefaultPath
		if cfg.Path != "" {
			where = cfg.Path
		}
		s.errorf("no smarthost is configured, so the message cannot be sent (set smarthost in %s or RELAYMAIL_SMARTHOST, e.g. qmtp://mx.example.com)", where)
		return exConfig
	}
	relayers := make([]relay.Relayer, 0, len(cfg.Smarthosts))
	for _, u := range cfg.Smarthosts {
		r, err := u.Relayer(smarthost.Options{Hostname: cfg.Hostname, Timeout: cfg.Timeout})
		if err != nil {
			s.errorf("%v", err)
			return exConfig
		}
		relayers = append(relayers, r)
	}

	login, gecos := loginName()
	fullName := req.FullName
	if !req.FullNameSet {
		if n, ok := os.LookupEnv("NAME"); ok {
			fullName = n
		} else {
			fullName = gecos
		}
	}
	sub, err := inject.Intake(s.stdin, inject.Options{
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
	})
	if err != nil {
		s.errorf("%v", err)
		return intakeExit(err)
	}
	defer sub.Close()
	env := sub.Envelope
	env.DSN = relay.DSN{Notify: req.Notify, Ret: req.Ret, EnvID: req.EnvID}
	env.Body = req.Body
	env.SMTPUTF8 = env.SMTPUTF8 || req.SMTPUTF8

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	results, derr := relay.Deliver(ctx, relayers, &env, &sub.Message)

	s.log.Info("%s: from=<%s>, size=%d, nrcpt=%d", sub.MessageID, env.Sender, sub.Message.Size, len(env.Recipients))
	deferred := 0
	for _, r := range results {
		text := oneLine(r.Text)
		s.log.Info("%s: to=<%s>, relay=%s, status=%s (%s)", sub.MessageID, r.Recipient, r.Host, statusWord(r.Class), text)
		switch {
		case r.Class != relay.Delivered:
			s.errorf("%s: %s: %s", r.Recipient, r.Class, text)
		case req.Verbose > 0:
			s.errorf("%s: %s via %s: %s", r.Recipient, r.Class, r.Host, text)
		}
		if r.Class == relay.Deferred {
			deferred++
		}
	}
	if deferred > 0 {
		if derr != nil {
			s.errorf("%v", oneLine(derr.Error()))
		}
		s.errorf("%d of %d recipients were not sent and nothing was kept: this release has no queue (send the message again later)", deferred, len(results))
	}
	return resultsExit(results)
}

// privileged reports whether the process runs with privileges its caller
// does not have. A variable so that tests can pretend.
var privileged = func() bool {
	return os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid()
}

func statusWord(c relay.Class) string {
	switch c {
	case relay.Delivered:
		return "sent"
	case relay.Failed:
		return "bounced"
	}
	return "deferred"
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
