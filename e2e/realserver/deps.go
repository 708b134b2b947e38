package realserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// MailUser is the unprivileged system user that owns the test maildirs and
// runs Postfix's pipe recorder and smtp-sink. scripts/e2e-deps.sh creates it;
// when it is missing the harness falls back to nobody.
const MailUser = "relaymail-test"

// cacheDir is where scripts/e2e-deps.sh extracts Postfix.
func cacheDir() string {
	if d := os.Getenv("RELAYMAIL_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/relaymail-e2e"
}

// postfixRoot is the root of the extracted postfix package (dpkg -x).
func postfixRoot() string { return filepath.Join(cacheDir(), "postfix", "root") }

const (
	dovecotBin = "/usr/sbin/dovecot"
	lmtpBin    = "/usr/lib/dovecot/lmtp"
)

type ids struct{ uid, gid int }

func lookupUser(name string) (ids, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return ids{}, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return ids{}, err
	}
	return ids{uid, gid}, nil
}

// mailUser returns the unprivileged user for mail files and helpers.
func mailUser() (string, ids, error) {
	for _, name := range []string{MailUser, "nobody"} {
		if id, err := lookupUser(name); err == nil && id.uid != 0 {
			return name, id, nil
		}
	}
	return "", ids{}, fmt.Errorf("neither %s nor nobody exists", MailUser)
}

func checkDovecot() error {
	for _, p := range []string{dovecotBin, lmtpBin} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("dovecot is not installed (%s: %w)", p, errors.Unwrap(err))
		}
	}
	for _, u := range []string{"dovecot", "dovenull"} {
		if _, err := user.Lookup(u); err != nil {
			return fmt.Errorf("dovecot's user %s is missing: %w", u, err)
		}
	}
	_, _, err := mailUser()
	return err
}

func checkPostfix() error {
	root := postfixRoot()
	for _, p := range []string{"usr/lib/postfix/sbin/master", "usr/lib/postfix/sbin/smtpd", "usr/sbin/smtp-sink"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			return fmt.Errorf("postfix is not extracted in %s: %w", root, err)
		}
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("postfix's mail_owner: %w", err)
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		return fmt.Errorf("postfix's setgid_group: %w", err)
	}
	_, _, err := mailUser()
	return err
}

func checkSink() error {
	bin := filepath.Join(postfixRoot(), "usr/sbin/smtp-sink")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("smtp-sink (from postfix) is not extracted: %w", err)
	}
	_, _, err := mailUser()
	return err
}

var install struct {
	once sync.Once
	log  string
	err  error
}

// need makes sure check passes, running scripts/e2e-deps.sh once per test
// binary when it does not; otherwise it skips the test (or fails it in CI).
func need(tb testing.TB, what string, check func() error) {
	tb.Helper()
	if os.Geteuid() != 0 {
		unavailable(tb, "%s needs root (Dovecot and Postfix switch users themselves)", what)
	}
	err := check()
	if err == nil {
		return
	}
	if os.Getenv("RELAYMAIL_E2E_INSTALL") == "no" {
		unavailable(tb, "%s: %v (RELAYMAIL_E2E_INSTALL=no; run `make deps` or scripts/e2e-deps.sh as root)", what, err)
	}
	install.once.Do(runDepsScript)
	if install.log != "" {
		tb.Logf("scripts/e2e-deps.sh:\n%s", install.log)
	}
	if err := check(); err != nil {
		unavailable(tb, "%s: %v (installing with scripts/e2e-deps.sh: %v)", what, err, install.err)
	}
}

func runDepsScript() {
	script, err := findScript()
	if err != nil {
		install.err = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	install.log, install.err = string(out), err
}

// findScript looks for scripts/e2e-deps.sh above the working directory (go
// test runs in the package directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "e2e-deps.sh")
		if _, err := os.Stat(p); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/e2e-deps.sh not found above the working directory")
		}
		dir = parent
	}
}

// required says whether a missing server is a failure rather than a skip.
func required() bool {
	return os.Getenv("RELAYMAIL_E2E_REQUIRE") == "1" || os.Getenv("CI") == "true"
}

func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := "realserver: " + fmt.Sprintf(format, args...)
	if required() {
		tb.Fatal(msg + " [failing, not skipping: CI=true or RELAYMAIL_E2E_REQUIRE=1]")
	}
	tb.Skip(msg)
}

// SymfonyMailerAutoload is where Debian's php-symfony-mailer package puts
// the library's autoloader.
const SymfonyMailerAutoload = "/usr/share/php/Symfony/Component/Mailer/autoload.php"

// NeedPHP makes sure php-cli and Debian's Symfony Mailer are installed, for
// the tests that drive sendmail the way a PHP application does.
func NeedPHP(tb testing.TB) {
	tb.Helper()
	need(tb, "PHP with Symfony Mailer", func() error {
		if _, err := exec.LookPath("php"); err != nil {
			return errors.New("php is not installed (Debian package php-cli)")
		}
		if _, err := os.Stat(SymfonyMailerAutoload); err != nil {
			return errors.New("the Symfony Mailer library is not installed (Debian package php-symfony-mailer)")
		}
		return nil
	})
}
