package smarthost

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/qmtp"
	"github.com/relaymail/relaymail/relay/smtp"
)

// Options are the settings every protocol client shares, from the
// configuration.
type Options struct {
	Hostname string        // our name, for EHLO/LHLO
	Timeout  time.Duration // per read and per write
	// Password is the SMTP AUTH secret for the URL's user.
	Password string
	// OAuth2TokenFile, instead of Password, holds an OAuth2 bearer token
	// for AUTH XOAUTH2. It is read again for every connection.
	OAuth2TokenFile string
	// ReadFile reads the token file; nil means os.ReadFile. A privileged
	// sendmail reads it with the installed privileges.
	ReadFile func(name string) ([]byte, error)
	// TLS material; "" for none. TLSFingerprint is hex SHA-256.
	TLSCAFile, TLSCertFile, TLSKeyFile, TLSFingerprint string
	// Transcript receives the protocol dialogue (sendmail -v).
	Transcript io.Writer
	// Warn receives warnings (8-bit body to a server without 8BITMIME...).
	Warn func(string)
}

// Relayer builds the client for this smarthost.
func (u *URL) Relayer(opts Options) (relay.Relayer, error) {
	if u.Scheme == QMTP {
		return &qmtp.Relayer{Options: qmtp.Options{
			Network:   u.Network,
			Address:   u.Address(),
			IOTimeout: opts.Timeout,
			Name:      u.String(),
		}}, nil
	}
	so, err := u.SMTPOptions(opts)
	if err != nil {
		return nil, err
	}
	return &smtp.Relayer{Options: so}, nil
}

// dataEnd is how long the end of the message may take to be answered: RFC
// 5321 §4.5.3.2.6 asks for 10 minutes because the server may be scanning
// the message, whatever the per-step timeout is.
const dataEnd = 10 * time.Minute

// SMTPOptions builds the SMTP/LMTP client options for this smarthost. It
// is also what sendmail -bv connects with.
func (u *URL) SMTPOptions(opts Options) (smtp.Options, error) {
	if u.Scheme == QMTP {
		return smtp.Options{}, fmt.Errorf("smarthost %s: QMTP is not SMTP", u)
	}
	t := opts.Timeout
	to := smtp.Timeouts{Connect: t, Greeting: t, Command: t, DataInit: t, DataBlock: t, DataEnd: max(t, dataEnd)}
	so := smtp.Options{
		Network:    u.Network,
		Address:    u.Address(),
		ServerName: u.Host,
		LMTP:       u.Scheme == LMTP,
		TLS:        smtp.TLSMode(u.TLS),
		Hostname:   opts.Hostname,
		Timeouts:   to,
		Transcript: opts.Transcript,
		Warn:       opts.Warn,
		Name:       u.String(),
	}
	if u.TLS != TLSNone {
		c, err := u.TLSConfig(opts)
		if err != nil {
			return smtp.Options{}, err
		}
		so.TLSConfig = c
	}
	switch {
	case u.User != "" && opts.OAuth2TokenFile != "":
		if u.Auth != "" && u.Auth != "xoauth2" {
			return smtp.Options{}, fmt.Errorf("smarthost %s: auth=%s cannot use oauth2_token_file, which holds an OAuth2 token (remove auth= from the URL, or write auth=xoauth2)", u, u.Auth)
		}
		path, read := opts.OAuth2TokenFile, opts.ReadFile
		so.Auth = &smtp.Auth{User: u.User, Mechanism: "xoauth2", Password: func() (string, error) { return readToken(path, read) }}
	case u.User != "":
		if opts.Password == "" {
			return smtp.Options{}, fmt.Errorf("smarthost %s names the user %q but no password is configured (set password_file or RELAYMAIL_PASSWORD_FILE)", u, u.User)
		}
		pw := opts.Password
		so.Auth = &smtp.Auth{User: u.User, Mechanism: u.Auth, Password: func() (string, error) { return pw, nil }}
	case u.Auth != "":
		return smtp.Options{}, fmt.Errorf("smarthost %s forces auth=%s but names no user (write %s://user@%s)", u, u.Auth, u.Scheme, u.Address())
	}
	return so, nil
}

// maxToken bounds what is read from oauth2_token_file: access tokens are
// at most a few kilobytes, and a mistaken path must not eat memory.
const maxToken = 64 << 10

// readToken reads the OAuth2 token file for one connection: its content
// without the white space around it, which must be one printable line.
// The token never appears in the error.
func readToken(path string, read func(string) ([]byte, error)) (string, error) {
	if read == nil {
		read = os.ReadFile
	}
	data, err := read(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("oauth2_token_file %s: %v", path, err)
	}
	if len(data) > maxToken {
		return "", fmt.Errorf("oauth2_token_file %s is larger than %d bytes, too large for a token", path, maxToken)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("oauth2_token_file %s is empty (has the token refresher run?)", path)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("oauth2_token_file %s holds more than one token: a bearer token is one line of printable ASCII", path)
		}
	}
	return tok, nil
}

// errNoRoots is the fail-closed answer for a minimal container without
// ca-certificates: nullmailer silently stops verifying there; relaymail
// refuses to send.
var errNoRoots = errors.New("no trusted CA certificates were found on this system (install ca-certificates, or set tls_ca_file)")

// systemRoots loads the system's CA certificates; a variable because Go
// caches them for the life of the process, so tests replace it.
var systemRoots = x509.SystemCertPool

// TLSConfig builds the TLS settings: the system roots or tls_ca_file, an
// optional client certificate, and an optional SHA-256 pin. A pin replaces
// chain verification (it is the stronger check, and it allows a
// self-signed server); verify=no turns verification off explicitly.
func (u *URL) TLSConfig(opts Options) (*tls.Config, error) {
	c := &tls.Config{ServerName: u.Host, MinVersion: tls.VersionTLS12}
	switch {
	case opts.TLSCAFile != "":
		pem, err := os.ReadFile(opts.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %s holds no PEM certificate", opts.TLSCAFile)
		}
		c.RootCAs = pool
	case u.Verify && opts.TLSFingerprint == "":
		pool, err := systemRoots()
		if err != nil || pool.Equal(x509.NewCertPool()) {
			return nil, fmt.Errorf("smarthost %s: %w", u, errNoRoots)
		}
	}
	if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		if opts.TLSCertFile == "" || opts.TLSKeyFile == "" {
			return nil, errors.New("tls_cert_file and tls_key_file go together: set both or neither")
		}
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file %s / tls_key_file %s: %v", opts.TLSCertFile, opts.TLSKeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if opts.TLSFingerprint != "" {
		c.InsecureSkipVerify = true
		c.VerifyConnection = smtp.PinVerifier(opts.TLSFingerprint)
	} else if !u.Verify {
		c.InsecureSkipVerify = true
	}
	return c, nil
}
