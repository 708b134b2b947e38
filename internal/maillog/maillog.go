// Package maillog writes relaymail's log lines: to syslog (facility mail)
// when a syslog daemon listens, else to standard error, so that a minimal
// container with no /dev/log still shows what happened.
package maillog

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"sync"
	"time"
)

// Logger writes one line per call.
type Logger struct {
	mu  sync.Mutex
	sys *syslog.Writer
	w   io.Writer // used when sys is nil; nil discards
	tag string
}

// New opens a logger. mode is "syslog", "stderr" or "none"; tag is the
// program name in each line (sendmail's -L).
func New(mode, tag string, stderr io.Writer) *Logger {
	l := &Logger{tag: tag}
	switch mode {
	case "none":
	case "stderr":
		l.w = stderr
	default:
		l.sys = dialSyslog(tag)
		if l.sys == nil {
			// No syslog daemon (a container): fall back to stderr rather
			// than lose the record.
			l.w = stderr
		}
	}
	return l
}

// SyslogOnly opens a logger that writes to syslog and nowhere else, for
// what the caller of a privileged sendmail must not see (the details of a
// configuration error, which may quote the file). Without a syslog daemon
// it discards.
func SyslogOnly(tag string) *Logger {
	return &Logger{tag: tag, sys: dialSyslog(tag)}
}

// syslogSockets are where a local syslog daemon listens, as log/syslog
// looks for them; a variable so that tests can stand one up.
var syslogSockets = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

func dialSyslog(tag string) *syslog.Writer {
	for _, path := range syslogSockets {
		for _, network := range []string{"unixgram", "unix"} {
			if w, err := syslog.Dial(network, path, syslog.LOG_MAIL|syslog.LOG_INFO, tag); err == nil {
				return w
			}
		}
	}
	return nil
}

// Info logs a routine event; Warning something an operator should look at.
func (l *Logger) Info(format string, a ...any)    { l.log(false, format, a...) }
func (l *Logger) Warning(format string, a ...any) { l.log(true, format, a...) }

func (l *Logger) log(warn bool, format string, a ...any) {
	if l == nil {
		return
	}
	msg := fmt.Sprintf(format, a...)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.sys != nil:
		if warn {
			l.sys.Warning(msg)
		} else {
			l.sys.Info(msg)
		}
	case l.w != nil:
		fmt.Fprintf(l.w, "%s %s[%d]: %s\n", time.Now().Format(time.RFC3339), l.tag, os.Getpid(), msg)
	}
}

// Close releases the syslog connection.
func (l *Logger) Close() error {
	if l != nil && l.sys != nil {
		return l.sys.Close()
	}
	return nil
}
