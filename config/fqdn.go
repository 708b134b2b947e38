package config

import (
	"bytes"
	"strings"
)

// fqdn finds the host's fully qualified name the way `hostname -f` does on a
// host without DNS: the kernel's name if it already has a dot, else the first
// dotted alias on an /etc/hosts line that lists the short name. DNS is never
// asked: containers often have none, and a lookup that hangs would hang every
// program that sends mail.
func (l *loader) fqdn() (string, error) {
	if l.fqdnDone {
		return l.fqdnName, l.fqdnErr
	}
	l.fqdnDone = true
	l.fqdnName, l.fqdnErr = l.findFQDN()
	return l.fqdnName, l.fqdnErr
}

func (l *loader) findFQDN() (string, error) {
	short, err := l.hostname()
	if err != nil {
		return "", err
	}
	short = strings.TrimSuffix(short, ".")
	if short == "" || strings.Contains(short, ".") {
		return short, nil
	}
	data, err := l.readFile(l.hostsPath)
	if err != nil {
		return short, nil
	}
	return hostsFQDN(data, short), nil
}

// hostsFQDN applies the /etc/hosts rule to the file's content.
func hostsFQDN(data []byte, short string) string {
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		names := f[1:]
		listed := false
		for _, n := range names {
			if strings.EqualFold(n, short) {
				listed = true
				break
			}
		}
		if !listed {
			continue
		}
		for _, n := range names {
			if strings.Contains(strings.TrimSuffix(n, "."), ".") {
				return strings.TrimSuffix(n, ".")
			}
		}
	}
	return short
}

// mailname returns the first line of /etc/mailname, the Debian convention for
// the domain of outgoing mail, or "" when it is missing or not a domain.
func (l *loader) mailname() string {
	data, err := l.readFile(l.mailnamePath)
	if err != nil {
		return ""
	}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	name := strings.TrimSpace(string(first))
	if checkDomain(name) != nil {
		return ""
	}
	return name
}
