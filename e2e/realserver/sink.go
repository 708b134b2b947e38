package realserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// SinkOption is a group of smtp-sink(1) command-line arguments. The
// functions below name the useful ones; SinkArgs passes any others.
//
// smtp-sink has no STARTTLS and no CHUNKING (BDAT): a client must be told
// to use plain text (smtp://...?tls=none), and CHUNKING is tested against
// Postfix (PostfixOptions.MainCF "smtpd_discard_ehlo_keywords = chunking"
// turns it off there).
type SinkOption []string

// SinkArgs passes arguments to smtp-sink as they are. Do not use -n or -M:
// the harness makes one connection of its own to see that the sink is up.
func SinkArgs(args ...string) SinkOption { return args }

func commands(cmds []string) string { return strings.Join(cmds, ",") }

// HardReject answers the named commands (CONNECT, HELO, EHLO, LHLO, MAIL,
// RCPT, DATA, ".", RSET, NOOP, QUIT, ...) with a 5xx reply, by default
// "500 5.3.0 Error: command failed" (see HardReply). "." rejects the
// message after its data. It implies NoPipelining.
func HardReject(cmds ...string) SinkOption { return SinkOption{"-f", commands(cmds)} }

// SoftReject answers the named commands with a 4xx reply, by default
// "450 4.3.0 Error: command failed" (see SoftReply). It implies
// NoPipelining.
func SoftReject(cmds ...string) SinkOption { return SinkOption{"-r", commands(cmds)} }

// HardReply sets the reply of HardReject, e.g. "550 5.1.1 no such user".
func HardReply(reply string) SinkOption { return SinkOption{"-B", reply} }

// SoftReply sets the reply of SoftReject, e.g. "452 4.2.2 mailbox full".
func SoftReply(reply string) SinkOption { return SinkOption{"-b", reply} }

// DisconnectAfter closes the connection, without a reply, after one of the
// named commands.
func DisconnectAfter(cmds ...string) SinkOption { return SinkOption{"-q", commands(cmds)} }

// Reply421After answers one of the named commands with 421 and
// disconnects.
func Reply421After(cmds ...string) SinkOption { return SinkOption{"-Q", commands(cmds)} }

// NoPipelining does not announce PIPELINING.
func NoPipelining() SinkOption { return SinkOption{"-p"} }

// No8BitMIME does not announce 8BITMIME.
func No8BitMIME() SinkOption { return SinkOption{"-8"} }

// NoDSN does not announce DSN.
func NoDSN() SinkOption { return SinkOption{"-N"} }

// NoEnhancedStatusCodes does not announce ENHANCEDSTATUSCODES.
func NoEnhancedStatusCodes() SinkOption { return SinkOption{"-E"} }

// NoESMTP does not announce ESMTP: EHLO is refused and a client must fall
// back to HELO.
func NoESMTP() SinkOption { return SinkOption{"-e"} }

// NoAuth does not announce AUTH (smtp-sink announces AUTH PLAIN LOGIN by
// default and accepts any credentials).
func NoAuth() SinkOption { return SinkOption{"-a"} }

// DelayData waits this many seconds before answering DATA.
func DelayData(seconds int) SinkOption { return SinkOption{"-w", strconv.Itoa(seconds)} }

// LMTP makes the sink speak LMTP (one reply per recipient after DATA).
func LMTP() SinkOption { return SinkOption{"-L"} }

// OnUnixSocket makes the sink listen on a unix socket (Sink.Socket)
// instead of a TCP port.
func OnUnixSocket() SinkOption { return SinkOption{unixMarker} }

const unixMarker = "\x00unix"

// Sink is a running smtp-sink. It keeps every message whose data it
// received (see Messages).
type Sink struct {
	Addr   string // 127.0.0.1:port, "" when on a unix socket
	Socket string // unix socket path, "" when on TCP
	Dir    string

	tb   testing.TB
	proc *process
	dump string
}

// SinkMessage is one mail transaction smtp-sink accepted.
type SinkMessage struct {
	Helo     string   // the HELO/EHLO/LHLO argument
	MailArgs string   // everything after "MAIL FROM:", e.g. "<a@example.com> SIZE=123"
	RcptArgs []string // everything after "RCPT TO:", one per RCPT
	Data     []byte   // what the client sent, LF line endings, no dot-stuffing
}

// StartSMTPSink starts smtp-sink with opts and stops it at the test's
// cleanup. It skips the test when smtp-sink is not there and cannot be
// installed.
func StartSMTPSink(tb testing.TB, opts ...SinkOption) *Sink {
	tb.Helper()
	need(tb, "smtp-sink", checkSink)
	userName, mail, err := mailUser()
	if err != nil {
		tb.Fatal(err)
	}
	root := postfixRoot()
	dir := instanceDir(tb, "rms-")
	s := &Sink{Dir: dir, tb: tb, dump: filepath.Join(dir, "dump")}
	if err := mkdirOwned(s.dump, 0o755, mail.uid, mail.gid); err != nil {
		tb.Fatal(err)
	}
	var args []string
	unix := false
	for _, o := range opts {
		if len(o) == 1 && o[0] == unixMarker {
			unix = true
			continue
		}
		args = append(args, o...)
	}
	env := []string{"PATH=/usr/bin:/bin", "TZ=UTC", "LD_LIBRARY_PATH=" + filepath.Join(root, "usr/lib/postfix")}
	s.proc = startRetrying(tb, fmt.Sprintf("smtp-sink %q", args), func() (*process, []func() error) {
		var listen string
		var ready func() error
		if unix {
			s.Socket = filepath.Join(dir, "smtp")
			listen = "unix:" + s.Socket
			ready = listens("unix", s.Socket)
		} else {
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(tb, 1)[0]))
			listen = "inet:" + s.Addr
			ready = listens("tcp", s.Addr)
		}
		argv := append([]string{filepath.Join(root, "usr/sbin/smtp-sink"), "-u", userName, "-d", s.dump + "/%Y%m%d%H%M%S."}, args...)
		argv = append(argv, listen, "64")
		p, err := start("smtp-sink", dir, argv, env)
		if err != nil {
			tb.Fatal(err)
		}
		return p, []func() error{ready}
	})
	return s
}

// Messages returns the transactions that reached the end of their data,
// oldest first. smtp-sink keeps a message even when it then rejects it
// (HardReject(".") or SoftReject(".")). Errors are reported with Errorf,
// so it may be called from subtests.
func (s *Sink) Messages() []SinkMessage {
	s.tb.Helper()
	ents, err := os.ReadDir(s.dump)
	if err != nil {
		s.tb.Errorf("realserver: %v", err)
		return nil
	}
	type file struct {
		name string
		ns   int64
	}
	var files []file
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		files = append(files, file{e.Name(), info.ModTime().UnixNano()})
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].ns != files[j].ns {
			return files[i].ns < files[j].ns
		}
		return files[i].name < files[j].name
	})
	var msgs []SinkMessage
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(s.dump, f.name))
		if err != nil {
			s.tb.Errorf("realserver: %v", err)
			continue
		}
		m, err := parseSinkDump(raw)
		if err != nil {
			s.tb.Errorf("realserver: smtp-sink dump %s: %v", f.name, err)
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// parseSinkDump reads smtp-sink's dump format: X-Client-Addr,
// X-Client-Proto, X-Helo-Args, X-Mail-Args, X-Rcpt-Args... records, its own
// Received field, the message, and an empty line.
func parseSinkDump(raw []byte) (SinkMessage, error) {
	var m SinkMessage
	rest := raw
	for {
		if _, r, ok := cutLeadingField(rest, "Received"); ok {
			rest = r
			break
		}
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return m, errors.New("no Received field")
		}
		name, value, _ := strings.Cut(string(rest[:nl]), ":")
		value = strings.TrimSpace(value)
		switch name {
		case "X-Helo-Args":
			m.Helo = value
		case "X-Mail-Args":
			m.MailArgs = value
		case "X-Rcpt-Args":
			m.RcptArgs = append(m.RcptArgs, value)
		case "X-Client-Addr", "X-Client-Proto":
		default:
			return m, fmt.Errorf("unexpected record %q", rest[:nl])
		}
		rest = rest[nl+1:]
	}
	data, ok := bytes.CutSuffix(rest, []byte("\n"))
	if !ok {
		return m, errors.New("no final empty line")
	}
	m.Data = data
	return m, nil
}
