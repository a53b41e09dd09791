// Package faultproxy is a TCP proxy for tests that stands between a client
// (the agent, the CLI) and a server (the control plane) and breaks the
// connection on command: it cuts or resets every connection, stalls
// forwarding while keeping sockets open, delays every chunk, resets a
// connection whose request asks for a websocket upgrade, truncates or
// stalls the server's answer after N bytes, refuses new connections, or
// answers them itself with canned bytes (a 5xx, garbage) in place of the
// server.
//
// It knows nothing of HTTP beyond spotting an upgrade request in a
// connection's first bytes, so it breaks any protocol the same way a
// network or a crashed peer would. Faults that apply "to new connections"
// are captured when a connection is accepted; Cut, ResetAll, Stall and
// Resume act on open connections too.
//
// A Proxy is safe for concurrent use. Start begins accepting; Close stops
// accepting, closes every connection and waits for its goroutines.
package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// upgradeScan is how much of a connection's first client bytes are scanned
// for a websocket upgrade request.
const upgradeScan = 8 << 10

// Proxy forwards TCP connections from Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	accepted, resets atomic.Int64

	// mu guards the fields that follow.
	mu      sync.Mutex
	closed  bool
	links   map[*link]struct{}
	stalled bool
	// changed is closed and replaced whenever stalled changes, waking
	// every pump that waits for forwarding to resume.
	changed       chan struct{}
	delay         time.Duration
	resetUpgrade  bool
	truncateAfter int64
	stallAfter    int64
	reply         []byte
	refuse        bool
}

// link is one proxied connection: the client's socket and the server's.
type link struct {
	client net.Conn
	// smu guards server, set once the server is dialed.
	smu    sync.Mutex
	server net.Conn
	// truncateAfter and stallAfter are the proxy's settings when the
	// connection was accepted (0: off).
	truncateAfter, stallAfter int64
	once                      sync.Once
	done                      chan struct{}
	// stalled is set once stallAfter bytes of the server's answer went
	// through; guarded by Proxy.mu, like stallAfter after accept.
	stalled bool
}

func (l *link) close(rst bool) {
	l.once.Do(func() {
		if rst {
			if tc, ok := l.client.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close sends RST instead of FIN
			}
		}
		_ = l.client.Close()
		l.smu.Lock()
		if l.server != nil {
			_ = l.server.Close()
		}
		l.smu.Unlock()
		close(l.done)
	})
}

// Start listens on a free loopback port and forwards every connection to
// target (host:port). It starts the accept loop; Close stops it.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, links: map[*link]struct{}{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is "http://" + Addr.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Accepted counts the connections accepted so far, refused ones included:
// a client's connection attempts.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// UpgradesReset counts the connections reset by SetResetUpgrade.
func (p *Proxy) UpgradesReset() int64 { return p.resets.Load() }

// Active counts the connections open now.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Cut closes every open connection (FIN to both peers). New connections
// are still accepted.
func (p *Proxy) Cut() { p.closeAll(false) }

// ResetAll closes every open connection, sending the client a TCP RST.
func (p *Proxy) ResetAll() { p.closeAll(true) }

func (p *Proxy) closeAll(rst bool) {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(rst)
	}
}

// Stall stops forwarding in both directions on every connection, open and
// new, keeping the sockets open: a peer that hangs. Resume undoes it.
func (p *Proxy) Stall() { p.setStalled(true) }

// Resume forwards again after Stall, and releases connections stalled by
// SetStallAfter.
func (p *Proxy) Resume() { p.setStalled(false) }

func (p *Proxy) setStalled(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = on
	if !on {
		for l := range p.links {
			l.stallAfter = 0
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// SetDelay holds every chunk, both ways, for d before forwarding it (0:
// no delay).
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// SetResetUpgrade makes the proxy reset (RST) any connection whose first
// client bytes ask for a websocket upgrade, before the server sees them.
func (p *Proxy) SetResetUpgrade(on bool) {
	p.mu.Lock()
	p.resetUpgrade = on
	p.mu.Unlock()
}

// SetTruncate makes each new connection end (FIN both ways) after n bytes
// of the server's answer reach the client (0: off).
func (p *Proxy) SetTruncate(n int64) {
	p.mu.Lock()
	p.truncateAfter = n
	p.mu.Unlock()
}

// SetStallAfter makes each new connection stop forwarding, both ways, once
// n bytes of the server's answer reached the client, keeping the sockets
// open until Cut, Resume or Close (0: off).
func (p *Proxy) SetStallAfter(n int64) {
	p.mu.Lock()
	p.stallAfter = n
	p.mu.Unlock()
}

// SetReply makes the proxy answer each new connection itself: it reads the
// client's request (up to the end of its headers, or 1 s), writes b and
// closes, never dialing the server. nil restores forwarding.
func (p *Proxy) SetReply(b []byte) {
	p.mu.Lock()
	p.reply = append([]byte(nil), b...)
	if b == nil {
		p.reply = nil
	}
	p.mu.Unlock()
}

// SetRefuse makes the proxy close each new connection as soon as it is
// accepted.
func (p *Proxy) SetRefuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines. It may be called more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if !already {
		_ = p.ln.Close()
	}
	p.closeAll(false)
	p.wg.Wait()
	return nil
}
