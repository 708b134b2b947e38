package callers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The .deb is built once per test binary, with `make package`, into a
// directory TestMain removes.
var deb struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if deb.dir != "" {
		os.RemoveAll(deb.dir)
	}
	os.Exit(code)
}

// buildDeb returns the .deb that `make package` builds from this tree.
func buildDeb(t *testing.T) string {
	t.Helper()
	deb.once.Do(func() {
		deb.dir, deb.err = os.MkdirTemp("", "relaymail-callers-dist-")
		if deb.err != nil {
			return
		}
		cmd := exec.Command("make", "-s", "-C", "../..", "package", "DIST="+deb.dir)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			deb.err = fmt.Errorf("make package: %v\n%s", err, out)
			return
		}
		debs, _ := filepath.Glob(filepath.Join(deb.dir, "relaymail_*.deb"))
		if len(debs) != 1 {
			deb.err = fmt.Errorf("make package made %v", debs)
			return
		}
		deb.path = debs[0]
	})
	if deb.err != nil {
		t.Fatal(deb.err)
	}
	return deb.path
}

// cleanRoot is the minimal Debian that scripts/e2e-deps.sh bootstraps.
const cleanRoot = "/var/cache/relaymail-e2e/debian-minbase"

// cleanInstall runs in a private mount namespace: an overlay over the clean
// root (so that the root stays clean), /proc, the .deb copied in, then the
// checks of cleanChecks in a chroot.
const cleanInstall = `set -eu
root=$1 tmp=$2 deb=$3
mkdir "$tmp/up" "$tmp/work" "$tmp/merged"
mount -t overlay relaymail-e2e-clean -o "lowerdir=$root,upperdir=$tmp/up,workdir=$tmp/work" "$tmp/merged"
mount -t proc proc "$tmp/merged/proc"
cp "$deb" "$tmp/merged/tmp/relaymail.deb"
exec chroot "$tmp/merged" /bin/sh -s
`

// cleanChecks is the install, the use and the removal on the clean system;
// every check prints what failed and exits 1.
const cleanChecks = `set -eu
fail() { echo "FAIL: $*"; exit 1; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive
for mta in sendmail mailq newaliases; do ! command -v $mta >/dev/null || fail "$mta exists before the install"; done
dpkg -i /tmp/relaymail.deb || fail "dpkg -i"
getent group relaymail >/dev/null || fail "no relaymail group"
getent passwd relaymail >/dev/null || fail "no relaymail user"
check() { got=$(stat -c '%04a %U %G' "$1"); [ "$got" = "$2" ] || fail "$1 is $got, want $2"; }
check /usr/sbin/sendmail "2755 root relaymail"
check /usr/bin/qmail-inject "2755 root relaymail"
check /etc/relaymail.conf "0640 root relaymail"
for d in /var/spool/relaymail /var/spool/relaymail/tmp /var/spool/relaymail/msg /var/spool/relaymail/env /var/spool/relaymail/failed; do
	check $d "2770 root relaymail"
done
[ "$(readlink -f /usr/bin/mailq)" = /usr/sbin/sendmail ] || fail "mailq"
[ "$(readlink -f /var/qmail/bin/qmail-inject)" = /usr/bin/qmail-inject ] || fail "/var/qmail/bin/qmail-inject"
# With no smarthost yet, a user's message is queued: exit 0.
printf 'Subject: on a clean system\n\nx\n' | setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/sbin/sendmail -i a@example.org 2>/tmp/err ||
	fail "sendmail as nobody: $(cat /tmp/err)"
n=$(ls /var/spool/relaymail/env | wc -l)
[ "$n" = 1 ] || fail "$n messages queued, want 1"
id=$(ls /var/spool/relaymail/env)
mailq | grep -q "$id" || fail "mailq does not list $id"
dpkg -r relaymail || fail "dpkg -r"
! [ -e /usr/sbin/sendmail ] || fail "/usr/sbin/sendmail is still there"
[ -f "/var/spool/relaymail/env/$id" ] && [ -f "/var/spool/relaymail/msg/$id" ] || fail "dpkg -r removed the queued message"
[ -f /etc/relaymail.conf ] || fail "dpkg -r removed the configuration"
dpkg -i /tmp/relaymail.deb >/dev/null || fail "dpkg -i again"
mailq | grep -q "$id" || fail "after reinstalling, mailq does not list $id"
dpkg --purge relaymail || fail "dpkg --purge"
[ -f "/var/spool/relaymail/env/$id" ] || fail "dpkg --purge removed the queued message"
! [ -e /etc/relaymail.conf ] || fail "dpkg --purge kept the configuration"
echo "clean install: ok"
`

// TestCleanDebianInstall: dpkg -i of the .deb on a minimal Debian (only
// what debootstrap --variant=minbase installs: no systemd, no cron, no
// man-db) works; a user can queue mail at once; dpkg -r and dpkg --purge
// leave queued mail where it is.
func TestCleanDebianInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		unavailable(t, "needs root: it mounts an overlay and chroots")
	}
	if _, err := os.Stat(filepath.Join(cleanRoot, "usr/bin/dpkg")); err != nil {
		unavailable(t, "no clean Debian root in %s (scripts/e2e-deps.sh bootstraps it): %v", cleanRoot, err)
	}
	path := buildDeb(t)
	tmp, err := os.MkdirTemp("", "relaymail-clean-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", cleanInstall, "relaymail-e2e-clean", cleanRoot, tmp, path)
	cmd.Stdin = strings.NewReader(cleanChecks)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "clean install: ok") {
		t.Fatalf("the install on a clean Debian failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
