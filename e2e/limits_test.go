package e2e

import (
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay/relaytest"
)

// max_header_size and max_message_size apply in every mode that takes a
// message: sendmail with argument recipients, with -t, with -bs, and
// qmail-inject. Nothing over a limit is queued or sent.
func TestSizeLimitsInEveryMode(t *testing.T) {
	limits := []string{"RELAYMAIL_MAX_HEADER_SIZE=2k", "RELAYMAIL_MAX_MESSAGE_SIZE=8k"}
	bigHeader := "To: b@example.org\nSubject: " + strings.Repeat("h", 3000) + "\n\nbody\n"
	bigBody := "To: b@example.org\nSubject: big\n\n" + strings.Repeat(strings.Repeat("b", 70)+"\n", 200)
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	bs := func(msg string) string {
		return "EHLO app.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + crlf(msg) + ".\r\nQUIT\r\n"
	}
	for _, tc := range []struct {
		name  string
		qmail bool
		args  []string
		in    string
		exit  int
		want  string // in stdout (-bs) or stderr
	}{
		{"argv header", false, []string{"b@example.org"}, bigHeader, 65, "larger than 2048 bytes"},
		{"argv message", false, []string{"b@example.org"}, bigBody, 65, "larger than 8192 bytes"},
		{"-t header", false, []string{"-t"}, bigHeader, 65, "larger than 2048 bytes"},
		{"-t message", false, []string{"-t"}, bigBody, 65, "larger than 8192 bytes"},
		{"-bs header", false, []string{"-bs"}, bs(bigHeader), 0, "554 5.6.0"},
		{"-bs message", false, []string{"-bs"}, bs(bigBody), 0, "552 5.3.4"},
		{"qmail-inject header", true, nil, bigHeader, 100, "larger than 2048 bytes"},
		{"qmail-inject message", true, nil, bigBody, 100, "larger than 8192 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := relaytest.NewQMTPServer(t)
			var o outcome
			if tc.qmail {
				o = runSendmailAs(t, qmailInjectBin, qmailEnv(t, qmtpURL(srv), limits...), tc.args, []byte(tc.in))
			} else {
				o = runSendmail(t, mergeEnv(baseEnv(t, qmtpURL(srv)), limits), tc.args, []byte(tc.in))
			}
			if o.exit != tc.exit || !strings.Contains(o.stdout+o.stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s%s", o.exit, tc.exit, tc.want, o.stdout, o.stderr)
			}
			if n := len(srv.Packages()); n != 0 {
				t.Errorf("%d messages sent", n)
			}
			if strings.Contains(o.stderr, "queued as") {
				t.Errorf("queued:\n%s", o.stderr)
			}
		})
	}
}
