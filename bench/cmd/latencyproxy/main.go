// Command latencyproxy forwards connections to a server with an added
// round-trip time, for counting a mail client's round trips on loopback
// when the kernel has no netem (see bench/latency for the model):
//
//	latencyproxy -listen 127.0.0.1:0 -target 127.0.0.1:2525 -rtt 20ms
//
// It prints the address it listens on as one line on stdout and runs until
// SIGTERM or SIGINT. An address that starts with "/" is a unix socket. The
// benchmark (make bench) runs the same proxy in its own process.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/relaymail/relaymail/bench/latency"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on: host:port, or a unix socket path")
	target := flag.String("target", "", "`address` of the server: host:port, or a unix socket path (required)")
	rtt := flag.Duration("rtt", 0, "round-trip `time` to add, e.g. 20ms")
	flag.Parse()
	if *target == "" || flag.NArg() > 0 || *rtt < 0 {
		flag.Usage()
		os.Exit(64)
	}
	p, err := latency.Start(network(*listen), *listen, network(*target), *target, *rtt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "latencyproxy:", err)
		os.Exit(1)
	}
	fmt.Println(p.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	p.Close()
}

func network(addr string) string {
	if strings.HasPrefix(addr, "/") {
		return "unix"
	}
	return "tcp"
}
