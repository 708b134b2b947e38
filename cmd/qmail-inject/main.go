// Command qmail-inject is relaymail's qmail-inject(8): the qmail dialect of
// message submission. It reads qmail-inject's flags and environment
// (QMAILUSER, QMAILHOST, QMAILINJECT, ...), turns them into intake options,
// and then does exactly what sendmail does: the same intake, the same queue
// and the same smarthosts (internal/submit). It exits 0, 100 for a usage
// or permanent error, or 111 for a temporary one.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pborman/getopt/v2"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/maillog"
	"github.com/relaymail/relaymail/internal/privsep"
	"github.com/relaymail/relaymail/internal/submit"
	"github.com/relaymail/relaymail/relay/inject"
)

// defaultConfig is the configuration file, and the only one a privileged
// run reads; it can be set when the program is built (-ldflags "-X
// main.defaultConfig=/path"), never when it runs.
var defaultConfig = config.DefaultPath

// keptEnv are the variables that still count when qmail-inject runs with
// privileges its caller lacks: qmail-inject(8)'s own, which say what the
// caller could say in the message anyway. QMAILMFTFILE is read with the
// caller's own privileges. privsep.Start removes every other variable.
var keptEnv = []string{
	"QMAILINJECT", "QMAILUSER", "MAILUSER", "USER", "LOGNAME", "QMAILHOST", "MAILHOST",
	"QMAILNAME", "MAILNAME", "NAME", "QMAILSUSER", "QMAILSHOST", "QMAILDEFAULTHOST",
	"QMAILDEFAULTDOMAIN", "QMAILPLUSDOMAIN", "QMAILIDHOST", "QMAILMFTFILE",
}

func main() {
	if err := privsep.Start(privsep.Options{Keep: keptEnv}); err != nil {
		fmt.Fprintf(os.Stderr, "qmail-inject: fatal: %v\n", err)
		os.Exit(exTemp)
	}
	submit.OneCPU()
	os.Exit(run(os.Args, os.LookupEnv, os.Stdin, os.Stdout, os.Stderr))
}

// request is the parsed command line.
type request struct {
	strategy    inject.Strategy
	print       bool // -n
	sender      string
	senderSet   bool // -f
	fullName    string
	fullNameSet bool // -F (an extension)
	recipients  []string
}

// usageError is a command line qmail-inject does not understand.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

const usage = "usage: qmail-inject [-nNaAhH] [-f sender] [-F name] [recipient ...]; see qmail-inject(8)"

// parseArgs reads qmail-inject's getopt string "aAhHnNf:" plus F:, with
// getopt's rules: options may be grouped (-nf joe), a value is glued or the
// next argument, and the options end at the first recipient or at "--".
func parseArgs(argv []string) (*request, error) {
	r := &request{}
	s := getopt.New()
	var a, A, h, H, n, N bool
	var f, F string
	s.Flag(&a, 'a')
	s.Flag(&A, 'A')
	s.Flag(&h, 'h')
	s.Flag(&H, 'H')
	s.Flag(&n, 'n')
	s.Flag(&N, 'N')
	fOpt := s.Flag(&f, 'f')
	FOpt := s.Flag(&F, 'F')
	args := []string{"qmail-inject"}
	if len(argv) > 1 {
		args = append(args, argv[1:]...)
	}
	// The last of -a -A -h -H wins, and so does the last of -n -N, as
	// qmail-inject's getopt loop sets one variable per letter.
	err := s.Getopt(args, func(o getopt.Option) bool {
		switch o.ShortName() {
		case "a":
			r.strategy = inject.StrategyArgs
		case "A":
			r.strategy = inject.StrategyArgsOrHeader
		case "h":
			r.strategy = inject.StrategyHeader
		case "H":
			r.strategy = inject.StrategyBoth
		case "n":
			r.print = true
		case "N":
			r.print = false
		case "f":
			r.sender, r.senderSet = fOpt.String(), true
		case "F":
			r.fullName, r.fullNameSet = FOpt.String(), true
		}
		return true
	})
	if err != nil {
		var ge *getopt.Error
		if errors.As(err, &ge) && ge.ErrorCode == getopt.MissingParameter {
			return nil, &usageError{fmt.Sprintf("option %s needs a value (%s)", ge.Name, usage)}
		}
		if errors.As(err, &ge) && ge.ErrorCode == getopt.UnknownOption {
			return nil, &usageError{fmt.Sprintf("unknown option %q (%s)", ge.Name, usage)}
		}
		return nil, &usageError{fmt.Sprintf("%v (%s)", err, usage)}
	}
	if r.strategy == 0 {
		r.strategy = inject.StrategyArgsOrHeader // -A, the default
	}
	r.recipients = s.Args()
	return r, nil
}

// injector is one run.
type injector struct {
	getenv         func(string) (string, bool)
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (q *injector) fatalf(format string, a ...any) {
	fmt.Fprintf(q.stderr, "qmail-inject: fatal: "+format+"\n", a...)
}

func (q *injector) errorf(format string, a ...any) {
	fmt.Fprintf(q.stderr, "qmail-inject: "+format+"\n", a...)
}

// env returns the first of names that is set and not empty. qmail reads an
// empty variable as set, which gives addresses such as "@host"; an empty
// variable here counts as unset, as in relaymail's configuration.
func (q *injector) env(names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := q.getenv(n); ok && v != "" {
			return v, true
		}
	}
	return "", false
}

func run(argv []string, getenv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	q := &injector{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	req, err := parseArgs(argv)
	if err != nil {
		q.fatalf("%v", err)
		return exitStatus(submit.Outcome{}, err)
	}
	priv := privileged()
	var cfg *config.Config
	err = privsep.Do(func() (err error) {
		cfg, err = config.Load(config.Options{DefaultPath: defaultConfig, IgnoreEnv: priv, Getenv: getenv})
		return err
	})
	if err != nil {
		q.privateError("the configuration in "+defaultConfig, err)
		return exitStatus(submit.Outcome{}, &configError{err})
	}
	m, err := submit.LoadAliases(cfg)
	if err != nil {
		q.privateError("the alias file "+cfg.Aliases, err)
		return exitStatus(submit.Outcome{}, &configError{err})
	}
	opts, err := q.options(req, cfg)
	if err != nil {
		q.fatalf("%v", err)
		return exitStatus(submit.Outcome{}, err)
	}
	submit.Local(&opts, cfg, m)
	opts.LocalDomains = append(opts.LocalDomains, opts.Domain)

	if req.print {
		// -n prints the message and queues nothing.
		if err := privsep.Drop(); err != nil {
			q.fatalf("%v", err)
			return exTemp
		}
		return q.print(opts)
	}
	log := maillog.New(cfg.Log, "relaymail", stderr)
	defer log.Close()
	for _, w := range cfg.Warnings {
		q.errorf("warning: %s", w)
		log.Warning("warning: %s", w)
	}
	sm := &submit.Submitter{Config: cfg, Log: log, Errorf: q.errorf, Fatalf: q.fatalf}
	if err := sm.Open(); err != nil {
		return exitStatus(submit.Outcome{}, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	// qmail-inject has no queue runner of its own: it always tries at
	// once and leaves what is deferred to sendmail -q.
	o, err := sm.Submit(ctx, stdin, submit.Message{Intake: opts, Mode: 'i'})
	return exitStatus(o, err)
}

// privateError reports a configuration or alias file that cannot be used.
// Its message may quote the file, which the caller of a privileged run
// may not read: a caller other than root then gets only which file it is,
// and the details go to syslog (sendmail does the same).
func (q *injector) privateError(what string, err error) {
	if uid, _ := privsep.Caller(); !privileged() || uid == 0 {
		q.fatalf("%v", err)
		return
	}
	log := maillog.SyslogOnly("relaymail")
	log.Warning("qmail-inject: %s: %v", what, err)
	log.Close()
	q.fatalf("%s cannot be used; the details are in the mail log (ask the administrator)", what)
}

// print is -n: the message as it would be queued, after a Return-Path line
// with the envelope sender, on standard output.
func (q *injector) print(opts inject.Options) int {
	opts.AllowNoRecipients = true
	sub, err := inject.Intake(q.stdin, opts)
	if err != nil {
		q.fatalf("%v", err)
		return exitStatus(submit.Outcome{}, err)
	}
	defer sub.Close()
	w := bufio.NewWriter(q.stdout)
	fmt.Fprintf(w, "Return-Path: <%s>\n", quoteAddr(sub.Envelope.Sender))
	if _, err := io.Copy(w, sub.Message.Reader()); err != nil {
		q.fatalf("cannot read the spooled message: %v", err)
		return exitStatus(submit.Outcome{}, &tempError{err})
	}
	if err := w.Flush(); err != nil {
		q.fatalf("cannot write the message: %v", err)
		return exitStatus(submit.Outcome{}, &tempError{err})
	}
	return exOK
}

// headerFields are the fields qmail-inject rewrites (qmail-header(5)).
var headerFields = []string{
	"To", "Cc", "Bcc", "Apparently-To", "Resent-To", "Resent-Cc", "Resent-Bcc",
	"Sender", "From", "Reply-To", "Return-Receipt-To", "Errors-To",
	"Resent-Sender", "Resent-From", "Resent-Reply-To",
}

// options maps the command line, the environment and the configuration onto
// intake, as qmail-inject.c's main and getcontrols do.
func (q *injector) options(req *request, cfg *config.Config) (inject.Options, error) {
	letters, _ := q.env("QMAILINJECT")
	has := func(c byte) bool { return strings.IndexByte(letters, c) >= 0 }

	user, ok := q.env("QMAILUSER", "MAILUSER", "USER", "LOGNAME")
	if !ok {
		user = "anonymous"
	}
	host, hostSet := q.env("QMAILHOST", "MAILHOST")
	name, _ := q.env("QMAILNAME", "MAILNAME", "NAME")
	if req.fullNameSet {
		name = req.fullName
	}
	suser, ok := q.env("QMAILSUSER")
	if !ok {
		suser = user
	}
	shost, shostSet := q.env("QMAILSHOST")
	if !shostSet {
		shost, shostSet = host, hostSet
	}
	rw := rewriter{defaultHost: cfg.Domain, defaultDomain: cfg.Domain, plusDomain: cfg.Domain}
	if v, ok := q.env("QMAILDEFAULTHOST"); ok {
		rw.defaultHost = v
	}
	if v, ok := q.env("QMAILDEFAULTDOMAIN"); ok {
		rw.defaultDomain = v
	}
	if v, ok := q.env("QMAILPLUSDOMAIN"); ok {
		rw.plusDomain = v
	}
	idhost := cfg.Hostname
	if v, ok := q.env("QMAILIDHOST"); ok {
		idhost = v
	}
	pid := os.Getpid()

	// The From address: the user, at the host when one is set; the
	// rewrite adds defaulthost otherwise.
	from := quoteLocal(user)
	if hostSet {
		from += "@" + host
	}
	fromAddr, err := rewriteOne(rw, from)
	if err != nil {
		return inject.Options{}, &usageError{fmt.Sprintf("the From address %q from QMAILUSER/QMAILHOST is not an address: %v", from, err)}
	}

	// The default envelope sender, with the m and r letters' VERP marks.
	hacked := suser
	if has('m') {
		hacked += "-" + strconv.FormatInt(time.Now().Unix(), 10) + "." + strconv.Itoa(pid)
	}
	verp := ""
	if has('r') {
		hacked += "-"
		verp = "-@[]"
	}
	sender := quoteLocal(hacked)
	if shostSet {
		sender += "@" + shost
	}

	o := inject.Options{
		Recipients:      req.recipients,
		Sender:          req.sender,
		SenderSet:       req.senderSet,
		DefaultSender:   sender,
		User:            user,
		FullName:        name,
		Domain:          rw.defaultHost,
		Hostname:        idhost,
		MaxHeaderBytes:  cfg.MaxHeaderSize,
		MaxMessageBytes: cfg.MaxMessageSize,
		// qmail has no dot convention: a lone "." is a line of the message.
		IgnoreDots:                 true,
		Strategy:                   req.strategy,
		ApparentlyTo:               true,
		ResentRecipientsOnly:       true,
		TolerateBadRecipientFields: true,
		MboxLine:                   true,
		ReturnPathSetsSender:       !has('s'),
		VERPSuffix:                 verp,
		DeleteFrom:                 has('f'),
		DeleteMessageID:            has('i'),
		AddCcWhenNoRecipients:      true,
		GeneratedFirst:             true,
		DateFormat:                 qmailDate,
		MessageID: func(now time.Time) string {
			return fmt.Sprintf("<%s.%d.qmail@%s>", now.UTC().Format("20060102150405"), pid, idhost)
		},
		FromAddress:  fromAddr,
		FromFormat:   fromFormat(has('c')),
		Rewrite:      rw.rewrite,
		StrictFields: true,
		SpaceIsComma: true,
	}
	o.RewriteFields = append([]string{}, headerFields...)
	if !has('s') {
		// Without s the Return-Path field is read (and must parse); with
		// s it is not even looked at. It is deleted either way.
		o.RewriteFields = append(o.RewriteFields, "Return-Path")
	}
	if path, ok := q.env("QMAILMFTFILE"); ok {
		lists, err := readMFT(path)
		if err != nil {
			return inject.Options{}, &tempError{err}
		}
		o.MailFollowupTo = lists
	}
	if !cfg.AllowFromOverride {
		// allow_from_override no: no caller-chosen sender, from -f, from
		// Return-Path or from the environment; the sender is the
		// configured from, or the login name of the real user.
		o.SenderSet, o.Sender = false, ""
		o.ReturnPathSetsSender = false
		o.VERPSuffix = ""
		o.DefaultSender = cfg.From
		if o.DefaultSender == "" {
			o.DefaultSender = loginName()
		}
	}
	return o, nil
}

// rewriteOne rewrites one raw address as a header address would be.
func rewriteOne(rw rewriter, raw string) (string, error) {
	env, err := inject.Envelope(inject.Options{Sender: raw, SenderSet: true, Rewrite: rw.rewrite, User: "x", Domain: rw.defaultHost})
	if err != nil {
		return "", err
	}
	return env.Sender, nil
}

// qmailDate is newfield.c's date: "26 Sep 1995 04:46:53 -0000", in UTC,
// without a weekday, the day not padded.
func qmailDate(t time.Time) string {
	return t.UTC().Format("2 Jan 2006 15:04:05 -0000")
}

// fromFormat renders the generated From field: "Name" <user@host>, or with
// the c letter user@host (Name).
func fromFormat(comment bool) func(name, addr string) string {
	return func(name, addr string) string {
		switch {
		case name == "":
			return addr
		case comment:
			r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
			return addr + " (" + r.Replace(name) + ")"
		}
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
		return `"` + r.Replace(name) + `" <` + addr + `>`
	}
}

// readMFT reads QMAILMFTFILE: one mailing list address a line. A missing
// file means no lists, as qmail's control_readfile has it.
func readMFT(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read QMAILMFTFILE %s: %w", path, err)
	}
	var lists []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lists = append(lists, l)
		}
	}
	return lists, nil
}

// loginName is the real user's login name from the password database, not
// from the environment, which the caller controls.
func loginName() string {
	uid, _ := privsep.Caller()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid" + strconv.Itoa(uid)
}

// privileged reports whether the process runs with privileges its caller
// does not have; then the caller's RELAYMAIL_* environment is ignored.
var privileged = privsep.Privileged
