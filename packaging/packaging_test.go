// Package packaging tests what packaging/ ships: the commented
// /etc/relaymail.conf documents every configuration key with a valid
// example, and `make package` builds a .deb, an .rpm and an .apk that are
// reproducible and hold the files, modes, owners and metadata of
// packaging/README.md.
package packaging

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/config"
)

const confPath = "relaymail.conf"

// setting matches a commented-out setting of the shipped file: "#key value"
// with no space after the #, which is what an administrator uncomments.
var setting = regexp.MustCompile(`^#([a-z][a-z0-9_]*)(?:[ \t]+(.*))?$`)

// loadConf loads content as /etc/relaymail.conf with nothing from the host:
// no environment, a fixed host name, and stand-in contents for the files the
// configuration names (secrets, certificates).
func loadConf(content string) (*config.Config, error) {
	return config.Load(config.Options{
		Path:         "/etc/relaymail.conf",
		Getenv:       func(string) (string, bool) { return "", false },
		MailnamePath: "/nonexistent/mailname",
		HostsPath:    "/nonexistent/hosts",
		Hostname:     func() (string, error) { return "host.example.com", nil },
		ReadFile: func(p string) ([]byte, error) {
			if p == "/etc/relaymail.conf" {
				return []byte(content), nil
			}
			return []byte("stand-in\n"), nil
		},
		Stat: func(string) (fs.FileInfo, error) { return nil, fs.ErrNotExist },
	})
}

// TestConfigDocumentsEveryKey: packaging/relaymail.conf, installed as
// /etc/relaymail.conf, loads as it is (every setting commented, the
// smarthost left to the administrator), shows every key of the schema as a
// commented setting with its description, and every commented setting,
// uncommented with the ones of its paragraph, is valid.
func TestConfigDocumentsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
			t.Errorf("%s:%d: an active setting %q; the shipped file leaves every key to the administrator", confPath, i+1, s)
		}
	}
	if _, err := loadConf(text); err != nil {
		t.Fatalf("the shipped file does not load: %v", err)
	}

	// Every key (or its _file twin) appears as a commented setting, and
	// its explanation names it in a "# key ..." line above.
	shown := map[string]bool{}
	for _, l := range lines {
		if m := setting.FindStringSubmatch(l); m != nil {
			shown[strings.TrimSuffix(m[1], "_file")] = true
			shown[m[1]] = true
		}
	}
	for _, k := range config.Keys() {
		if !shown[k.Name] {
			t.Errorf("%s has no commented setting for the key %q (add \"#%s ...\" with its default or an example)", confPath, k.Name, k.Name)
		}
		if !regexp.MustCompile(`(?m)^# ` + regexp.QuoteMeta(k.Name) + `\b`).MatchString(text) {
			t.Errorf("%s does not explain the key %q in a \"# %s ...\" comment", confPath, k.Name, k.Name)
		}
	}

	// Uncomment each paragraph's settings (tls_cert_file goes with
	// tls_key_file) and load.
	for start := 0; start < len(lines); {
		if !setting.MatchString(lines[start]) {
			start++
			continue
		}
		end := start
		for end < len(lines) && setting.MatchString(lines[end]) {
			end++
		}
		edited := append([]string(nil), lines...)
		var keys []string
		for i := start; i < end; i++ {
			edited[i] = strings.TrimPrefix(lines[i], "#")
			keys = append(keys, setting.FindStringSubmatch(lines[i])[1])
		}
		if _, err := loadConf(strings.Join(edited, "\n")); err != nil {
			t.Errorf("%s:%d: uncommented, %v does not load: %v", confPath, start+1, keys, err)
		}
		start = end
	}
}

// A packaged file: its type and mode as ls shows them, owner, group and,
// for a link, its target.
type entry struct {
	mode, owner, group, link string
}

// wantFiles are the files whose mode and owner matter; packaging/README.md
// gives the reasons.
var wantFiles = map[string]entry{
	"/usr/sbin/sendmail":                        {"-rwxr-sr-x", "root", "relaymail", ""},
	"/usr/bin/qmail-inject":                     {"-rwxr-sr-x", "root", "relaymail", ""},
	"/usr/bin/mailq":                            {"l", "", "", "../sbin/sendmail"},
	"/usr/sbin/newaliases":                      {"l", "", "", "sendmail"},
	"/usr/lib/sendmail":                         {"l", "", "", "../sbin/sendmail"},
	"/var/qmail/bin/qmail-inject":               {"l", "", "", "/usr/bin/qmail-inject"},
	"/etc/relaymail.conf":                       {"-rw-r-----", "root", "relaymail", ""},
	"/etc/cron.d/relaymail":                     {"-rw-r--r--", "root", "root", ""},
	"/usr/lib/systemd/system/relaymail.service": {"-rw-r--r--", "root", "root", ""},
	"/var/spool/relaymail":                      {"drwxrws---", "root", "relaymail", ""},
	"/var/spool/relaymail/tmp":                  {"drwxrws---", "root", "relaymail", ""},
	"/var/spool/relaymail/msg":                  {"drwxrws---", "root", "relaymail", ""},
	"/var/spool/relaymail/env":                  {"drwxrws---", "root", "relaymail", ""},
	"/var/spool/relaymail/failed":               {"drwxrws---", "root", "relaymail", ""},
	"/usr/share/man/man8/sendmail.8.gz":         {"-rw-r--r--", "root", "root", ""},
	"/usr/share/man/man8/qmail-inject.8.gz":     {"-rw-r--r--", "root", "root", ""},
	"/usr/share/man/man5/relaymail.conf.5.gz":   {"-rw-r--r--", "root", "root", ""},
	"/usr/share/man/man5/relaymail-queue.5.gz":  {"-rw-r--r--", "root", "root", ""},
	"/usr/share/man/man8/mailq.8.gz":            {"l", "", "", "sendmail.8.gz"},
	"/usr/share/man/man8/newaliases.8.gz":       {"l", "", "", "sendmail.8.gz"},
}

// otherMTAs are the Debian packages that provide mail-transport-agent (and
// a few from other releases); the package conflicts with and replaces
// each.
var otherMTAs = []string{
	"postfix", "exim4-daemon-light", "exim4-daemon-heavy", "sendmail-bin", "msmtp-mta", "nullmailer",
	"ssmtp", "dma", "opensmtpd", "courier-mta", "citadel-mta", "esmtp-run",
}

// BuildPackages runs `make package` into dist and returns the three files.
func BuildPackages(t testing.TB, dist string) (deb, rpm, apk string) {
	t.Helper()
	cmd := exec.Command("make", "-s", "-C", "..", "package", "DIST="+dist)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	one := func(glob string) string {
		m, _ := filepath.Glob(filepath.Join(dist, glob))
		if len(m) != 1 {
			t.Fatalf("make package made %v for %s", m, glob)
		}
		return m[0]
	}
	return one("relaymail_*.deb"), one("relaymail-*.rpm"), one("relaymail_*.apk")
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPackages: make package, twice, gives the same bytes (SOURCE_DATE_EPOCH
// is the last commit's time), and each package holds the files with the
// modes and owners of the security model, and Debian's MTA metadata.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the packages twice")
	}
	for _, tool := range []string{"make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	a, b := t.TempDir(), t.TempDir()
	start := time.Now()
	debA, rpmA, apkA := BuildPackages(t, a)
	t.Logf("make package: %v", time.Since(start).Round(time.Millisecond))
	debB, rpmB, apkB := BuildPackages(t, b)
	for _, p := range [][2]string{{debA, debB}, {rpmA, rpmB}, {apkA, apkB}} {
		if filepath.Base(p[0]) != filepath.Base(p[1]) {
			t.Errorf("two builds named the package %s and %s", filepath.Base(p[0]), filepath.Base(p[1]))
		}
		if sa, sb := sha(t, p[0]), sha(t, p[1]); sa != sb {
			t.Errorf("%s is not reproducible: sha256 %s, then %s", filepath.Base(p[0]), sa, sb)
		}
	}

	t.Run("deb", func(t *testing.T) { checkDeb(t, debA) })
	t.Run("rpm", func(t *testing.T) { checkRPM(t, rpmA) })
	t.Run("apk", func(t *testing.T) { checkAPK(t, apkA) })
}

func checkFiles(t *testing.T, format string, got map[string]entry) {
	t.Helper()
	names := make([]string, 0, len(wantFiles))
	for n := range wantFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := wantFiles[n]
		g, ok := got[n]
		switch {
		case !ok:
			t.Errorf("%s: %s is missing", format, n)
		case w.mode == "l":
			if !strings.HasPrefix(g.mode, "l") || g.link != w.link {
				t.Errorf("%s: %s is %s -> %q, want a link to %q", format, n, g.mode, g.link, w.link)
			}
		case g.mode != w.mode || g.owner != w.owner || g.group != w.group:
			t.Errorf("%s: %s is %s %s:%s, want %s %s:%s", format, n, g.mode, g.owner, g.group, w.mode, w.owner, w.group)
		}
	}
}

// tarEntries lists a tar stream as checkFiles wants it.
func tarEntries(r io.Reader, prefix string) (map[string]entry, error) {
	got := map[string]entry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h.Name, prefix), "/"), "/")
		got[name] = entry{mode: h.FileInfo().Mode().String(), owner: h.Uname, group: h.Gname, link: h.Linkname}
	}
}

// lsMode turns Go's rendering of a mode into ls's: "dgrwxrwx---" is
// "drwxrws---", "g-rwxr-xr-x" is "-rwxr-sr-x".
func lsMode(goMode string) string {
	fm := goMode
	setgid := strings.Contains(fm[:len(fm)-9], "g")
	kind := "-"
	switch {
	case strings.HasPrefix(fm, "d"):
		kind = "d"
	case strings.HasPrefix(fm, "L"):
		kind = "l"
	}
	perm := []byte(fm[len(fm)-9:])
	if setgid {
		if perm[5] == 'x' {
			perm[5] = 's'
		} else {
			perm[5] = 'S'
		}
	}
	return kind + string(perm)
}

func normalise(got map[string]entry) map[string]entry {
	for n, e := range got {
		e.mode = lsMode(e.mode)
		got[n] = e
	}
	return got
}

func checkDeb(t *testing.T, deb string) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	data, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile: %v", err)
	}
	got, err := tarEntries(bytes.NewReader(data), ".")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, "deb", normalise(got))

	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "-f", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	if p := field("Provides"); p != "mail-transport-agent" {
		t.Errorf("Provides: %q, want mail-transport-agent", p)
	}
	for _, f := range []string{"Conflicts", "Replaces"} {
		list := map[string]bool{}
		for _, p := range strings.Split(field(f), ",") {
			list[strings.TrimSpace(p)] = true
		}
		for _, mta := range append([]string{"mail-transport-agent"}, otherMTAs...) {
			if !list[mta] {
				t.Errorf("%s does not name %s", f, mta)
			}
		}
	}
	if s := field("Section"); s != "mail" {
		t.Errorf("Section: %q", s)
	}

	ctl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--control", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(conffiles)); strings.Join(got, " ") != "/etc/cron.d/relaymail /etc/relaymail.conf" {
		t.Errorf("conffiles: %q", got)
	}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if fi, err := os.Stat(filepath.Join(ctl, s)); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("maintainer script %s: %v", s, err)
		}
	}
}

func checkRPM(t *testing.T, rpm string) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed")
	}
	out, err := exec.Command("rpm", "-qp", "--nosignature", "--qf",
		`[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES} %{FILELINKTOS}\n]`, rpm).Output()
	if err != nil {
		t.Fatalf("rpm -qp: %v", err)
	}
	got := map[string]entry{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		e := entry{mode: f[0], owner: f[1], group: f[2]}
		if len(f) > 4 {
			e.link = f[4]
		}
		got[f[3]] = e
	}
	checkFiles(t, "rpm", got)
	cfg, err := exec.Command("rpm", "-qp", "--nosignature", "--configfiles", rpm).Output()
	if err != nil || !strings.Contains(string(cfg), "/etc/relaymail.conf") {
		t.Errorf("rpm config files: %q (%v)", cfg, err)
	}
	prov, _ := exec.Command("rpm", "-qp", "--nosignature", "--provides", rpm).Output()
	if !strings.Contains(string(prov), "mail-transport-agent") {
		t.Errorf("rpm provides: %q", prov)
	}
	scripts, _ := exec.Command("rpm", "-qp", "--nosignature", "--scripts", rpm).Output()
	for _, s := range []string{"preinstall", "postinstall", "preuninstall", "postuninstall"} {
		if !strings.Contains(string(scripts), s+" scriptlet") {
			t.Errorf("rpm has no %s scriptlet", s)
		}
	}
}

func checkAPK(t *testing.T, apk string) {
	f, err := os.Open(apk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// An apk is gzip streams of tar segments (control, then data), read
	// here as one stream.
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tarEntries(zr, "")
	if err != nil {
		t.Fatal(err)
	}
	got = normalise(got)
	for n, e := range got {
		if strings.HasPrefix(e.mode, "l") {
			e.owner, e.group = "", ""
			got[n] = e
		}
	}
	checkFiles(t, "apk", got)
	for _, s := range []string{"/.pre-install", "/.post-install", "/.post-upgrade", "/.pre-deinstall", "/.post-deinstall"} {
		if _, ok := got[s]; !ok {
			t.Errorf("apk has no %s script", s)
		}
	}
}
