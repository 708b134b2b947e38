package main

// The sendmail command line.
//
// Callers (PHP mail(), PHPMailer, cron, mutt, mailx, git send-email, ...)
// pass the letters of Sendmail 8 and Postfix, so relaymail accepts the union of
// both getopt strings:
//
//	Postfix    A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx
//	Sendmail 8 A:B:b:C:cD:d:e:F:f:Gh:IiL:M:mN:nO:o:p:Q:q:R:r:sTtUV:vX: (8.17)
//
// Every letter is in one table, flags below, with what it means and what
// relaymail does about it. The table drives the parser, the checks in
// args_test.go and the --help text, so the three cannot drift apart.
//
// The parsing rules follow Postfix on Linux (getopt "+..."):
//   - options may be grouped (-ti) and take their value glued (-fuser@x) or as
//     the next argument (-f user@x); a value beginning with "-" is still the
//     value (-f -t sets the sender "-t"), as POSIX getopt does;
//   - option parsing stops at the first operand or at "--"; nothing after the
//     first recipient is ever read as an option (no GNU-style permutation),
//     because permutation would let a recipient such as "-X/path" that an
//     application copied from a web form turn into an option;
//   - without "--", an operand that begins with "-" is refused. With "--",
//     every operand is a recipient (Postfix sendmail(1), SECURITY: "system
//     arguments -- user arguments").
//   - unknown letters are usage errors (Postfix: EX_USAGE), never ignored.
//
// Deviations from the other implementations, and why:
//   - a bare -q is handled by getopt's optional value (SetOptional), which
//     only takes a glued value, instead of a separate pre-pass over argv as in
//     Postfix. The effect for "-q" at an argument boundary is the same (it never
//     takes the next argument), and it is decided at the same position as every
//     other option, so "-f -q" is still the sender "-q" and "a@b -q" is still an
//     operand. A pre-pass that looked for "-q" anywhere in argv would get both
//     wrong. The one difference: a q at the end of a group ("-vq 5m") also takes
//     no value, where Postfix's getopt would take "5m"; relaymail's reading
//     never swallows an argument.
//   - -X is refused (Postfix's code is fatal for it too, although its man page
//     says "ignored"), -n is honoured (Postfix refuses it), and an invalid -N is
//     an error (Postfix only warns).
//   - Postfix's deprecated VERP forms "-V" and "-Vxy" do not exist: -V is always
//     the DSN envelope id.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/pborman/getopt/v2"
)

// Mode is what sendmail was asked to do.
type Mode int

const (
	ModeDeliver     Mode = iota // -bm, the default
	ModeSMTP                    // -bs
	ModePrintQueue              // -bp, argv[0] mailq
	ModeInitAliases             // -bi, -I, argv[0] newaliases
	ModeVerify                  // -bv
	ModeRunQueue                // -q[...]
	ModeDaemon                  // -bd, -bD, -bl
	ModeUnsupported             // -bt -ba -bh -bH -bC -bP
	ModeHelp                    // --help as the first argument
	ModeVersion                 // --version as the first argument
)

func (m Mode) String() string {
	switch m {
	case ModeDeliver:
		return "deliver"
	case ModeSMTP:
		return "smtp"
	case ModePrintQueue:
		return "print-queue"
	case ModeInitAliases:
		return "init-aliases"
	case ModeVerify:
		return "verify"
	case ModeRunQueue:
		return "run-queue"
	case ModeDaemon:
		return "daemon"
	case ModeUnsupported:
		return "unsupported"
	case ModeHelp:
		return "help"
	case ModeVersion:
		return "version"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// request is the parsed command line. Nothing in it has been checked beyond
// the syntax of the flags: intake splits and validates the addresses.
type request struct {
	Mode         Mode
	ModeArg      string   // what chose the mode, for messages: "-bs", "-q5m", "-I", "mailq"; "" for the default
	QueueArg     string   // the value glued to the last -q ("" for a bare -q), as given
	Recipients   []string // raw recipient operands, unsplit, in order
	DashDash     bool     // "--" ended the options
	Extract      bool     // -t
	IgnoreDots   bool     // -i or -oi
	Sender       string   // -f / -r value as given; "" and "<>" are the null sender
	SenderSet    bool     // -f or -r was given
	FullName     string   // -F
	FullNameSet  bool     // -F was given
	ConfigPath   string   // -C
	Notify       []string // -N, upper case: NEVER alone, or a set of SUCCESS, FAILURE, DELAY
	Ret          string   // -R: FULL or HDRS
	EnvID        string   // -V: 1..100 octets of printable ASCII (33..126)
	Body         string   // -B: 7BIT or 8BITMIME
	SMTPUTF8     bool     // -O SMTPUTF8=yes (Postfix); -U is not this
	DeliveryMode byte     // -od<x>: 'i', 'b', 'q' or 'd'; 0 when not given
	Verbose      int      // count of -v
	SyslogTag    string   // -L
	NoAliases    bool     // -n
	Ignored      []string // flags accepted and ignored, glued to their value ("-oem", "-h17"), in order
	JSON         bool     // --json as the first argument: the queue listing as JSON (mailq --json)
}

// usageError is a command-line error. Its text is the complete message for
// the user; main prints it and exits with EX_USAGE (64).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError whose text is "sendmail: " followed by the
// formatted message.
func usagef(format string, a ...any) error {
	return &usageError{msg: "sendmail: " + fmt.Sprintf(format, a...)}
}

// usageLine ends the messages about unknown options.
const usageLine = "usage: sendmail [options] [--] recipient ...; see sendmail(8)"

// action says what relaymail does with a flag.
type action int

const (
	actUse         action = iota // the flag changes what relaymail does
	actIgnore                    // accepted for compatibility, no effect
	actUnsupported               // accepted by the parser; the mode it selects is refused at run time
	actRefuse                    // the command line is refused at once
)

// flagSpec is one row of the flag table.
type flagSpec struct {
	// letter is the getopt letter. Rows with a sub key describe what a
	// letter's value selects: the -b modes, the -o short options and the -O
	// long options.
	letter rune
	// sub is "" for the row of the letter itself; otherwise the mode letter
	// (-b), the option letter (-o) or the option name (-O), and "*" for "any
	// other".
	sub string
	// value says that the letter takes a value (":" in a getopt string).
	value bool
	// gluedOnly makes the value optional: it counts only when glued to the
	// letter (-q5m), and a bare letter never takes the next argument.
	gluedOnly bool
	// syntax is how --help and sendmail(8) show the flag.
	syntax string
	act    action
	// what is what the flag means to the programs that pass it.
	what string
	// reason is what relaymail does about it, and why; it may be empty for
	// flags whose meaning says it all.
	reason string
	// handle applies the flag. given is the flag as given, glued to its
	// value ("-fuser@x", "-oem"); value is the letter's value, or for a sub
	// row the part of it after the sub key ("m" for -oem).
	handle func(r *request, given, value string) error
}

// Reasons shared by several rows.
const (
	reasonErrorMode = "relaymail reports every failure on stderr and in its exit status"
	reasonSettings  = "relaymail takes its settings from its configuration, never from the caller's command line"
	reasonNoFiles   = "relaymail never writes files named by its caller"
	reasonNoDaemon  = "relaymail does not listen on the network: for applications that can only speak SMTP to a local port, run sendmail -bs from systemd socket activation (Accept=yes) or inetd"
)

// flags is the flag table: every letter of both getopt strings once (sub ""),
// then the values of -b, -o and -O that mean something.
var flags = []flagSpec{
	{letter: 'A', value: true, syntax: "-A <x>", act: actIgnore,
		what:   "-Am reads sendmail.cf, -Ac reads submit.cf (sendmail 8)",
		reason: "relaymail has one configuration for every submission; Postfix ignores it too",
		handle: ignore},
	{letter: 'B', value: true, syntax: "-B <type>", act: actUse,
		what:   "body type of the message, 7BIT or 8BITMIME, sent to the smarthost as BODY= (Debian cron, systemd-cron and mutt pass -B8BITMIME)",
		reason: "any other value is an error, as in Postfix",
		handle: setBody},
	{letter: 'b', value: true, syntax: "-b<x>", act: actUse,
		what:   "operating mode, one letter (the -b rows below)",
		reason: "when -b, -I and -q are repeated or combined, the last one decides, as in sendmail",
		handle: dispatchB},
	{letter: 'b', sub: "m", syntax: "-bm", act: actUse,
		what:   "read a message from standard input and deliver it (the default)",
		handle: setMode(ModeDeliver)},
	{letter: 'b', sub: "s", syntax: "-bs", act: actUse,
		what:   "speak SMTP on standard input and output (Symfony Mailer's default; Laravel passes -bs -i)",
		handle: setMode(ModeSMTP)},
	{letter: 'b', sub: "p", syntax: "-bp", act: actUse,
		what:   "list the queue (same as mailq)",
		handle: setMode(ModePrintQueue)},
	{letter: 'b', sub: "i", syntax: "-bi", act: actUse,
		what:   "initialise the alias database (same as -I and newaliases)",
		handle: setMode(ModeInitAliases)},
	{letter: 'b', sub: "v", syntax: "-bv", act: actUse,
		what:   "verify the recipient addresses and deliver nothing",
		handle: setMode(ModeVerify)},
	{letter: 'b', sub: "d", syntax: "-bd", act: actUnsupported,
		what:   "run as a mail daemon",
		reason: reasonNoDaemon,
		handle: setMode(ModeDaemon)},
	{letter: 'b', sub: "D", syntax: "-bD", act: actUnsupported,
		what:   "run as a mail daemon in the foreground (sendmail 8)",
		reason: reasonNoDaemon,
		handle: setMode(ModeDaemon)},
	{letter: 'b', sub: "l", syntax: "-bl", act: actUnsupported,
		what:   "run as a mail daemon (Postfix reads it as -bd)",
		reason: reasonNoDaemon,
		handle: setMode(ModeDaemon)},
	{letter: 'b', sub: "t", syntax: "-bt", act: actUnsupported,
		what:   "test the address rewriting rules (sendmail 8)",
		reason: "relaymail has no rewriting rules to test",
		handle: setMode(ModeUnsupported)},
	{letter: 'b', sub: "a", syntax: "-ba", act: actUnsupported,
		what:   "ARPANET mode (obsolete sendmail 8)",
		reason: "use -bs for SMTP on standard input",
		handle: setMode(ModeUnsupported)},
	{letter: 'b', sub: "h", syntax: "-bh", act: actUnsupported,
		what:   "print the persistent host status (sendmail 8 hoststat)",
		reason: "relaymail keeps no host status database",
		handle: setMode(ModeUnsupported)},
	{letter: 'b', sub: "H", syntax: "-bH", act: actUnsupported,
		what:   "purge the persistent host status (sendmail 8 purgestat)",
		reason: "relaymail keeps no host status database",
		handle: setMode(ModeUnsupported)},
	{letter: 'b', sub: "C", syntax: "-bC", act: actUnsupported,
		what:   "check the sendmail.cf configuration file (sendmail 8)",
		reason: "relaymail has no sendmail.cf",
		handle: setMode(ModeUnsupported)},
	{letter: 'b', sub: "P", syntax: "-bP", act: actUnsupported,
		what:   "print the number of queued messages (sendmail 8)",
		reason: "use mailq to see the queue",
		handle: setMode(ModeUnsupported)},
	{letter: 'C', value: true, syntax: "-C <file>", act: actUse,
		what:   "read this configuration file instead of the default one",
		handle: setConfig},
	{letter: 'c', syntax: "-c", act: actIgnore,
		what:   "hold mail for expensive mailers (sendmail 8 HoldExpensive)",
		reason: "relaymail has no per-mailer cost; Postfix ignores it too",
		handle: ignore},
	{letter: 'D', value: true, syntax: "-D <file>", act: actIgnore,
		what:   "write the -d debugging output to this file (sendmail 8)",
		reason: reasonNoFiles,
		handle: ignore},
	{letter: 'd', value: true, syntax: "-d <list>", act: actIgnore,
		what:   "debugging categories and levels (sendmail 8)",
		reason: "relaymail has no debugging categories; -v makes it verbose",
		handle: ignore},
	{letter: 'e', value: true, syntax: "-e <x>", act: actIgnore,
		what:   "sendmail 8 error mode (-em mail, -ep print, -eq quiet, -ew write, -ee exit status)",
		reason: reasonErrorMode,
		handle: ignore},
	{letter: 'F', value: true, syntax: "-F <name>", act: actUse,
		what:   "full name of the sender, used when relaymail adds a From: header (cron passes -FCronDaemon)",
		handle: setFullName},
	{letter: 'f', value: true, syntax: "-f <addr>", act: actUse,
		what:   "envelope sender (the Return-Path); -f '' and -f '<>' give the null sender",
		reason: "the value is one argument, so -f 'a@b -X/x' is a sender, never an -X",
		handle: setSender},
	{letter: 'G', syntax: "-G", act: actIgnore,
		what:   "gateway (relay) submission, as opposed to an initial user submission",
		reason: "relaymail treats every message as an initial submission",
		handle: ignore},
	{letter: 'h', value: true, syntax: "-h <n>", act: actIgnore,
		what:   "initial hop count",
		reason: "the smarthost counts Received: headers to stop mail loops; Postfix ignores it too",
		handle: ignore},
	{letter: 'I', syntax: "-I", act: actUse,
		what:   "initialise the alias database (same as -bi and newaliases)",
		handle: setMode(ModeInitAliases)},
	{letter: 'i', syntax: "-i", act: actUse,
		what:   "a line holding only a dot does not end the message; read to the end of the input (PHP mail(), cron, git send-email pass it)",
		handle: setIgnoreDots},
	{letter: 'L', value: true, syntax: "-L <tag>", act: actUse,
		what:   "tag for the syslog lines of this run",
		reason: "1 to 32 printable ASCII characters without spaces; anything else is an error",
		handle: setSyslogTag},
	{letter: 'M', value: true, syntax: "-M <x><value>", act: actIgnore,
		what:   "define a sendmail.cf macro (sendmail 8)",
		reason: "relaymail has no sendmail.cf macros",
		handle: ignore},
	{letter: 'm', syntax: "-m", act: actIgnore,
		what:   "\"me too\": keep the sender in alias expansions",
		reason: "obsolete in sendmail 8 and ignored by Postfix; mailx and s-nail still pass it",
		handle: ignore},
	{letter: 'N', value: true, syntax: "-N <dsn>", act: actUse,
		what:   "delivery status notification: never, or a comma list of success, failure and delay (RFC 3461 NOTIFY)",
		reason: "an invalid value is an error (Postfix only warns), so a typo does not silently change the notices",
		handle: setNotify},
	{letter: 'n', syntax: "-n", act: actUse,
		what:   "do not expand aliases",
		reason: "honoured as in sendmail 8 (Postfix refuses -n)",
		handle: setNoAliases},
	{letter: 'O', value: true, syntax: "-O <name>=<value>", act: actUse,
		what:   "sendmail 8 long option (the -O rows below)",
		handle: dispatchCapitalO},
	{letter: 'O', sub: "SMTPUTF8", syntax: "-O SMTPUTF8=yes|no", act: actUse,
		what:   "ask the smarthost for SMTPUTF8 (RFC 6531) for this message, or not (Postfix)",
		reason: "any other value is an error",
		handle: setSMTPUTF8},
	{letter: 'O', sub: "*", syntax: "-O <other>=<value>", act: actIgnore,
		what:   "any other long option (DeliveryMode, QueueDirectory, REQUIRETLS, ...)",
		reason: reasonSettings,
		handle: ignore},
	{letter: 'o', value: true, syntax: "-o<x><value>", act: actUse,
		what:   "sendmail 8 short option: one letter and its value in one argument (the -o rows below)",
		reason: "an empty value is an error",
		handle: dispatchO},
	{letter: 'o', sub: "i", syntax: "-oi", act: actUse,
		what:   "same as -i (PHPMailer, mutt, cron and mailutils pass it)",
		reason: "anything after the i is disregarded, as in Postfix",
		handle: setIgnoreDots},
	{letter: 'o', sub: "d", syntax: "-od<x>", act: actUse,
		what:   "delivery mode: -odi try at once and queue what is deferred (the default), -odb queue and deliver from a detached process, -odq and -odd only queue (cronie and vixie cron pass -odi)",
		reason: "any other mode is an error",
		handle: setDeliveryMode},
	{letter: 'o', sub: "e", syntax: "-oe<x>", act: actIgnore,
		what:   "error mode, as -e (cron and mutt pass -oem)",
		reason: reasonErrorMode,
		handle: ignore},
	{letter: 'o', sub: "A", syntax: "-oA<file>", act: actIgnore,
		what:   "alias database file",
		reason: "only relaymail's configuration names the alias file; it never opens a file named by its caller",
		handle: ignore},
	{letter: 'o', sub: "Q", syntax: "-oQ<dir>", act: actIgnore,
		what:   "queue directory",
		reason: "only relaymail's configuration chooses the spool",
		handle: ignore},
	{letter: 'o', sub: "7", syntax: "-o7", act: actIgnore,
		what:   "strip the input to 7 bits",
		reason: "relaymail never changes body bytes; Postfix ignores it too",
		handle: ignore},
	{letter: 'o', sub: "8", syntax: "-o8", act: actIgnore,
		what:   "8-bit input handling (EightBitMode)",
		reason: "relaymail sees 8-bit data itself; declare the body type with -B",
		handle: ignore},
	{letter: 'o', sub: "m", syntax: "-om", act: actIgnore,
		what:   "\"me too\", as -m",
		reason: "obsolete in sendmail 8 and ignored by Postfix",
		handle: ignore},
	{letter: 'o', sub: "*", syntax: "-o<other>", act: actIgnore,
		what:   "any other sendmail 8 short option (-oL log level, -oS status file, -oT timeouts, ...)",
		reason: reasonSettings,
		handle: ignore},
	{letter: 'p', value: true, syntax: "-p <proto>", act: actIgnore,
		what:   "the protocol (and host) the message came in with, for the Received: header (sendmail 8)",
		reason: "relaymail does not take Received: details from its caller; Postfix ignores it too",
		handle: ignore},
	{letter: 'Q', value: true, syntax: "-Q <reason>", act: actIgnore,
		what:   "quarantine the queue items chosen with -qI, -qR or -qS (sendmail 8)",
		reason: "relaymail's queue has no quarantine",
		handle: ignore},
	{letter: 'q', value: true, gluedOnly: true, syntax: "-q[<x>]", act: actUse,
		what:   "run the queue: -q once now, -q<time> as a foreground daemon every <time> (5m, 1h, 2d), -qR<domain> or -qI<queue id> only the matching messages",
		reason: "the value must be glued: a bare -q never takes the next argument (as in Postfix)",
		handle: setRunQueue},
	{letter: 'R', value: true, syntax: "-R <ret>", act: actUse,
		what:   "delivery status notification return: full or hdrs (RFC 3461 RET)",
		reason: "any other value is an error",
		handle: setRet},
	{letter: 'r', value: true, syntax: "-r <addr>", act: actUse,
		what:   "obsolete form of -f",
		handle: setSender},
	{letter: 's', syntax: "-s", act: actIgnore,
		what:   "keep \"From \" lines in the header (sendmail 8 SaveFromLine)",
		reason: "relaymail handles a leading \"From \" line the same way for every caller",
		handle: ignore},
	{letter: 'T', syntax: "-T", act: actIgnore,
		what:   "queue timeout (obsolete sendmail 8 flag)",
		reason: "relaymail's configuration sets how long mail may stay in the queue",
		handle: ignore},
	{letter: 't', syntax: "-t", act: actUse,
		what:   "also take recipients from the To:, Cc: and Bcc: headers (only the Resent- ones when there are any)",
		reason: "they are added to the recipients on the command line, as in Postfix",
		handle: setExtract},
	{letter: 'U', syntax: "-U", act: actIgnore,
		what:   "initial user submission (Postfix; sendmail 8 EAI builds read it as \"SMTPUTF8 required\")",
		reason: "every message is treated as an initial submission; ask for SMTPUTF8 with -O SMTPUTF8=yes",
		handle: ignore},
	{letter: 'V', value: true, syntax: "-V <envid>", act: actUse,
		what:   "delivery status notification envelope id: 1 to 100 printable ASCII characters (RFC 3461 ENVID)",
		reason: "Postfix's old VERP forms -V and -Vxy do not exist in relaymail",
		handle: setEnvID},
	{letter: 'v', syntax: "-v", act: actUse,
		what:   "verbose: report every recipient's result on stderr, delivered ones too",
		handle: addVerbose},
	{letter: 'X', value: true, syntax: "-X <file>", act: actRefuse,
		what:   "log the SMTP session to a file",
		reason: "it is the flag PHPMailer's CVE-2016-10033 exploited; " + reasonNoFiles,
		handle: refuse},
	{letter: 'x', syntax: "-x", act: actIgnore,
		what:   "SVR4 compatibility flag without a defined meaning",
		reason: "Postfix ignores it too",
		handle: ignore},
}

// letterSpecs maps each letter to its own row, subSpecs each letter with sub
// rows to them. They are built in init because the -b, -o and -O handlers
// read them, and the table refers to the handlers.
var (
	letterSpecs map[rune]*flagSpec
	subSpecs    map[rune][]*flagSpec
)

func init() {
	letterSpecs = make(map[rune]*flagSpec)
	subSpecs = make(map[rune][]*flagSpec)
	for i := range flags {
		f := &flags[i]
		if f.sub == "" {
			letterSpecs[f.letter] = f
		} else {
			subSpecs[f.letter] = append(subSpecs[f.letter], f)
		}
	}
}

// lookupSub returns the sub row of letter for key, or the "*" row, or nil.
// -O names are matched without regard to ASCII case, as sendmail 8 matches
// its long option names; -b and -o letters are case-sensitive (-bd and -bD
// differ).
func lookupSub(letter rune, key string) *flagSpec {
	var other *flagSpec
	for _, f := range subSpecs[letter] {
		switch {
		case f.sub == "*":
			other = f
		case letter == 'O' && asciiUpper(key) == asciiUpper(f.sub):
			return f
		case f.sub == key:
			return f
		}
	}
	return other
}

// refusal is the error for a refused flag.
func refusal(f *flagSpec) error {
	return usagef("-%c (%s) is refused: %s", f.letter, f.what, f.reason)
}

// occurrence is one option as getopt saw it, before it is applied.
type occurrence struct {
	spec  *flagSpec
	value string
}

// parseArgs parses the sendmail command line. argv[0] is the program path as
// invoked; its base name chooses the initial mode (mailq, newaliases). Every
// error is a *usageError.
func parseArgs(argv []string) (*request, error) {
	r := &request{Mode: ModeDeliver}
	prog := "sendmail"
	if len(argv) > 0 {
		// SM8 and Postfix compare the base name: "newaliases -bp" still
		// shows the queue, because the flags are applied after this.
		switch filepath.Base(argv[0]) {
		case "mailq":
			r.Mode, r.ModeArg = ModePrintQueue, "mailq"
		case "newaliases":
			r.Mode, r.ModeArg = ModeInitAliases, "newaliases"
		}
		prog = argv[0]
	}
	args := []string{prog}
	if len(argv) > 1 {
		args = append(args, argv[1:]...)
		// getopt has no long options; these two are recognised only as the
		// first argument, so that a recipient can never be read as one.
		switch argv[1] {
		case "--help":
			r.Mode, r.ModeArg = ModeHelp, "--help"
			return r, nil
		case "--version":
			r.Mode, r.ModeArg = ModeVersion, "--version"
			return r, nil
		case "--json":
			// mailq --json, for monitoring; checked against the mode
			// once the options are known.
			r.JSON = true
			args = append(args[:1], argv[2:]...)
		}
	}

	// One Set per call: getopt keeps counts and state in it.
	s := getopt.New()
	specOf := make(map[getopt.Option]*flagSpec)
	// Only the letters that occur in some argument beginning with "-" are
	// declared. getopt reads option letters from nowhere else, so the
	// parse is the same; declaring all of them cost about 0.2 ms a run, a
	// tenth of a delivery to a local smarthost, because getopt's Flag
	// records its caller's file and line (runtime.Caller) for each one.
	var dashed strings.Builder
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") {
			dashed.WriteString(a)
		}
	}
	for i := range flags {
		f := &flags[i]
		if f.sub != "" || !strings.ContainsRune(dashed.String(), f.letter) {
			continue
		}
		var opt getopt.Option
		if f.value {
			var v string
			opt = s.Flag(&v, f.letter)
			if f.gluedOnly {
				opt.SetOptional()
			}
		} else {
			var b bool
			opt = s.Flag(&b, f.letter)
		}
		specOf[opt] = f
	}

	// The options are collected first and applied only when the whole
	// command line parsed, so that a refused flag anywhere (even glued at the
	// end of a group, as in -tiX/var/www/x.php) stops everything and nothing
	// before it takes effect.
	var seen []occurrence
	var refused *flagSpec
	err := s.Getopt(args, func(o getopt.Option) bool {
		f := specOf[o]
		if f.act == actRefuse {
			refused = f
			return false
		}
		oc := occurrence{spec: f}
		if f.value {
			oc.value = o.String() // a boolean's String is "true"
		}
		seen = append(seen, oc)
		return true
	})
	if refused != nil {
		return nil, refusal(refused)
	}
	if err != nil {
		return nil, getoptError(err, s.Args())
	}
	for _, oc := range seen {
		given := "-" + string(oc.spec.letter) + oc.value
		if err := oc.spec.handle(r, given, oc.value); err != nil {
			return nil, err
		}
	}

	if r.JSON && r.Mode != ModePrintQueue {
		return nil, usagef("--json goes with mailq or -bp: it prints the queue listing as JSON")
	}
	r.DashDash = s.State() == getopt.DashDash
	for _, op := range s.Args() {
		// Without "--", a leading "-" is either an option written after the
		// first recipient (which sendmail does not read as one) or an
		// injected argument; either way a recipient is not meant.
		if !r.DashDash && strings.HasPrefix(op, "-") {
			return nil, usagef("recipient %s begins with \"-\": put options before recipients, or write -- before recipients that really begin with \"-\"", show(op))
		}
		r.Recipients = append(r.Recipients, op)
	}
	return r, nil
}

// getoptError turns getopt's errors into the user-facing text. rest is
// s.Args() after the failure: it starts with the argument that failed.
func getoptError(err error, rest []string) error {
	var ge *getopt.Error
	if !errors.As(err, &ge) {
		// getopt returns other errors only for mandatory or grouped
		// options, which this parser does not declare.
		return usagef("cannot parse the command line: %v (%s)", err, usageLine)
	}
	switch ge.ErrorCode {
	case getopt.UnknownOption:
		if len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
			// getopt reports "--help" in the middle as the letter "-".
			return usagef("unknown option %s: --help and --version work only as the first argument (%s)", show(rest[0]), usageLine)
		}
		return usagef("unknown option %s (%s)", showLetter(ge.Name), usageLine)
	case getopt.MissingParameter:
		if r, _ := utf8.DecodeRuneInString(strings.TrimPrefix(ge.Name, "-")); letterSpecs[r] != nil && letterSpecs[r].act == actRefuse {
			// "-X" as the last argument: refused all the same.
			return refusal(letterSpecs[r])
		}
		return usagef("option %s needs a value", ge.Name)
	}
	return usagef("cannot parse the command line: %v (%s)", err, usageLine)
}

// showLetter prints an option name as "-z", or quoted when the letter is not
// printable ASCII (so that control bytes never reach the terminal).
func showLetter(name string) string {
	if len(name) == 2 && name[1] > ' ' && name[1] < 0x7f {
		return name
	}
	return fmt.Sprintf("%q", name)
}

// show quotes a caller's value for an error message: control characters are
// escaped so that they never reach the terminal, and a long value is cut
// after 60 characters, marked with "...".
func show(s string) string {
	const max = 60
	if utf8.RuneCountInString(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", string([]rune(s)[:max]))
}

// asciiUpper upper-cases ASCII letters only. strings.ToUpper and EqualFold
// would also map U+017F LATIN SMALL LETTER LONG S to "S", so that "ſuccess"
// would pass as SUCCESS.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Handlers. Each applies one flag to the request.

func ignore(r *request, given, _ string) error {
	r.Ignored = append(r.Ignored, given)
	return nil
}

// refuse is the handler of refused letters. parseArgs stops at them before
// any handler runs; this keeps the table complete should that ever change.
func refuse(_ *request, given, _ string) error {
	r, _ := utf8.DecodeRuneInString(given[1:])
	return refusal(letterSpecs[r])
}

func setMode(m Mode) func(*request, string, string) error {
	return func(r *request, given, _ string) error {
		r.Mode, r.ModeArg = m, given
		return nil
	}
}

func setRunQueue(r *request, given, value string) error {
	r.Mode, r.ModeArg, r.QueueArg = ModeRunQueue, given, value
	return nil
}

func setExtract(r *request, _, _ string) error    { r.Extract = true; return nil }
func setIgnoreDots(r *request, _, _ string) error { r.IgnoreDots = true; return nil }
func setNoAliases(r *request, _, _ string) error  { r.NoAliases = true; return nil }
func addVerbose(r *request, _, _ string) error    { r.Verbose++; return nil }

// setSyslogTag checks -L: a tag is one word of printable ASCII, at most 32
// characters (RFC 5424 §6.2.5 APP-NAME), so that it cannot forge a log
// line or a field of one.
func setSyslogTag(r *request, _, v string) error {
	ok := len(v) >= 1 && len(v) <= 32
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] > ' ' && v[i] < 0x7f
	}
	if !ok {
		return usagef("-L %s: invalid syslog tag (use 1 to 32 printable ASCII characters, no spaces)", show(v))
	}
	r.SyslogTag = v
	return nil
}

// setSender keeps the raw value, the last one winning: "" and "<>" are the
// null sender and everything else is checked by intake.
func setSender(r *request, _, v string) error {
	r.Sender, r.SenderSet = v, true
	return nil
}

func setFullName(r *request, _, v string) error {
	r.FullName, r.FullNameSet = v, true
	return nil
}

func setConfig(r *request, _, v string) error {
	if v == "" {
		return usagef("-C needs a file name")
	}
	r.ConfigPath = v
	return nil
}

func setBody(r *request, _, v string) error {
	switch u := asciiUpper(v); u {
	case "7BIT", "8BITMIME":
		r.Body = u
		return nil
	}
	return usagef("-B %s: unknown body type (use 7BIT or 8BITMIME)", show(v))
}

// setNotify checks -N as RFC 3461 §4.1 NOTIFY: NEVER alone, or a list of
// SUCCESS, FAILURE and DELAY. The last -N wins.
func setNotify(r *request, _, v string) error {
	items := strings.Split(asciiUpper(v), ",")
	seen := make(map[string]bool)
	ok := true
	for _, it := range items {
		switch it {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			ok = false
		}
		if seen[it] {
			ok = false
		}
		seen[it] = true
	}
	if !ok || (seen["NEVER"] && len(items) > 1) {
		return usagef("-N %s: invalid notify value (use never, or a comma list of success, failure and delay, e.g. -N failure,delay)", show(v))
	}
	r.Notify = items
	return nil
}

func setRet(r *request, _, v string) error {
	switch u := asciiUpper(v); u {
	case "FULL", "HDRS":
		r.Ret = u
		return nil
	}
	return usagef("-R %s: invalid return value (use full or hdrs)", show(v))
}

// setEnvID checks -V as RFC 3461 §4.4 ENVID: at most 100 characters. The
// printable-ASCII rule (33..126) is what xtext can carry once encoded, and it
// keeps spaces and control characters out of MAIL FROM.
func setEnvID(r *request, _, v string) error {
	ok := len(v) >= 1 && len(v) <= 100
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] >= 33 && v[i] <= 126
	}
	if !ok {
		return usagef("-V %s: invalid envelope id (use 1 to 100 printable ASCII characters, no spaces)", show(v))
	}
	r.EnvID = v
	return nil
}

func dispatchB(r *request, given, v string) error {
	if v == "" {
		return usagef("-b needs a mode letter (%s)", subList('b'))
	}
	if len(v) == 1 {
		if f := lookupSub('b', v); f != nil {
			return f.handle(r, given, "")
		}
	}
	return usagef("unknown mode %s (%s)", show(given), subList('b'))
}

// dispatchO applies -o<x><value>: the first character is the sendmail 8 short
// option letter and the rest is its value, in one argument.
func dispatchO(r *request, given, v string) error {
	if v == "" {
		return usagef("-o needs an option letter and its value in one argument, as in -oi or -odb")
	}
	_, n := utf8.DecodeRuneInString(v)
	return lookupSub('o', v[:n]).handle(r, given, v[n:])
}

func dispatchCapitalO(r *request, given, v string) error {
	name, value, _ := strings.Cut(v, "=")
	return lookupSub('O', name).handle(r, given, value)
}

func setSMTPUTF8(r *request, given, v string) error {
	switch asciiUpper(v) {
	case "YES":
		r.SMTPUTF8 = true
		return nil
	case "NO":
		r.SMTPUTF8 = false
		return nil
	}
	return usagef("%s: SMTPUTF8 must be yes or no", show(given))
}

func setDeliveryMode(r *request, given, v string) error {
	switch v {
	case "i", "b", "q", "d":
		r.DeliveryMode = v[0]
		return nil
	}
	return usagef("%s: unknown delivery mode (use -odi, -odb, -odq or -odd)", show(given))
}

// subList lists the sub rows of letter, for error messages: "-bm, -bs, ...".
func subList(letter rune) string {
	var names []string
	for _, f := range subSpecs[letter] {
		if f.sub != "*" {
			names = append(names, f.syntax)
		}
	}
	return "known: " + strings.Join(names, ", ")
}

// usageText is the --help text, generated from the flag table.
func usageText() string {
	var b strings.Builder
	b.WriteString(`usage: sendmail [options] [--] recipient ...
       mailq                  the same as sendmail -bp
       newaliases             the same as sendmail -bi
       sendmail --help        this text (only as the first argument)
       sendmail --version     the version (only as the first argument)

Options may be grouped (-ti). A value may be glued (-fuser@example.com) or
the next argument (-f user@example.com); -q takes only a glued value. Options
end at the first recipient or at --. A recipient that begins with "-" must
come after --. Each recipient argument may hold a comma-separated list.

`)
	const col = 24
	for _, f := range flags {
		text := f.what
		switch f.act {
		case actIgnore:
			text = "ignored: " + text
		case actUnsupported:
			text = "unsupported: " + text
		case actRefuse:
			text = "refused: " + text
		}
		text += "."
		if f.reason != "" {
			text += " " + sentence(f.reason) + "."
		}
		indent := "  "
		if f.sub != "" {
			indent = "    "
		}
		head := indent + f.syntax
		if len(head) >= col-1 {
			b.WriteString(head + "\n")
			head = ""
		}
		b.WriteString(wrap(fmt.Sprintf("%-*s", col, head), text, col, 79))
	}
	return b.String()
}

// sentence starts a reason with a capital letter, except for the name
// relaymail, which is always written in lower case.
func sentence(s string) string {
	if s == "" || strings.HasPrefix(s, "relaymail") || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// wrap writes text after head, breaking lines at spaces before width and
// indenting continuation lines by indent columns.
func wrap(head, text string, indent, width int) string {
	var b strings.Builder
	line := head
	n := len(head)
	for i, w := range strings.Fields(text) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line, n = strings.Repeat(" ", indent), indent
		} else if i > 0 {
			line += " "
			n++
		}
		line += w
		n += len(w)
	}
	b.WriteString(line + "\n")
	return b.String()
}
