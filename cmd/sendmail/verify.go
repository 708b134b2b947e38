package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/privsep"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/smarthost"
	"github.com/relaymail/relaymail/relay/smtp"
)

// verify is sendmail -bv. Without recipients it connects to each smarthost
// and reports what it offers: capabilities, TLS and AUTH. With recipients it
// shows each address as relaymail rewrites it and asks the first smarthost
// that answers about each one (MAIL, RCPT, RSET; never DATA). Nothing is
// sent, so nothing is read from standard input.
func (s *sendmail) verify(req *request, cfg *config.Config) int {
	if req.Extract {
		s.errorf("-t cannot be combined with -bv: -bv reads no message (give the addresses as arguments)")
		return exUsage
	}
	if len(cfg.Smarthosts) == 0 {
		if len(req.Recipients) > 0 {
			// The rewriting is worth seeing without a smarthost too.
			if _, code := s.showAddresses(req, cfg); code != exOK {
				return code
			}
		}
		return s.noSmarthost(cfg, "so there is nothing to verify")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	opts := s.smarthostOptions(req, cfg)

	if len(req.Recipients) == 0 {
		code := exOK
		for _, u := range cfg.Smarthosts {
			if c := s.describe(ctx, u, opts); c != exOK {
				code = c
			}
		}
		return code
	}

	env, code := s.showAddresses(req, cfg)
	if code != exOK {
		return code
	}
	var lastErr error
	for _, u := range cfg.Smarthosts {
		if u.Scheme == smarthost.QMTP {
			fmt.Fprintf(s.stdout, "%s: QMTP cannot check a recipient without delivering the message; the addresses above are what it would receive\n", u)
			return exOK
		}
		so, err := smtpOptions(u, opts)
		if err != nil {
			s.errorf("%v", err)
			return exConfig
		}
		c, err := smtp.Dial(ctx, so)
		if err != nil {
			lastErr = err
			fmt.Fprintf(s.stdout, "%s: %s\n", u, oneLine(err.Error()))
			continue
		}
		results, err := c.Verify(ctx, &env)
		c.Quit()
		for _, r := range results {
			fmt.Fprintf(s.stdout, "<%s>: %s by %s: %s\n", r.Recipient, verdict(r.Class), u, oneLine(resultText(r)))
		}
		if err != nil && len(results) == 0 {
			lastErr = err
			continue
		}
		return resultsExit(results, false)
	}
	if relay.IsPermanent(lastErr) {
		return exUnavailable
	}
	return exTempFail
}

// smtpOptions builds a smarthost's client options with the installed
// privileges, which the TLS files it reads may need.
func smtpOptions(u *smarthost.URL, opts smarthost.Options) (so smtp.Options, err error) {
	err = privsep.Do(func() error {
		so, err = u.SMTPOptions(opts)
		return err
	})
	return so, err
}

func verdict(c relay.Class) string {
	switch c {
	case relay.Delivered:
		return "accepted"
	case relay.Failed:
		return "rejected"
	}
	return "deferred"
}

// describe connects to one smarthost and prints what it offers.
func (s *sendmail) describe(ctx context.Context, u *smarthost.URL, opts smarthost.Options) int {
	fmt.Fprintf(s.stdout, "smarthost %s\n", u)
	if u.Scheme == smarthost.QMTP {
		conn, err := relay.Dial(ctx, u.Network, u.Address(), opts.Timeout)
		if err != nil {
			fmt.Fprintf(s.stdout, "  error: %s\n", oneLine(err.Error()))
			return exTempFail
		}
		conn.Close()
		fmt.Fprintf(s.stdout, "  reachable (QMTP has no greeting, no capabilities and no TLS)\n")
		return exOK
	}
	so, err := smtpOptions(u, opts)
	if err != nil {
		fmt.Fprintf(s.stdout, "  error: %s\n", oneLine(err.Error()))
		return exConfig
	}
	c, err := smtp.Dial(ctx, so)
	if err != nil {
		fmt.Fprintf(s.stdout, "  error: %s\n", oneLine(err.Error()))
		if relay.IsPermanent(err) {
			return exUnavailable
		}
		return exTempFail
	}
	defer c.Quit()
	info := c.Info()
	fmt.Fprintf(s.stdout, "  greeting: %s\n", oneLine(info.Greeting))
	var ext []string
	for _, k := range slices.Sorted(maps.Keys(info.Extensions)) {
		if v := info.Extensions[k]; v != "" {
			k += " " + v
		}
		ext = append(ext, k)
	}
	fmt.Fprintf(s.stdout, "  extensions: %s\n", oneLine(strings.Join(ext, ", ")))
	if cs := info.TLS; cs != nil {
		fmt.Fprintf(s.stdout, "  tls: %s, %s%s, %s\n", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite),
			certSummary(cs), verification(so.TLSConfig, opts))
	} else {
		fmt.Fprintf(s.stdout, "  tls: none (tls=none)\n")
	}
	switch {
	case so.Auth == nil:
		fmt.Fprintf(s.stdout, "  auth: not configured\n")
	case info.AuthOK:
		fmt.Fprintf(s.stdout, "  auth: %s as %s succeeded\n", info.AuthMechanism, so.Auth.User)
	default:
		fmt.Fprintf(s.stdout, "  auth: not performed\n")
	}
	return exOK
}

func certSummary(cs *tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	leaf := cs.PeerCertificates[0]
	return fmt.Sprintf(", certificate %s (issuer %s, valid until %s)", leaf.Subject, leaf.Issuer, leaf.NotAfter.Format("2006-01-02"))
}

func verification(c *tls.Config, o smarthost.Options) string {
	switch {
	case o.TLSFingerprint != "":
		return "certificate matches tls_fingerprint"
	case c != nil && c.InsecureSkipVerify:
		return "NOT verified (verify=no)"
	case o.TLSCAFile != "":
		return "verified against tls_ca_file " + o.TLSCAFile
	}
	return "verified against the system roots"
}
