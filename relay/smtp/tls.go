package smtp

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// PinError is the error a PinVerifier returns when the server's certificate
// is not the pinned one.
type PinError struct {
	Want string // the pinned SHA-256 fingerprint, as NormalizeFingerprint returns it
	Got  string // the fingerprint of the certificate presented, "" if none
	// Invalid is set when the pin itself is not a SHA-256 fingerprint; Want
	// then holds it as configured.
	Invalid bool
}

func (e *PinError) Error() string {
	switch {
	case e.Invalid:
		return fmt.Sprintf("smtp: tls_fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", e.Want)
	case e.Got == "":
		return "smtp: the server presented no certificate to compare with tls_fingerprint"
	default:
		return fmt.Sprintf("smtp: certificate fingerprint %s does not match tls_fingerprint %s", e.Got, e.Want)
	}
}

// NormalizeFingerprint checks a SHA-256 certificate fingerprint as a user
// writes it ("AB:CD:...", "abcd...", with an optional "sha256:" or
// "SHA256 Fingerprint=" prefix as openssl prints it) and returns it in the
// form openssl prints: upper-case hex pairs separated by colons.
func NormalizeFingerprint(s string) (string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(strings.ToLower(t), "sha256") {
		// "sha256:ab..." or "SHA256 Fingerprint=AB:..."
		if j := strings.IndexAny(t, "=:"); j >= 0 {
			t = t[j+1:]
		}
	}
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return "", &PinError{Want: s, Invalid: true}
	}
	return formatFingerprint(b), nil
}

func formatFingerprint(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// PinVerifier returns a tls.Config.VerifyConnection function that accepts
// the server only when the SHA-256 fingerprint of its leaf certificate (of
// the DER bytes) is sha256hex. Go calls VerifyConnection even with
// InsecureSkipVerify, so a pin may replace chain verification (for a
// self-signed server certificate) or come on top of it. An invalid
// sha256hex makes every handshake fail with a *PinError that says so.
func PinVerifier(sha256hex string) func(tls.ConnectionState) error {
	want, err := NormalizeFingerprint(sha256hex)
	return func(cs tls.ConnectionState) error {
		if err != nil {
			return err
		}
		if len(cs.PeerCertificates) == 0 {
			return &PinError{Want: want}
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		got := formatFingerprint(sum[:])
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return &PinError{Want: want, Got: got}
		}
		return nil
	}
}

const lastResort = "verify=no turns the check off, as a last resort"

// DescribeTLSError explains a failed TLS handshake with serverName in words
// a user can act on: which check failed, the facts (dates, names, issuer,
// fingerprints), and how to fix it (tls_ca_file, the host name in the
// smarthost URL, tls_fingerprint, verify=no as the last resort). It
// understands the crypto/x509 and crypto/tls errors, also when wrapped, and
// *PinError. The result is lower-case and has no "smtp: " prefix.
func DescribeTLSError(err error, serverName string) string {
	if err == nil {
		return ""
	}
	var (
		pin     *PinError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		unknown x509.UnknownAuthorityError
		record  tls.RecordHeaderError
		alert   tls.AlertError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &pin):
		switch {
		case pin.Invalid:
			return fmt.Sprintf("tls_fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons allowed); fix the configuration", pin.Want)
		case pin.Got == "":
			return fmt.Sprintf("%s presented no certificate to compare with tls_fingerprint", serverName)
		}
		return fmt.Sprintf("the TLS certificate of %s has SHA-256 fingerprint %s, but tls_fingerprint is %s; "+
			"if the server's certificate was replaced on purpose, update tls_fingerprint, otherwise someone may be intercepting the connection",
			serverName, pin.Got, pin.Want)
	case errors.As(err, &host):
		return fmt.Sprintf("the TLS certificate of %s is for %s, not for %q; "+
			"check the host name in the smarthost URL and use one of the certificate's names (%s)",
			serverName, certNames(host.Certificate), host.Host, lastResort)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil:
		c := invalid.Cert
		validity := fmt.Sprintf("valid from %s to %s", day(c.NotBefore), day(c.NotAfter))
		if time.Now().Before(c.NotBefore) {
			return fmt.Sprintf("the TLS certificate %s of %s is not valid yet (%s, now is %s); "+
				"check this machine's clock (%s)", certLabel(c), serverName, validity, day(time.Now()), lastResort)
		}
		return fmt.Sprintf("the TLS certificate %s of %s expired on %s (%s, now is %s); "+
			"the server's administrator must renew it, or this machine's clock is wrong (%s)",
			certLabel(c), serverName, day(c.NotAfter), validity, day(time.Now()), lastResort)
	case errors.As(err, &invalid):
		return fmt.Sprintf("the TLS certificate of %s is not valid: %v (%s)", serverName, invalid.Error(), lastResort)
	case errors.As(err, &unknown):
		// unknown.Cert is the top of the chain the server sent (which
		// may be a root CA it includes); the leaf tells self-signed.
		leaf := unknown.Cert
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
			leaf = cve.UnverifiedCertificates[0]
		}
		if leaf != nil && leaf.Issuer.String() == leaf.Subject.String() {
			return fmt.Sprintf("the TLS certificate of %s is self-signed (%q) and not trusted; "+
				"put that certificate in tls_ca_file, or pin it with tls_fingerprint (%s)",
				serverName, leaf.Subject.String(), lastResort)
		}
		issuer := "unknown"
		if c := unknown.Cert; c != nil {
			issuer = fmt.Sprintf("%q", c.Issuer.String())
		}
		return fmt.Sprintf("the TLS certificate of %s is signed by an unknown authority (issuer %s); "+
			"if the server uses a private CA, put the CA's certificate in tls_ca_file (%s)",
			serverName, issuer, lastResort)
	case errors.As(err, &record):
		return fmt.Sprintf("%s did not answer with TLS; smtps:// (implicit TLS) needs a TLS port such as 465, "+
			"a server that starts in plain text (port 587 or 25) needs smtp://, which uses STARTTLS", serverName)
	case errors.As(err, &alert) || isRemoteAlert(err):
		return fmt.Sprintf("%s aborted the TLS handshake (%v); it may require a client certificate "+
			"(tls_cert_file and tls_key_file), or support only TLS versions older than 1.2, which relaymail refuses",
			serverName, err)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("the TLS handshake with %s timed out", serverName)
	}
	return fmt.Sprintf("the TLS handshake with %s failed: %v", serverName, err)
}

// isRemoteAlert recognises an alert the server sent during the handshake:
// crypto/tls reports it as a *net.OpError with Op "remote error" around an
// unexported type.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "no names"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return fmt.Sprintf("no subject alternative names, only the common name %q, which is not used for verification any more", c.Subject.CommonName)
		}
		return "no names at all"
	}
	const max = 10
	more := ""
	if len(names) > max {
		more = fmt.Sprintf(" and %d more", len(names)-max)
		names = names[:max]
	}
	return strings.Join(names, ", ") + more
}

func certLabel(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	if len(c.DNSNames) > 0 {
		return fmt.Sprintf("%q", c.DNSNames[0])
	}
	return fmt.Sprintf("%q", c.Subject.String())
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
