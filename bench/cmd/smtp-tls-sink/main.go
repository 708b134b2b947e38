// Command smtp-tls-sink is an SMTP server with STARTTLS for the benchmark's
// round-trip count of STARTTLS: relay/relaytest's server on go-smtp, which
// offers PIPELINING, CHUNKING and STARTTLS (TLS 1.3, with a certificate for
// 127.0.0.1 from a throw-away CA), keeps what it receives in memory, and
// writes with Nagle's algorithm off. A reply written in two parts thus
// never waits for an acknowledgement, so that the count shows the protocol
// and nothing else (Postfix, with Nagle on, holds its EHLO reply after
// STARTTLS until the client acknowledges OpenSSL's NewSessionTicket:
// bench/README.md).
//
//	smtp-tls-sink -listen 127.0.0.1:0 -dir DIR
//
// It writes the CA certificate to DIR/ca.pem, prints the address it listens
// on as one line on stdout, and exits 0 on SIGTERM or SIGINT.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/relaymail/relaymail/relay/relaytest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on")
	dir := flag.String("dir", "", "`directory` for ca.pem (required)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(64)
	}
	cert, err := certificate(filepath.Join(*dir, "ca.pem"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-tls-sink:", err)
		os.Exit(1)
	}
	s, err := relaytest.StartSMTPServer("tcp", *listen, relaytest.SMTPOptions{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-tls-sink:", err)
		os.Exit(1)
	}
	fmt.Println(s.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Close()
}

// certificate makes a CA, writes its certificate to caFile, and returns a
// server certificate it signed for 127.0.0.1, ::1 and localhost.
func certificate(caFile string) (tls.Certificate, error) {
	ca, err := relaytest.NewCA("relaymail benchmark CA")
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(caFile, ca.PEM(), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return ca.Issue(relaytest.CertOptions{})
}
