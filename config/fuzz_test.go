package config

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary file contents to Load. Besides not panicking, it
// checks that every error about the file points at one of its lines, and
// that a configuration Load accepts, written back out, loads the same.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("smarthost qmtp://a.example.com\ntimeout 90\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const conf = "/fuzz/relaymail.conf"
		opts := func(content []byte) Options {
			return Options{
				Path:         conf,
				Getenv:       func(string) (string, bool) { return "", false },
				Hostname:     func() (string, error) { return testHost, nil },
				MailnamePath: "/fuzz/mailname",
				HostsPath:    "/fuzz/hosts",
				ReadFile: func(name string) ([]byte, error) {
					switch {
					case name == conf:
						return content, nil
					case name == "/fuzz/mailname", name == "/fuzz/hosts", strings.Contains(name, "missing"):
						return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
					}
					// Any other file is a secret with the same
					// content, so that the fuzzer reaches the
					// *_file parsing too.
					return content, nil
				},
			}
		}
		c, err := Load(opts(data))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			lines := strings.Count(string(data), "\n") + 1
			if e.File != conf || e.Line < 1 || e.Line > lines {
				t.Fatalf("error not at a line of the file (%q line %d of %d): %v", e.File, e.Line, lines, err)
			}
			if e.Msg == "" || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error message empty or on several lines: %q", err)
			}
			return
		}
		if c.Timeout <= 0 || c.Timeout > maxTimeout {
			t.Fatalf("timeout %v out of range", c.Timeout)
		}
		if c.Log != "syslog" && c.Log != "stderr" && c.Log != "none" {
			t.Fatalf("log %q", c.Log)
		}
		if checkDomain(c.Domain) != nil || checkDomain(c.Hostname) != nil {
			t.Fatalf("domain %q or hostname %q invalid", c.Domain, c.Hostname)
		}
		if c.From != "" && checkFrom(c.From) != nil {
			t.Fatalf("from %q invalid", c.From)
		}

		out := render(c)
		c2, err := Load(opts([]byte(out)))
		if err != nil {
			t.Fatalf("the accepted configuration, written back as\n%s\ndoes not load: %v", out, err)
		}
		if got := render(c2); got != out {
			t.Fatalf("round trip changed the configuration:\n%s\nbecame\n%s", out, got)
		}
	})
}

// render writes c back in the file format.
func render(c *Config) string {
	var b strings.Builder
	for _, u := range c.Smarthosts {
		b.WriteString("smarthost " + strings.TrimSpace(u.Raw) + "\n")
	}
	b.WriteString("domain " + c.Domain + "\nhostname " + c.Hostname + "\n")
	if c.From != "" {
		b.WriteString("from " + c.From + "\n")
	}
	b.WriteString("timeout " + c.Timeout.String() + "\nlog " + c.Log + "\n")
	return b.String()
}
