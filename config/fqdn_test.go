package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestHostDefaults(t *testing.T) {
	const debianHosts = "127.0.0.1\tlocalhost\n127.0.1.1\tbox.example.com\tbox\n\n# The following lines are desirable for IPv6\n::1     localhost ip6-localhost ip6-loopback\n"
	tests := []struct {
		name         string
		hostname     string
		hostnameErr  error
		hosts        *string // nil: no /etc/hosts
		mailname     *string // nil: no /etc/mailname
		file         string
		wantHostname string
		wantDomain   string
		wantErr      string
	}{
		{name: "kernel name has a dot", hostname: "mx.example.net", hosts: p(debianHosts),
			wantHostname: "mx.example.net", wantDomain: "mx.example.net"},
		{name: "kernel name with a trailing dot", hostname: "mx.example.net.",
			wantHostname: "mx.example.net", wantDomain: "mx.example.net"},
		{name: "short name found in /etc/hosts", hostname: "box", hosts: p(debianHosts),
			wantHostname: "box.example.com", wantDomain: "box.example.com"},
		{name: "first dotted alias on the line", hostname: "box", hosts: p("10.0.0.2 box box.a.example box.b.example\n10.0.0.3 box.c.example box\n"),
			wantHostname: "box.a.example", wantDomain: "box.a.example"},
		{name: "a line without a dotted name is skipped", hostname: "box", hosts: p("10.0.0.2 box\n10.0.0.3 box.c.example. box\n"),
			wantHostname: "box.c.example", wantDomain: "box.c.example"},
		{name: "match ignores case", hostname: "Box", hosts: p("10.0.0.2 box.example.com BOX\n"),
			wantHostname: "box.example.com", wantDomain: "box.example.com"},
		{name: "comments are not names", hostname: "box", hosts: p("# 10.0.0.1 box.wrong.example box\n10.0.0.2 box # box.wrong.example\n"),
			wantHostname: "box", wantDomain: "box"},
		{name: "short name not in /etc/hosts", hostname: "box", hosts: p("127.0.0.1 localhost localhost.localdomain\n"),
			wantHostname: "box", wantDomain: "box"},
		{name: "name only as an address column", hostname: "box", hosts: p("box other.example\n"),
			wantHostname: "box", wantDomain: "box"},
		{name: "no /etc/hosts", hostname: "box",
			wantHostname: "box", wantDomain: "box"},
		{name: "container id", hostname: "3f4e9a1b2c7d", hosts: p("172.17.0.2\t3f4e9a1b2c7d\n"),
			wantHostname: "3f4e9a1b2c7d", wantDomain: "3f4e9a1b2c7d"},
		{name: "mailname gives the domain", hostname: "box", hosts: p(debianHosts), mailname: p("example.org\nignored\n"),
			wantHostname: "box.example.com", wantDomain: "example.org"},
		{name: "mailname with white space", hostname: "box", mailname: p("  example.org \r\n"),
			wantHostname: "box", wantDomain: "example.org"},
		{name: "invalid mailname is ignored", hostname: "box.example.com", mailname: p("not a domain\n"),
			wantHostname: "box.example.com", wantDomain: "box.example.com"},
		{name: "empty mailname is ignored", hostname: "box.example.com", mailname: p(""),
			wantHostname: "box.example.com", wantDomain: "box.example.com"},
		{name: "keys beat the defaults", hostname: "box", mailname: p("example.org"), file: "domain d.example\nhostname h.example\n",
			wantHostname: "h.example", wantDomain: "d.example"},
		{name: "domain set, hostname derived", hostname: "box.example.com", file: "domain d.example\n",
			wantHostname: "box.example.com", wantDomain: "d.example"},
		{name: "invalid host name", hostname: "my_box",
			wantErr: `^hostname: the system's host name is no usable default: "my_box" contains "_"; a domain name has only letters, digits, hyphens and dots \(set hostname in /etc/relaymail\.conf or RELAYMAIL_HOSTNAME\)$`},
		{name: "invalid host name, hostname set", hostname: "my_box", file: "hostname h.example\n",
			wantErr: `^domain: the system's host name is no usable default: .*\(set domain in /etc/relaymail\.conf or RELAYMAIL_DOMAIN\)$`},
		{name: "invalid host name, mailname set", hostname: "my_box", mailname: p("example.org"), file: "hostname h.example\n",
			wantHostname: "h.example", wantDomain: "example.org"},
		{name: "no host name", hostname: "",
			wantErr: `^hostname: the system has no host name to use as the default \(set hostname in`},
		{name: "host name error", hostnameErr: errors.New("uname failed"),
			wantErr: `^hostname: cannot find the host name for the default: uname failed \(set hostname in`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(t, nil)
			opts.Path = writeFile(t, "relaymail.conf", tt.file)
			if tt.hosts != nil {
				opts.HostsPath = filepath.Join(dir, "hosts")
				if err := os.WriteFile(opts.HostsPath, []byte(*tt.hosts), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.mailname != nil {
				opts.MailnamePath = filepath.Join(dir, "mailname")
				if err := os.WriteFile(opts.MailnamePath, []byte(*tt.mailname), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			opts.Hostname = func() (string, error) { return tt.hostname, tt.hostnameErr }
			c, err := Load(opts)
			if tt.wantErr != "" {
				matchError(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Hostname != tt.wantHostname || c.Domain != tt.wantDomain {
				t.Errorf("hostname, domain = %q, %q; want %q, %q", c.Hostname, c.Domain, tt.wantHostname, tt.wantDomain)
			}
		})
	}
}

// TestHostNotAskedWhenSet checks that a configuration naming both hosts does
// not depend on the system's name at all.
func TestHostNotAskedWhenSet(t *testing.T) {
	opts := testOptions(t, env{"RELAYMAIL_HOSTNAME": "h.example", "RELAYMAIL_DOMAIN": "d.example"})
	opts.Path = writeFile(t, "relaymail.conf", "")
	opts.Hostname = func() (string, error) {
		t.Error("os.Hostname called")
		return "", errors.New("no")
	}
	opts.ReadFile = func(name string) ([]byte, error) {
		if name == opts.HostsPath {
			t.Error("/etc/hosts read")
		}
		return os.ReadFile(name)
	}
	if _, err := Load(opts); err != nil {
		t.Fatal(err)
	}
}

func TestPrivilegedHint(t *testing.T) {
	opts := testOptions(t, nil)
	opts.IgnoreEnv = true
	opts.ReadFile = noDefaultFile
	opts.Hostname = func() (string, error) { return "bad_name", nil }
	_, err := Load(opts)
	matchError(t, err, `\(set hostname in /etc/relaymail\.conf\)$`)
}

func p(s string) *string { return &s }
