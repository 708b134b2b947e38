package maillog

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSyslogFacilityMail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	old := syslogSockets
	syslogSockets = []string{path}
	defer func() { syslogSockets = old }()

	var stderr bytes.Buffer
	l := New("syslog", "relaymail", &stderr)
	l.Info("%s: to=<%s>, status=sent", "<id@x>", "a@x")
	l.Warning("disk nearly full")
	l.Close()

	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	// <22> is facility mail (2) * 8 + severity info (6).
	if got := string(buf[:n]); !strings.HasPrefix(got, "<22>") || !strings.Contains(got, "relaymail[") || !strings.HasSuffix(strings.TrimSpace(got), "<id@x>: to=<a@x>, status=sent") {
		t.Errorf("syslog datagram %q", got)
	}
	n, _ = conn.Read(buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "<20>") { // mail.warning
		t.Errorf("warning datagram %q", got)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr used although syslog listens: %q", stderr.String())
	}
}

func TestFallbackToStderr(t *testing.T) {
	old := syslogSockets
	syslogSockets = []string{filepath.Join(t.TempDir(), "no-such-socket")}
	defer func() { syslogSockets = old }()
	var stderr bytes.Buffer
	l := New("syslog", "relaymail", &stderr)
	l.Info("hello %d", 1)
	if !strings.Contains(stderr.String(), "relaymail[") || !strings.HasSuffix(stderr.String(), "hello 1\n") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestModes(t *testing.T) {
	var stderr bytes.Buffer
	New("none", "x", &stderr).Info("quiet")
	if stderr.Len() != 0 {
		t.Errorf("none wrote %q", stderr.String())
	}
	New("stderr", "x", &stderr).Info("loud")
	if !strings.HasSuffix(stderr.String(), "]: loud\n") {
		t.Errorf("stderr wrote %q", stderr.String())
	}
	var nilLogger *Logger
	nilLogger.Info("no panic") // a nil logger is a no-op
}
