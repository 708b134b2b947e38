package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// argv builds an argv with argv[0] /usr/sbin/sendmail.
func argv(args ...string) []string {
	return append([]string{"/usr/sbin/sendmail"}, args...)
}

// checkParse parses args and compares the whole request with want.
func checkParse(t *testing.T, args []string, want request) {
	t.Helper()
	got, err := parseArgs(args)
	if err != nil {
		t.Fatalf("parseArgs(%q): unexpected error: %v", args, err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("parseArgs(%q)\n got %+v\nwant %+v", args, *got, want)
	}
}

// checkUsageError parses args and wants a *usageError with exactly msg, or,
// when msg ends in "...", a message that begins with the rest.
func checkUsageError(t *testing.T, args []string, msg string) {
	t.Helper()
	got, err := parseArgs(args)
	if err == nil {
		t.Fatalf("parseArgs(%q) = %+v, want error %q", args, *got, msg)
	}
	if got != nil {
		t.Errorf("parseArgs(%q) returned a request with its error", args)
	}
	var ue *usageError
	if !errors.As(err, &ue) {
		t.Fatalf("parseArgs(%q) error %T %v, want *usageError", args, err, err)
	}
	if prefix, ok := strings.CutSuffix(msg, "..."); ok {
		if !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("parseArgs(%q) error\n got %q\nwant prefix %q", args, err, prefix)
		}
	} else if err.Error() != msg {
		t.Errorf("parseArgs(%q) error\n got %q\nwant %q", args, err, msg)
	}
}

// TestRealCallers parses the exact argv of the callers listed in spec.md §6.
func TestRealCallers(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want request
	}{
		{"PHP mail() default sendmail_path",
			argv("-t", "-i"),
			request{Extract: true, IgnoreDots: true}},
		{"PHP mail() with the 5th parameter glued",
			argv("-t", "-i", "-fuser@example.com"),
			request{Extract: true, IgnoreDots: true, Sender: "user@example.com", SenderSet: true}},
		{"PHP mail() with the 5th parameter separate",
			argv("-t", "-i", "-f", "user@example.com"),
			request{Extract: true, IgnoreDots: true, Sender: "user@example.com", SenderSet: true}},
		{"PHPMailer v6",
			argv("-oi", "-fsender@x", "-t"),
			request{IgnoreDots: true, Sender: "sender@x", SenderSet: true, Extract: true}},
		{"PHPMailer v6 without a sender",
			argv("-oi", "-t"),
			request{IgnoreDots: true, Extract: true}},
		{"PHPMailer v7",
			argv("-fsender@x", "-i", "-t"),
			request{Sender: "sender@x", SenderSet: true, IgnoreDots: true, Extract: true}},
		{"Debian cron",
			argv("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"),
			request{FullName: "CronDaemon", FullNameSet: true, IgnoreDots: true, Body: "8BITMIME",
				Ignored: []string{"-oem"}, Recipients: []string{"root"}}},
		{"Debian cron with MAILTO=\"a@x, b@y\" split on whitespace",
			argv("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "a@x,", "b@y"),
			request{FullName: "CronDaemon", FullNameSet: true, IgnoreDots: true, Body: "8BITMIME",
				Ignored: []string{"-oem"}, Recipients: []string{"a@x,", "b@y"}}},
		{"cronie",
			argv("-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"),
			request{FullName: "CronDaemon", FullNameSet: true, IgnoreDots: true, DeliveryMode: 'i',
				Ignored: []string{"-oem"}, Extract: true, Sender: "root", SenderSet: true}},
		{"vixie cron",
			argv("-FCronDaemon", "-odi", "-oem", "-oi", "-t"),
			request{FullName: "CronDaemon", FullNameSet: true, DeliveryMode: 'i',
				Ignored: []string{"-oem"}, IgnoreDots: true, Extract: true}},
		{"systemd-cron mail_on_failure",
			[]string{"sendmail", "-i", "-B8BITMIME", "root"},
			request{IgnoreDots: true, Body: "8BITMIME", Recipients: []string{"root"}}},
		{"mutt with 8bitmime, envelope from and DSN",
			argv("-oem", "-oi", "-B8BITMIME", "-f", "me@x", "-N", "failure,delay", "-R", "hdrs", "--", "a@x", "-b@y"),
			request{Ignored: []string{"-oem"}, IgnoreDots: true, Body: "8BITMIME", Sender: "me@x", SenderSet: true,
				Notify: []string{"FAILURE", "DELAY"}, Ret: "HDRS", DashDash: true, Recipients: []string{"a@x", "-b@y"}}},
		{"mutt default",
			argv("-oem", "-oi", "--", "a@x", "b@y"),
			request{Ignored: []string{"-oem"}, IgnoreDots: true, DashDash: true, Recipients: []string{"a@x", "b@y"}}},
		{"bsd-mailx",
			argv("-i", "-t", "-f", "from@x"),
			request{IgnoreDots: true, Extract: true, Sender: "from@x", SenderSet: true}},
		{"bsd-mailx with metoo and verbose",
			argv("-i", "-t", "-f", "from@x", "-m", "-v"),
			request{IgnoreDots: true, Extract: true, Sender: "from@x", SenderSet: true, Ignored: []string{"-m"}, Verbose: 1}},
		{"s-nail",
			argv("-i", "-f", "from@x", "--", "rcpt@x"),
			request{IgnoreDots: true, Sender: "from@x", SenderSet: true, DashDash: true, Recipients: []string{"rcpt@x"}}},
		{"GNU mailutils",
			argv("-oi", "-f", "root@awkward", "-t"),
			request{IgnoreDots: true, Sender: "root@awkward", SenderSet: true, Extract: true}},
		{"git send-email",
			argv("-f", "me@x", "-i", "a@x", "b@y"),
			request{Sender: "me@x", SenderSet: true, IgnoreDots: true, Recipients: []string{"a@x", "b@y"}}},
		{"unattended-upgrades",
			argv("-oi", "-t"),
			request{IgnoreDots: true, Extract: true}},
		{"fail2ban",
			argv("-f", "fail2ban", "root"),
			request{Sender: "fail2ban", SenderSet: true, Recipients: []string{"root"}}},
		{"sudo",
			argv("-t"),
			request{Extract: true}},
		{"Ruby mail gem",
			argv("-i", "-f", "from@x", "--", "to1@x", "to2@x"),
			request{IgnoreDots: true, Sender: "from@x", SenderSet: true, DashDash: true, Recipients: []string{"to1@x", "to2@x"}}},
		{"Django snippet",
			[]string{"sendmail", "a@x", "b@y"},
			request{Recipients: []string{"a@x", "b@y"}}},
		{"mdadm and logwatch",
			argv("-t"),
			request{Extract: true}},
		{"Symfony Mailer -t mode with recipients",
			argv("-t", "-f", "from@x", "to@x"),
			request{Extract: true, Sender: "from@x", SenderSet: true, Recipients: []string{"to@x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParse(t, tt.args, tt.want) })
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want request
	}{
		{"bare -q does not take the next argument", argv("-q", "30m"),
			request{Mode: ModeRunQueue, ModeArg: "-q", Recipients: []string{"30m"}}},
		{"bare -q alone", argv("-q"),
			request{Mode: ModeRunQueue, ModeArg: "-q"}},
		{"bare -q before other options", argv("-q", "-v"),
			request{Mode: ModeRunQueue, ModeArg: "-q", Verbose: 1}},
		{"-q at the end of a group", argv("-vq"),
			request{Mode: ModeRunQueue, ModeArg: "-q", Verbose: 1}},
		{"-q5m", argv("-q5m"),
			request{Mode: ModeRunQueue, ModeArg: "-q5m", QueueArg: "5m"}},
		{"-qRexample.com", argv("-qRexample.com"),
			request{Mode: ModeRunQueue, ModeArg: "-qRexample.com", QueueArg: "Rexample.com"}},
		{"-q value with a space, as one argument", argv("-qR example.com"),
			request{Mode: ModeRunQueue, ModeArg: "-qR example.com", QueueArg: "R example.com"}},
		{"-f -q is a sender", argv("-f", "-q", "a@x"),
			request{Sender: "-q", SenderSet: true, Recipients: []string{"a@x"}}},
		{"Laravel -bs -i", argv("-bs", "-i"),
			request{Mode: ModeSMTP, ModeArg: "-bs", IgnoreDots: true}},
		{"-b s separate", argv("-b", "s"),
			request{Mode: ModeSMTP, ModeArg: "-bs"}},
		{"-bm", argv("-bm", "a@x"),
			request{Mode: ModeDeliver, ModeArg: "-bm", Recipients: []string{"a@x"}}},
		{"-bp", argv("-bp"), request{Mode: ModePrintQueue, ModeArg: "-bp"}},
		{"-bv", argv("-bv", "a@x"), request{Mode: ModeVerify, ModeArg: "-bv", Recipients: []string{"a@x"}}},
		{"-bi", argv("-bi"), request{Mode: ModeInitAliases, ModeArg: "-bi"}},
		{"-I", argv("-I"), request{Mode: ModeInitAliases, ModeArg: "-I"}},
		{"-bd", argv("-bd"), request{Mode: ModeDaemon, ModeArg: "-bd"}},
		{"-bD", argv("-bD"), request{Mode: ModeDaemon, ModeArg: "-bD"}},
		{"-bl", argv("-bl"), request{Mode: ModeDaemon, ModeArg: "-bl"}},
		{"-bd -q30m: the last wins", argv("-bd", "-q30m"),
			request{Mode: ModeRunQueue, ModeArg: "-q30m", QueueArg: "30m"}},
		{"-q -bs: the last wins", argv("-q", "-bs"),
			request{Mode: ModeSMTP, ModeArg: "-bs"}},
		{"-bt", argv("-bt"), request{Mode: ModeUnsupported, ModeArg: "-bt"}},
		{"-ba", argv("-ba"), request{Mode: ModeUnsupported, ModeArg: "-ba"}},
		{"-bh", argv("-bh"), request{Mode: ModeUnsupported, ModeArg: "-bh"}},
		{"-bH", argv("-bH"), request{Mode: ModeUnsupported, ModeArg: "-bH"}},
		{"-bC", argv("-bC"), request{Mode: ModeUnsupported, ModeArg: "-bC"}},
		{"-bP", argv("-bP"), request{Mode: ModeUnsupported, ModeArg: "-bP"}},
		{"argv[0] mailq", []string{"/usr/bin/mailq"},
			request{Mode: ModePrintQueue, ModeArg: "mailq"}},
		{"argv[0] newaliases", []string{"newaliases"},
			request{Mode: ModeInitAliases, ModeArg: "newaliases"}},
		{"newaliases -bp shows the queue (Postfix)", []string{"/usr/bin/newaliases", "-bp"},
			request{Mode: ModePrintQueue, ModeArg: "-bp"}},
		{"argv[0] relaymail", []string{"/usr/sbin/relaymail", "a@x"},
			request{Recipients: []string{"a@x"}}},
		{"argv[0] with a mailq prefix is not mailq", []string{"/usr/bin/mailq2", "a@x"},
			request{Recipients: []string{"a@x"}}},
		{"empty argv", nil, request{}},
		{"--help", argv("--help"), request{Mode: ModeHelp, ModeArg: "--help"}},
		{"--version", argv("--version"), request{Mode: ModeVersion, ModeArg: "--version"}},
		{"mailq --help", []string{"mailq", "--help"}, request{Mode: ModeHelp, ModeArg: "--help"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParse(t, tt.args, tt.want) })
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want request
	}{
		{"grouped -ti", argv("-ti", "a@x"),
			request{Extract: true, IgnoreDots: true, Recipients: []string{"a@x"}}},
		{"grouped -tif with a separate value", argv("-tif", "sender@x"),
			request{Extract: true, IgnoreDots: true, Sender: "sender@x", SenderSet: true}},
		{"grouped -tifsender glued", argv("-tifsender@x", "a@x"),
			request{Extract: true, IgnoreDots: true, Sender: "sender@x", SenderSet: true, Recipients: []string{"a@x"}}},
		{"-f -t takes -t as the sender (POSIX)", argv("-f", "-t"),
			request{Sender: "-t", SenderSet: true}},
		{"-f with an injected -X is a sender value", argv("-f", "a@b -X/var/www/shell.php", "c@d"),
			request{Sender: "a@b -X/var/www/shell.php", SenderSet: true, Recipients: []string{"c@d"}}},
		{"-f glued with an injected -X", argv("-fa@b -X/var/www/shell.php"),
			request{Sender: "a@b -X/var/www/shell.php", SenderSet: true}},
		{"-f -X/x is a sender value", argv("-f", "-X/tmp/x", "a@b"),
			request{Sender: "-X/tmp/x", SenderSet: true, Recipients: []string{"a@b"}}},
		{"-f '' is the null sender", argv("-f", "", "a@x"),
			request{Sender: "", SenderSet: true, Recipients: []string{"a@x"}}},
		{"-f '<>' is the null sender", argv("-f<>", "a@x"),
			request{Sender: "<>", SenderSet: true, Recipients: []string{"a@x"}}},
		{"-r is -f", argv("-r", "bounce@x", "a@x"),
			request{Sender: "bounce@x", SenderSet: true, Recipients: []string{"a@x"}}},
		{"repeated -f: the last wins", argv("-f", "one@x", "-rtwo@x", "-fthree@x"),
			request{Sender: "three@x", SenderSet: true}},
		{"repeated -v counts", argv("-v", "-vv", "-tv"),
			request{Verbose: 4, Extract: true}},
		{"-F with spaces", argv("-F", "Cron Daemon", "a@x"),
			request{FullName: "Cron Daemon", FullNameSet: true, Recipients: []string{"a@x"}}},
		{"-F ''", argv("-F", ""),
			request{FullName: "", FullNameSet: true}},
		{"-C", argv("-C", "/etc/relaymail-test.conf", "-t"),
			request{ConfigPath: "/etc/relaymail-test.conf", Extract: true}},
		{"-L", argv("-Lmyapp", "-t"),
			request{SyslogTag: "myapp", Extract: true}},
		{"-n", argv("-n", "a@x"),
			request{NoAliases: true, Recipients: []string{"a@x"}}},
		{"-N never", argv("-N", "never"),
			request{Notify: []string{"NEVER"}}},
		{"-N mixed case", argv("-NSuccess,FAILURE,delay"),
			request{Notify: []string{"SUCCESS", "FAILURE", "DELAY"}}},
		{"repeated -N: the last wins", argv("-N", "success", "-N", "never"),
			request{Notify: []string{"NEVER"}}},
		{"-R full", argv("-R", "full"), request{Ret: "FULL"}},
		{"-R HDRS", argv("-RHDRS"), request{Ret: "HDRS"}},
		{"-V", argv("-V", "env-1+x=y"), request{EnvID: "env-1+x=y"}},
		{"-V two characters is an envelope id, not VERP", argv("-V", "+="), request{EnvID: "+="}},
		{"-V 100 characters", argv("-V", strings.Repeat("e", 100)), request{EnvID: strings.Repeat("e", 100)}},
		{"-B 7bit", argv("-B", "7bit"), request{Body: "7BIT"}},
		{"-O SMTPUTF8=yes", argv("-O", "SMTPUTF8=yes"),
			request{SMTPUTF8: true}},
		{"-O smtputf8=Yes glued", argv("-Osmtputf8=Yes"),
			request{SMTPUTF8: true}},
		{"-O SMTPUTF8=no clears it", argv("-O", "SMTPUTF8=yes", "-O", "SMTPUTF8=no"),
			request{}},
		{"-O other is ignored", argv("-O", "DeliveryMode=b", "-OQueueDirectory=/tmp"),
			request{Ignored: []string{"-ODeliveryMode=b", "-OQueueDirectory=/tmp"}}},
		{"-U is ignored and is not SMTPUTF8", argv("-U"),
			request{Ignored: []string{"-U"}}},
		{"-o delivery modes, the last wins", argv("-odb", "-odq", "-o", "dd"),
			request{DeliveryMode: 'd'}},
		{"-o ignored options", argv("-oem", "-oep", "-oeq", "-oA/etc/aliases", "-o7", "-o8", "-om", "-oQ/tmp/q", "-oL9", "-o", "X/tmp/x"),
			request{Ignored: []string{"-oem", "-oep", "-oeq", "-oA/etc/aliases", "-o7", "-o8", "-om", "-oQ/tmp/q", "-oL9", "-oX/tmp/x"}}},
		{"-oi separate", argv("-o", "i"), request{IgnoreDots: true}},
		{"ignored letters", argv("-Am", "-c", "-D", "/tmp/d", "-d0.1", "-e", "m", "-G", "-h", "17", "-M", "Xv", "-m", "-p", "ESMTP", "-Q", "why", "-s", "-T", "-x", "a@x"),
			request{Ignored: []string{"-Am", "-c", "-D/tmp/d", "-d0.1", "-em", "-G", "-h17", "-MXv", "-m", "-pESMTP", "-Qwhy", "-s", "-T", "-x"},
				Recipients: []string{"a@x"}}},
		{"-- ends the options", argv("-i", "--", "-rcpt@x", "b@x", "--", "-t"),
			request{IgnoreDots: true, DashDash: true, Recipients: []string{"-rcpt@x", "b@x", "--", "-t"}}},
		{"-- with nothing after it", argv("-t", "--"),
			request{Extract: true, DashDash: true}},
		{"-- first", argv("--", "a@x"),
			request{DashDash: true, Recipients: []string{"a@x"}}},
		{"a lone - after -- is a recipient", argv("--", "-"),
			request{DashDash: true, Recipients: []string{"-"}}},
		{"options stop at the first recipient", argv("a@x", "b@y"),
			request{Recipients: []string{"a@x", "b@y"}}},
		{"an empty operand is collected for intake", argv("-t", "", "a@x"),
			request{Extract: true, Recipients: []string{"", "a@x"}}},
		{"--help later is not help", argv("--", "--help"),
			request{DashDash: true, Recipients: []string{"--help"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParse(t, tt.args, tt.want) })
	}
}

const xRefused = `sendmail: -X (log the SMTP session to a file) is refused: it is the flag PHPMailer's CVE-2016-10033 exploited; relaymail never writes files named by its caller`

func TestErrors(t *testing.T) {
	long := strings.Repeat("e", 101)
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		// -X in every form, and nothing before it counts.
		{"-X separate", argv("-X", "/tmp/x"), xRefused},
		{"-X glued", argv("-X/tmp/x"), xRefused},
		{"-X glued in a group", argv("-tiX/tmp/x"), xRefused},
		{"-X in a PHP 5th parameter", argv("-t", "-i", "-fa@b", "-X/var/www/x.php"), xRefused},
		{"-X after other options", argv("-oi", "-X", "x", "a@b"), xRefused},
		{"-X without a value", argv("-t", "-X"), xRefused},
		{"-X without a value in a group", argv("-tX"), xRefused},
		{"-X before an invalid -N", argv("-N", "bogus", "-X/x"), xRefused},

		// Operands that begin with "-" without "--".
		{"option after a recipient", argv("a@x", "-oQ/tmp"),
			`sendmail: recipient "-oQ/tmp" begins with "-": put options before recipients, or write -- before recipients that really begin with "-"`},
		{"-X after a recipient", argv("-t", "a@x", "-X/var/www/x.php"),
			`sendmail: recipient "-X/var/www/x.php" begins with "-": put options before recipients, or write -- before recipients that really begin with "-"`},
		{"a lone -", argv("-t", "-"),
			`sendmail: recipient "-" begins with "-": put options before recipients, or write -- before recipients that really begin with "-"`},
		{"-q then a recipient then -q", argv("-q", "30m", "-q"),
			`sendmail: recipient "-q" begins with "-": ...`},

		// getopt failures.
		{"unknown letter", argv("-z", "a@x"),
			"sendmail: unknown option -z (usage: sendmail [options] [--] recipient ...; see sendmail(8))"},
		{"unknown letter in a group", argv("-tiz", "a@x"),
			"sendmail: unknown option -z (usage: sendmail [options] [--] recipient ...; see sendmail(8))"},
		{"unknown control letter", argv("-\x1b"),
			`sendmail: unknown option "-\x1b" (usage: sendmail [options] [--] recipient ...; see sendmail(8))`},
		{"--help not first", argv("-t", "--help"),
			`sendmail: unknown option "--help": --help and --version work only as the first argument (usage: sendmail [options] [--] recipient ...; see sendmail(8))`},
		{"long option", argv("--verbose"),
			`sendmail: unknown option "--verbose": --help and --version work only as the first argument (usage: sendmail [options] [--] recipient ...; see sendmail(8))`},
		{"-f without a value", argv("-t", "-f"), "sendmail: option -f needs a value"},
		{"-F without a value", argv("-F"), "sendmail: option -F needs a value"},
		{"-N without a value", argv("-ti", "-N"), "sendmail: option -N needs a value"},
		{"-o without a value", argv("-o"), "sendmail: option -o needs a value"},

		// Values that are checked here.
		{"-o ''", argv("-o", ""), "sendmail: -o needs an option letter and its value in one argument, as in -oi or -odb"},
		{"-b ''", argv("-b", ""), "sendmail: -b needs a mode letter (known: -bm, -bs, -bp, -bi, -bv, -bd, -bD, -bl, -bt, -ba, -bh, -bH, -bC, -bP)"},
		{"-bx", argv("-bx"), `sendmail: unknown mode "-bx" (known: ...`},
		{"-bsx", argv("-bsx"), `sendmail: unknown mode "-bsx" (known: ...`},
		{"-odx", argv("-odx"), `sendmail: "-odx": unknown delivery mode (use -odi, -odb, -odq or -odd)`},
		{"-od", argv("-od"), `sendmail: "-od": unknown delivery mode (use -odi, -odb, -odq or -odd)`},
		{"-odib", argv("-odib"), `sendmail: "-odib": unknown delivery mode (use -odi, -odb, -odq or -odd)`},
		{"-N bogus", argv("-N", "bogus"),
			`sendmail: -N "bogus": invalid notify value (use never, or a comma list of success, failure and delay, e.g. -N failure,delay)`},
		{"-N never with others", argv("-N", "never,failure"), `sendmail: -N "never,failure": invalid notify value ...`},
		{"-N duplicate", argv("-N", "failure,FAILURE"), `sendmail: -N "failure,FAILURE": invalid notify value ...`},
		{"-N empty item", argv("-N", "failure,,delay"), `sendmail: -N "failure,,delay": invalid notify value ...`},
		{"-N trailing comma", argv("-N", "failure,"), `sendmail: -N "failure,": invalid notify value ...`},
		{"-N empty", argv("-N", ""), `sendmail: -N "": invalid notify value ...`},
		{"-N with a space", argv("-N", "failure, delay"), `sendmail: -N "failure, delay": invalid notify value ...`},
		{"-N with a long s", argv("-N", "ſuccess"), `sendmail: -N "ſuccess": invalid notify value ...`},
		{"-R bogus", argv("-R", "body"), `sendmail: -R "body": invalid return value (use full or hdrs)`},
		{"-R empty", argv("-R", ""), `sendmail: -R "": invalid return value (use full or hdrs)`},
		{"-V empty", argv("-V", ""),
			`sendmail: -V "": invalid envelope id (use 1 to 100 printable ASCII characters, no spaces)`},
		{"-V with a space", argv("-V", "a b"), `sendmail: -V "a b": invalid envelope id ...`},
		{"-V with a control character", argv("-V", "a\rb"), `sendmail: -V "a\rb": invalid envelope id ...`},
		{"-V not ASCII", argv("-V", "é"), `sendmail: -V "é": invalid envelope id ...`},
		{"-V too long", argv("-V", long), `sendmail: -V "` + long[:60] + `"...: invalid envelope id ...`},
		{"-B bogus", argv("-B", "BINARYMIME"), `sendmail: -B "BINARYMIME": unknown body type (use 7BIT or 8BITMIME)`},
		{"-B 8bit", argv("-B8BIT"), `sendmail: -B "8BIT": unknown body type (use 7BIT or 8BITMIME)`},
		{"-O SMTPUTF8 bad value", argv("-O", "SMTPUTF8=maybe"), `sendmail: "-OSMTPUTF8=maybe": SMTPUTF8 must be yes or no`},
		{"-O SMTPUTF8 without a value", argv("-O", "SMTPUTF8"), `sendmail: "-OSMTPUTF8": SMTPUTF8 must be yes or no`},
		{"-C ''", argv("-C", ""), "sendmail: -C needs a file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkUsageError(t, tt.args, tt.msg) })
	}
}

// TestXAfterDashDash: after "--" every operand is a recipient, "-X..."
// included (Postfix's rule); intake then judges it as an address.
func TestXAfterDashDash(t *testing.T) {
	checkParse(t, argv("-t", "--", "-X/tmp/x"),
		request{Extract: true, DashDash: true, Recipients: []string{"-X/tmp/x"}})
}

// TestRefuseHandler: the -X row's own handler refuses too, should parseArgs
// ever stop catching refused letters while getopt runs.
func TestRefuseHandler(t *testing.T) {
	err := letterSpecs['X'].handle(&request{}, "-X/tmp/x", "/tmp/x")
	if err == nil || err.Error() != xRefused {
		t.Errorf("-X handler: %v, want %q", err, xRefused)
	}
}

// TestErrorTexts: every error is a *usageError that starts with "sendmail: "
// and never shows getopt's own wording ("unknow option", "missing parameter").
func TestErrorTexts(t *testing.T) {
	for _, args := range [][]string{
		argv("-z"), argv("-f"), argv("--x"), argv("-q", "-"), argv("-b"), argv("-bz"),
		argv("-X"), argv("-N", "x"), argv("-\xff"), argv("-é"),
	} {
		_, err := parseArgs(args)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseArgs(%q) error %v, want a *usageError", args, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "sendmail: ") || strings.Contains(msg, "unknow option") ||
			strings.Contains(msg, "missing parameter") || !utf8.ValidString(msg) {
			t.Errorf("parseArgs(%q) error text %q", args, msg)
		}
	}
}

// The letter sets of spec.md §5.1 and the issue.
const (
	postfixOpts   = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx"
	sendmail8Opts = "A:B:b:C:cD:d:e:F:f:Gh:IiL:M:mN:nO:o:p:Q:q:R:r:sTtUV:vX:"
	valueLetters  = "ABCDFLMNOQRVXbdefhopqr"
	boolLetters   = "GIUcimnstvxT"
)

// parseOptstring returns letter → takes a value for a getopt string.
func parseOptstring(s string) map[rune]bool {
	m := make(map[rune]bool)
	rs := []rune(s)
	for i, c := range rs {
		if c == ':' {
			continue
		}
		m[c] = i+1 < len(rs) && rs[i+1] == ':'
	}
	return m
}

// TestTableCoversLetters: every letter of both getopt strings has exactly one
// row, with the right arity, a meaning and a handler; and nothing else does.
func TestTableCoversLetters(t *testing.T) {
	union := parseOptstring(postfixOpts)
	for c, v := range parseOptstring(sendmail8Opts) {
		if pv, ok := union[c]; ok && pv != v {
			t.Errorf("-%c: Postfix and Sendmail 8 disagree about its value", c)
		}
		union[c] = v
	}
	if len(union) != len(valueLetters)+len(boolLetters) {
		t.Errorf("union has %d letters, the issue lists %d", len(union), len(valueLetters)+len(boolLetters))
	}
	for _, c := range valueLetters {
		if !union[c] {
			t.Errorf("-%c: listed as a value letter but not one in the union", c)
		}
	}
	for _, c := range boolLetters {
		if v, ok := union[c]; !ok || v {
			t.Errorf("-%c: listed as a boolean letter but not one in the union", c)
		}
	}

	count := make(map[rune]int)
	for _, f := range flags {
		if f.sub != "" {
			continue
		}
		count[f.letter]++
		want, ok := union[f.letter]
		if !ok {
			t.Errorf("-%c is in the table but in neither getopt string", f.letter)
			continue
		}
		if f.value != want {
			t.Errorf("-%c: value=%v, want %v", f.letter, f.value, want)
		}
		if f.gluedOnly != (f.letter == 'q') {
			t.Errorf("-%c: gluedOnly=%v; only -q takes its value glued only", f.letter, f.gluedOnly)
		}
	}
	for c := range union {
		if count[c] != 1 {
			t.Errorf("-%c has %d rows, want exactly 1", c, count[c])
		}
	}

	subs := make(map[string]bool)
	for _, f := range flags {
		name := fmt.Sprintf("-%c%s", f.letter, f.sub)
		if strings.TrimSpace(f.what) == "" || f.handle == nil || f.syntax == "" {
			t.Errorf("%s: missing meaning, handler or syntax", name)
		}
		if f.act != actUse && strings.TrimSpace(f.reason) == "" {
			t.Errorf("%s: accepted-and-ignored, unsupported or refused without a reason", name)
		}
		if strings.HasSuffix(f.what, ".") || strings.HasSuffix(f.reason, ".") {
			t.Errorf("%s: texts end without a full stop; usageText adds it", name)
		}
		if f.sub == "" {
			continue
		}
		if subs[name] {
			t.Errorf("%s: duplicate sub row", name)
		}
		subs[name] = true
		if letterSpecs[f.letter] == nil || !letterSpecs[f.letter].value {
			t.Errorf("%s: sub row of a letter without a value", name)
		}
		if f.value || f.gluedOnly {
			t.Errorf("%s: arity belongs on the letter's own row", name)
		}
	}
}

// TestBModesMatchConstants: each -b row leads to the mode the issue gives it.
func TestBModesMatchConstants(t *testing.T) {
	want := map[string]Mode{
		"m": ModeDeliver, "s": ModeSMTP, "p": ModePrintQueue, "i": ModeInitAliases, "v": ModeVerify,
		"d": ModeDaemon, "D": ModeDaemon, "l": ModeDaemon,
		"t": ModeUnsupported, "a": ModeUnsupported, "h": ModeUnsupported, "H": ModeUnsupported,
		"C": ModeUnsupported, "P": ModeUnsupported,
	}
	if n := len(subSpecs['b']); n != len(want) {
		t.Errorf("%d -b rows, want %d", n, len(want))
	}
	for sub, m := range want {
		r, err := parseArgs(argv("-b" + sub))
		if err != nil || r.Mode != m || r.ModeArg != "-b"+sub {
			t.Errorf("-b%s: %+v, %v; want mode %v", sub, r, err, m)
			continue
		}
		f := lookupSub('b', sub)
		if (m == ModeUnsupported || m == ModeDaemon) != (f.act == actUnsupported) {
			t.Errorf("-b%s: act %v does not match mode %v", sub, f.act, m)
		}
	}
}

// TestIgnoredRowsIgnore: every accepted-and-ignored row leaves the request
// as it was, except for the Ignored list.
func TestIgnoredRowsIgnore(t *testing.T) {
	for _, f := range flags {
		if f.act != actIgnore {
			continue
		}
		var args []string
		switch {
		case f.sub == "*" && f.letter == 'o':
			args = argv("-oZvalue")
		case f.sub == "*" && f.letter == 'O':
			args = argv("-O", "Timeout.queuereturn=5d")
		case f.sub != "":
			args = argv("-" + string(f.letter) + f.sub + "value")
		case f.value:
			args = argv("-"+string(f.letter), "value")
		default:
			args = argv("-" + string(f.letter))
		}
		r, err := parseArgs(append(args, "a@x"))
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		wantIgnored := strings.Join(args[1:], "")
		if !reflect.DeepEqual(*r, request{Ignored: []string{wantIgnored}, Recipients: []string{"a@x"}}) {
			t.Errorf("%q: %+v", args, *r)
		}
	}
}

// TestUsageText: --help names every row's syntax and says why each ignored
// flag is ignored.
func TestUsageText(t *testing.T) {
	text := usageText()
	for _, f := range flags {
		if !strings.Contains(text, f.syntax) {
			t.Errorf("usageText lacks %q", f.syntax)
		}
		// The reason may be wrapped across lines; compare with spaces
		// folded.
		folded := strings.Join(strings.Fields(text), " ")
		if !strings.Contains(folded, f.what) || !strings.Contains(folded, sentence(f.reason)) {
			t.Errorf("usageText lacks the meaning or reason of %s", f.syntax)
		}
	}
	for c := range parseOptstring(postfixOpts + sendmail8Opts) {
		if !strings.Contains(text, "  -"+string(c)) {
			t.Errorf("usageText does not list -%c", c)
		}
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > 79 {
			t.Errorf("line %d is %d columns: %q", i+1, n, line)
		}
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d has trailing spaces", i+1)
		}
	}
}

// TestModeString keeps the mode names, which -v output and messages use.
func TestModeString(t *testing.T) {
	for m, s := range map[Mode]string{
		ModeDeliver: "deliver", ModeSMTP: "smtp", ModePrintQueue: "print-queue", ModeInitAliases: "init-aliases",
		ModeVerify: "verify", ModeRunQueue: "run-queue", ModeDaemon: "daemon", ModeUnsupported: "unsupported",
		ModeHelp: "help", ModeVersion: "version", Mode(99): "Mode(99)",
	} {
		if m.String() != s {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), m.String(), s)
		}
	}
}

// TestParseDoesNotAliasArgv: the request does not share memory with argv, so
// a caller may reuse its slice.
func TestParseDoesNotAliasArgv(t *testing.T) {
	args := argv("--", "a@x", "b@x")
	r, err := parseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	args[2] = "changed"
	if r.Recipients[0] != "a@x" {
		t.Errorf("Recipients alias argv: %q", r.Recipients)
	}
}

// scanForX is an independent model of getopt's scan: it reports whether -X
// appears as an option letter, that is not inside a value, not after the
// operands begin and not after an unknown letter (which fails the parse
// first).
func scanForX(argv []string) (sawX bool) {
	if len(argv) < 2 || argv[1] == "--help" || argv[1] == "--version" {
		return false
	}
	values := parseOptstring(postfixOpts + sendmail8Opts)
	args := argv[1:]
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return false
		}
		for i := 1; i < len(a); i++ {
			c := rune(a[i])
			if c == 'X' {
				return true
			}
			v, known := values[c]
			if !known || c >= 0x80 {
				return false // an unknown letter stops the parse first
			}
			if v {
				if c == 'q' || i+1 < len(a) {
					break // the value is the rest of this argument
				}
				if len(args) == 0 {
					return false
				}
				args = args[1:] // the value is the next argument
				break
			}
		}
	}
	return false
}

// TestScanForX checks the fuzz oracle itself, so that a passing fuzz run
// means something.
func TestScanForX(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{argv("-X", "f"), true},
		{argv("-tiX/x"), true},
		{argv("-oi", "-X"), true},
		{argv("-f", "a", "-X/x"), true},
		{argv("-f", "-X/x"), false},
		{argv("-fX/x"), false},
		{argv("-oX/x"), false},
		{argv("-qX"), false},
		{argv("--", "-X/x"), false},
		{argv("a@b", "-X/x"), false},
		{argv("-z", "-X/x"), false},
		{argv("--help", "-X/x"), false},
	} {
		if got := scanForX(tt.args); got != tt.want {
			t.Errorf("scanForX(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"sendmail -t -i",
		"sendmail -oi -fsender@x -t",
		"sendmail -FCronDaemon -i -B8BITMIME -oem a@x, b@y",
		"sendmail -oem -oi -B8BITMIME -f me@x -N failure,delay -R hdrs -- a@x -b@y",
		"sendmail -tiX/var/www/x.php",
		"sendmail -f a@b\x00-X/x\x00c@d",
		"mailq -q",
		"newaliases -bp",
		"sendmail -q 30m",
		"sendmail -b",
		"sendmail -o",
		"sendmail --help",
		"sendmail a@x -oQ/tmp",
		"sendmail -O SMTPUTF8=yes -V env -N never",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var args []string
		if strings.Contains(s, "\x00") {
			args = strings.Split(s, "\x00")
		} else {
			args = strings.Split(s, " ")
		}
		r, err := parseArgs(args)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "sendmail: ") {
				t.Fatalf("parseArgs(%q): error %T %q", args, err, err)
			}
			if r != nil {
				t.Fatalf("parseArgs(%q): request with error", args)
			}
			return
		}
		if r == nil {
			t.Fatalf("parseArgs(%q): nil request without error", args)
		}
		if scanForX(args) {
			t.Fatalf("parseArgs(%q) accepted -X: %+v", args, *r)
		}
		for _, rcpt := range r.Recipients {
			if strings.HasPrefix(rcpt, "-") && !r.DashDash {
				t.Fatalf("parseArgs(%q): recipient %q begins with - without --", args, rcpt)
			}
		}
		if r.EnvID != "" && len(r.EnvID) > 100 {
			t.Fatalf("parseArgs(%q): EnvID of %d octets", args, len(r.EnvID))
		}
		for _, n := range r.Notify {
			if n != "NEVER" && n != "SUCCESS" && n != "FAILURE" && n != "DELAY" {
				t.Fatalf("parseArgs(%q): Notify %q", args, r.Notify)
			}
		}
		switch r.DeliveryMode {
		case 0, 'i', 'b', 'q', 'd':
		default:
			t.Fatalf("parseArgs(%q): DeliveryMode %q", args, r.DeliveryMode)
		}
	})
}

func TestJSONFlag(t *testing.T) {
	for _, argv := range [][]string{{"mailq", "--json"}, {"sendmail", "--json", "-bp"}} {
		r, err := parseArgs(argv)
		if err != nil || !r.JSON || r.Mode != ModePrintQueue {
			t.Errorf("%q: %+v %v", argv, r, err)
		}
	}
	for _, argv := range [][]string{{"sendmail", "--json", "a@x"}, {"mailq", "-bp", "--json"}} {
		if _, err := parseArgs(argv); err == nil {
			t.Errorf("%q accepted", argv)
		}
	}
}
