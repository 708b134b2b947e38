package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/maillog"
)

// bsRun runs one -bs session in-process, with no smarthost, so that every
// complete message lands in the queue and can be counted.
func bsRun(t testing.TB, spool string, input []byte) (stdout string, code int, queued int) {
	cfg, err := config.Load(config.Options{Path: "/dev/null",
		Getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"RELAYMAIL_QUEUE_DIR": spool, "RELAYMAIL_DOMAIN": "example.com",
				"RELAYMAIL_HOSTNAME": "host.example.com", "RELAYMAIL_FLUSH_AFTER_SEND": "no",
				"RELAYMAIL_MAX_MESSAGE_SIZE": "64k"}[k]
			return v, ok
		}})
	if err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	s := &sendmail{stdin: bytes.NewReader(input), stdout: &out, stderr: &errs}
	s.log = maillog.New("none", "relaymail", &errs)
	req := &request{Mode: ModeSMTP, IgnoreDots: true}
	done := make(chan int, 1)
	go func() { done <- s.serveSMTP(req, cfg) }()
	select {
	case code = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("-bs session on %q did not end", input)
	}
	entries, _ := os.ReadDir(filepath.Join(spool, "env"))
	return out.String(), code, len(entries)
}

var loneDot = regexp.MustCompile(`(?m)^\.\r?$`)

// FuzzSMTPSession feeds random command streams to the -bs server: it never
// panics, never hangs, and never queues a message whose DATA did not end
// with the lone dot.
func FuzzSMTPSession(f *testing.F) {
	for _, s := range []string{
		"HELO a\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"EHLO a\nMAIL FROM:<>\nRCPT TO:<b@y.org>\nDATA\nx\n.\n",
		"EHLO a\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT 5 LAST\r\nhello",
		"HELP\r\nVRFY x\r\nNOOP\r\nRSET\r\nFROB\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\ncut off",
		"MAIL FROM:<a@x.org> BODY=8BITMIME SIZE=10 RET=HDRS ENVID=x\r\nRCPT TO:<b@y.org> NOTIFY=FAILURE ORCPT=rfc822;b@y.org\r\nDATA\r\n..\r\n.\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		out, code, queued := bsRun(t, t.TempDir(), in)
		if code != exOK && code != exIOErr {
			t.Fatalf("exit %d for %q", code, in)
		}
		if !strings.HasPrefix(out, "220 host.example.com ESMTP relaymail\r\n") {
			t.Fatalf("greeting %q", out)
		}
		// A message enters the queue only through a complete DATA (lone
		// dot) or a BDAT ... LAST.
		ends := len(loneDot.FindAll(in, -1)) + bytes.Count(bytes.ToUpper(in), []byte(" LAST"))
		if queued > ends {
			t.Fatalf("%d messages queued from %d complete ones in %q", queued, ends, in)
		}
	})
}

func TestSMTPSessionInProcess(t *testing.T) {
	out, code, queued := bsRun(t, t.TempDir(), []byte("HELO a\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n"))
	if code != exOK || queued != 1 || !strings.Contains(out, "\r\n221 ") {
		t.Errorf("exit %d, %d queued, stdout:\n%s", code, queued, out)
	}
}
