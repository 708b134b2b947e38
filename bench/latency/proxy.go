// Package latency is a TCP (or unix socket) proxy that adds network
// latency, for counting a client's round trips on loopback when the kernel
// has no netem qdisc. It runs in the benchmark's process (bench/) or as
// bench/cmd/latencyproxy.
//
// The model is the one of a path with round-trip time RTT and no loss:
//
//   - Connection set-up costs three one-way trips (SYN, SYN-ACK, ACK): the
//     proxy accepts at once, but connects to the server only 1.5 RTT later,
//     which is when a real server's accept(2) would return. A client that
//     writes at once (QMTP) thus has its first bytes at the server after
//     1.5 RTT, and a greeting (SMTP, LMTP) reaches the client after 2 RTT,
//     as on a real path.
//   - Every chunk of bytes read from one side is written to the other RTT/2
//     after it was read, in order; the two directions are independent.
//   - A half-close (EOF) travels like data: the write side of the other
//     connection is shut down RTT/2 later.
//
// So a client that waits for n replies in sequence, counting the connect,
// takes about n × RTT more than on plain loopback: its round trips are
// (t − t_loopback) / RTT.
package latency

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its listener to a target with added
// latency. Close stops it and closes every connection it holds.
type Proxy struct {
	rtt           time.Duration
	targetNetwork string
	target        string
	ln            net.Listener
	wg            sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{} // open connections, both sides
	closed   bool
	accepted int // connections accepted so far
}

// maxChunk is the most one read takes from a connection.
const maxChunk = 32 << 10

// Start listens on network/address ("tcp", "127.0.0.1:0"; or "unix", a
// socket path) and forwards every connection to targetNetwork/target with
// round-trip time rtt.
func Start(network, address, targetNetwork, target string, rtt time.Duration) (*Proxy, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	p := &Proxy{rtt: rtt, targetNetwork: targetNetwork, target: target, ln: ln,
		conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// RTT is the round-trip time the proxy adds.
func (p *Proxy) RTT() time.Duration { return p.rtt }

// Connections is how many connections the proxy has accepted.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track registers c so that Close can close it; it reports false (and
// closes c) when the proxy is closing.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		accepted := time.Now()
		if !p.track(c) {
			continue
		}
		p.mu.Lock()
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(1)
		go p.handle(c, accepted)
	}
}

// chunk is bytes read from one side, or its end (eof), and when they may
// be written to the other side.
type chunk struct {
	data []byte
	at   time.Time
	eof  bool
}

func (p *Proxy) handle(client net.Conn, accepted time.Time) {
	defer p.wg.Done()
	defer p.untrack(client)
	half := p.rtt / 2
	// The client's bytes are read from the start, stamped, and held until
	// the server side exists: nothing reaches the server before the
	// handshake would have completed (1.5 RTT).
	up := make(chan chunk, 1024)
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		p.read(client, up, half)
	}()
	time.Sleep(time.Until(accepted.Add(3 * half)))
	server, err := net.Dial(p.targetNetwork, p.target)
	if err != nil || !p.track(server) {
		client.Close()
		for range up {
		}
		readers.Wait()
		return
	}
	defer p.untrack(server)
	down := make(chan chunk, 1024)
	readers.Add(1)
	go func() {
		defer readers.Done()
		p.read(server, down, half)
	}()
	var writers sync.WaitGroup
	writers.Add(2)
	go func() { defer writers.Done(); p.write(server, up, client) }()
	go func() { defer writers.Done(); p.write(client, down, server) }()
	writers.Wait()
	client.Close()
	server.Close()
	readers.Wait()
}

// read reads from c until EOF or an error, stamping every chunk with the
// time it may be delivered.
func (p *Proxy) read(c net.Conn, out chan<- chunk, delay time.Duration) {
	defer close(out)
	for {
		buf := make([]byte, maxChunk)
		n, err := c.Read(buf)
		if n > 0 {
			out <- chunk{data: buf[:n], at: time.Now().Add(delay)}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				out <- chunk{eof: true, at: time.Now().Add(delay)}
			}
			return
		}
	}
}

// write delivers the chunks of in to c, each at its time. At EOF it shuts
// down c's write side; on a write error it closes src, so that the reader
// on the other side stops too.
func (p *Proxy) write(c net.Conn, in <-chan chunk, src net.Conn) {
	for ch := range in {
		time.Sleep(time.Until(ch.at))
		if ch.eof {
			closeWrite(c)
			continue
		}
		if _, err := c.Write(ch.data); err != nil {
			src.Close()
			for range in {
			}
			return
		}
	}
	// The reader ended without EOF (reset, or closed by us): end both.
	closeWrite(c)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
