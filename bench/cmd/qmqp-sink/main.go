// Command qmqp-sink is a QMQP server (qmail's Quick Mail Queuing Protocol,
// qmqp.txt) for the benchmark, where it is the smarthost of nullmailer's
// qmqp module, QMTP's nearest peer. It accepts every message and stores it
// in DIR as NNNN.msg and NNNN.env, streaming the message to the file (a
// 500 MB message costs the sink no memory), as bin/qmtp-sink does for QMTP:
//
//	qmqp-sink -listen 127.0.0.1:0 -dir DIR
//
// It prints the address it listens on as one line on stdout and exits 0 on
// SIGTERM or SIGINT.
//
// A QMQP session is one netstring from the client, holding a netstring of
// the message, one of the sender and one per recipient; the server answers
// with one netstring, "K..." (accepted), "Z..." or "D...", and closes.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxAddr bounds a sender or recipient netstring; maxLen bounds the
// outer netstring's length prefix.
const (
	maxAddr = 4096
	maxLen  = 1 << 40
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on: host:port, or a unix socket path")
	dir := flag.String("dir", "", "`directory` to store messages in (required)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(64)
	}
	if fi, err := os.Stat(*dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(os.Stderr, "qmqp-sink: -dir %s: not a directory\n", *dir)
		os.Exit(1)
	}
	network := "tcp"
	if strings.HasPrefix(*listen, "/") {
		network = "unix"
	}
	ln, err := net.Listen(network, *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "qmqp-sink:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Println(ln.Addr())
	var (
		n  atomic.Int64
		wg sync.WaitGroup
	)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Minute))
			reply := "K stored by qmqp-sink"
			if err := session(c, *dir, int(n.Add(1))); err != nil {
				fmt.Fprintln(os.Stderr, "qmqp-sink:", err)
				reply = "Z qmqp-sink: " + err.Error()
			}
			fmt.Fprintf(c, "%d:%s,", len(reply), reply)
		}()
	}
	wg.Wait()
}

// session reads one QMQP package from c and stores it as number n.
func session(c net.Conn, dir string, n int) error {
	br := bufio.NewReaderSize(c, 64<<10)
	total, err := length(br)
	if err != nil {
		return err
	}
	msgLen, err := length(br)
	if err != nil {
		return err
	}
	used := int64(len(strconv.FormatInt(msgLen, 10))) + 1 + msgLen + 1
	if used > total {
		return errors.New("the message is longer than the package")
	}
	base := filepath.Join(dir, fmt.Sprintf("%04d", n))
	f, err := os.Create(base + ".msg.tmp")
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, br, msgLen); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := comma(br); err != nil {
		return err
	}
	var addrs []string
	for used < total {
		l, err := length(br)
		if err != nil {
			return err
		}
		if l > maxAddr {
			return errors.New("address too long")
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		if err := comma(br); err != nil {
			return err
		}
		addrs = append(addrs, string(b))
		used += int64(len(strconv.FormatInt(l, 10))) + 1 + l + 1
	}
	if used != total || len(addrs) < 2 {
		return errors.New("malformed package")
	}
	if err := comma(br); err != nil {
		return err
	}
	var env strings.Builder
	fmt.Fprintf(&env, "sender %s\n", addrs[0])
	for _, r := range addrs[1:] {
		fmt.Fprintf(&env, "rcpt %s\n", r)
	}
	if err := os.Rename(base+".msg.tmp", base+".msg"); err != nil {
		return err
	}
	if err := os.WriteFile(base+".env.tmp", []byte(env.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(base+".env.tmp", base+".env")
}

// length reads a netstring's "N:" prefix.
func length(br *bufio.Reader) (int64, error) {
	s, err := br.ReadString(':')
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 || n > maxLen || len(s) > 14 {
		return 0, fmt.Errorf("bad netstring length %q", s)
	}
	return n, nil
}

func comma(br *bufio.Reader) error {
	b, err := br.ReadByte()
	if err != nil {
		return err
	}
	if b != ',' {
		return errors.New("netstring without its comma")
	}
	return nil
}
