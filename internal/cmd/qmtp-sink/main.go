// Command qmtp-sink is a small QMTP server for the README demo and for
// benchmarks. It accepts every package (or defers or refuses every
// recipient, with -reply Z or D) and stores each one in DIR as NNNN.env and
// NNNN.msg:
//
//	qmtp-sink -listen 127.0.0.1:0 -dir DIR [-reply K|Z|D] [-max-message BYTES]
//
// -max-message raises the largest message accepted from qmail-qmtpd's
// 200000000 bytes (the benchmark sends 500 MB).
//
// It prints the address it listens on as one line on stdout as soon as it
// listens, and exits 0 on SIGTERM or SIGINT. A -listen value starting with
// "/" is a unix socket path.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/relaymail/relaymail/relay/relaytest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on: host:port, or a unix socket path")
	dir := flag.String("dir", "", "`directory` to store packages in (required)")
	reply := flag.String("reply", "K", "reply to every recipient: K (accept), Z (defer) or D (refuse)")
	flag.Int64Var(&maxMessage, "max-message", 0, "the largest message in `bytes` (0: qmail-qmtpd's 200000000)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 || !strings.Contains("KZD", *reply) || len(*reply) != 1 {
		flag.Usage()
		os.Exit(64)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Stdout, *listen, *dir, *reply); err != nil {
		fmt.Fprintln(os.Stderr, "qmtp-sink:", err)
		os.Exit(1)
	}
}

// maxMessage is -max-message.
var maxMessage int64

// run serves until ctx is done, printing the listen address to stdout.
func run(ctx context.Context, stdout io.Writer, listen, dir, reply string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("-dir %s: not a directory", dir)
	}

	network := "tcp"
	if strings.HasPrefix(listen, "/") {
		network = "unix"
	}
	s, err := relaytest.StartQMTPServer(network, listen)
	if err != nil {
		return err
	}
	// Hooks are set before the address is printed, so before any client
	// can know where to connect.
	switch reply {
	case "Z":
		s.Script = func(*relaytest.QMTPPackage, int) relaytest.QMTPAction {
			return relaytest.Reply("Z", "qmtp-sink was told to defer (#4.3.0)")
		}
	case "D":
		s.Script = func(*relaytest.QMTPPackage, int) relaytest.QMTPAction {
			return relaytest.Reply("D", "qmtp-sink was told to refuse (#5.7.1)")
		}
	}
	// Each package is stored before its replies are sent, so a client that
	// has its reply finds the files in place.
	s.MaxMessage = maxMessage
	s.OnPackage = func(p relaytest.QMTPPackage) {
		if err := store(dir, p); err != nil {
			fmt.Fprintln(os.Stderr, "qmtp-sink:", err)
		}
	}
	fmt.Fprintln(stdout, s.Addr())

	<-ctx.Done()
	s.Close()
	return nil
}

// store writes NNNN.msg and then NNNN.env, each through a temporary file and
// a rename, so that an .env file is only ever seen next to a complete .msg.
func store(dir string, p relaytest.QMTPPackage) error {
	base := filepath.Join(dir, fmt.Sprintf("%04d", p.N))
	var env strings.Builder
	fmt.Fprintf(&env, "sender %s\n", addr(p.Sender))
	for _, r := range p.Recipients {
		fmt.Fprintf(&env, "rcpt %s\n", addr(r))
	}
	if err := writeFile(base+".msg", p.Message); err != nil {
		return err
	}
	return writeFile(base+".env", []byte(env.String()))
}

func addr(a string) string {
	if a == "" {
		return "<>"
	}
	return a
}

func writeFile(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
