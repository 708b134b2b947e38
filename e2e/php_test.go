package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/e2e/realserver"
	"github.com/relaymail/relaymail/relay/relaytest"
)

// phpSymfonyMailer runs e2e/testdata/php/symfony-mailer.php: Symfony
// Mailer's SendmailTransport with the given command, as an application
// configured for it sends a message.
func phpSymfonyMailer(t *testing.T, env []string, command, to, bcc, token string) (string, error) {
	t.Helper()
	cmd := exec.Command("php", "testdata/php/symfony-mailer.php", command, "app@example.com", to, bcc, "real caller "+token, token)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The done-when of SMTP on standard input: a PHP application using Symfony
// Mailer's default sendmail transport (sendmail -bs), and Laravel's
// (sendmail -bs -i), deliver through relaymail to real Dovecot.
func TestPHPSymfonyMailerToDovecot(t *testing.T) {
	realserver.NeedPHP(t)
	needClient(t, "lmtp")
	dc := realserver.StartDovecot(t)
	for _, c := range []struct{ name, flags, token string }{
		{"Symfony default (-bs)", "-bs", "TOKEN-SYMFONY"},
		{"Laravel (-bs -i)", "-bs -i", "TOKEN-LARAVEL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := baseEnv(t, "lmtp://"+dc.LMTPAddr)
			out, err := phpSymfonyMailer(t, env, sendmailBin+" "+c.flags, realserver.User1+"@example.com", "-", c.token)
			if err != nil || !strings.Contains(out, "sent") {
				t.Fatalf("php: %v\n%s", err, out)
			}
			found := false
			for _, m := range dc.Maildir(realserver.User1) {
				body := string(m.Content)
				if strings.Contains(body, c.token) {
					found = true
					if m.ReturnPath != "app@example.com" || !strings.Contains(body, "\n.a line that starts with a dot\n") {
						t.Errorf("delivered message, return path %q:\n%s", m.ReturnPath, body)
					}
				}
			}
			if !found {
				t.Errorf("no message with %s in user1's maildir", c.token)
			}
		})
	}
}

// Symfony puts Bcc recipients in the envelope only; relaymail delivers to
// them and no Bcc header appears.
func TestPHPSymfonyMailerBcc(t *testing.T) {
	realserver.NeedPHP(t)
	srv := relaytest.NewQMTPServer(t)
	env := baseEnv(t, qmtpURL(srv))
	out, err := phpSymfonyMailer(t, env, sendmailBin+" -bs", "you@example.org", "hidden@example.net", "TOKEN-BCC")
	if err != nil {
		t.Fatalf("php: %v\n%s", err, out)
	}
	p := srv.Packages()
	if len(p) != 1 || strings.Join(p[0].Recipients, " ") != "you@example.org hidden@example.net" || p[0].Sender != "app@example.com" {
		t.Fatalf("smarthost got %+v", p)
	}
	if strings.Contains(strings.ToLower(string(p[0].Message)), "\nbcc:") {
		t.Errorf("Bcc header leaked:\n%s", p[0].Message)
	}
}
