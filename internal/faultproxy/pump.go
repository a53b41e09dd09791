package faultproxy

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// The forwarding side: the accept loop, one goroutine per connection, and
// two pumps per forwarded connection that consult the faults as bytes go
// through.

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		refuse, reply := p.refuse, p.reply
		l := &link{client: c, truncateAfter: p.truncateAfter, stallAfter: p.stallAfter, done: make(chan struct{})}
		p.links[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.forget(l)
			switch {
			case refuse:
				l.close(false)
			case reply != nil:
				p.answer(l, reply)
			default:
				p.forward(l)
			}
		}()
	}
}

func (p *Proxy) forget(l *link) {
	l.close(false)
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// answer reads the request's headers (bounded in size and time) so the
// reply is not lost to a reset, writes reply and closes.
func (p *Proxy) answer(l *link, reply []byte) {
	_ = l.client.SetReadDeadline(time.Now().Add(time.Second))
	var req []byte
	buf := make([]byte, 4096)
	for len(req) < 64<<10 && !bytes.Contains(req, []byte("\r\n\r\n")) {
		n, err := l.client.Read(buf)
		req = append(req, buf[:n]...)
		if err != nil {
			break
		}
	}
	_, _ = l.client.Write(reply)
	l.close(false)
}

func (p *Proxy) forward(l *link) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		l.close(false)
		return
	}
	l.smu.Lock()
	l.server = s
	l.smu.Unlock()
	select {
	case <-l.done: // cut while dialing
		_ = s.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pumpUp(l); l.close(false) }()
	go func() { defer wg.Done(); p.pumpDown(l); l.close(false) }()
	wg.Wait()
}

// pumpUp copies client to server, resetting an upgrade request when asked.
func (p *Proxy) pumpUp(l *link) {
	var head []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := l.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if len(head) < upgradeScan {
				head = append(head, chunk...)
				p.mu.Lock()
				reset := p.resetUpgrade
				p.mu.Unlock()
				if reset && isUpgrade(head) {
					p.resets.Add(1)
					l.close(true)
					return
				}
			}
			if !p.gate(l) || !p.write(l, l.server, chunk) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pumpDown copies server to client, truncating or stalling after the
// link's byte budget.
func (p *Proxy) pumpDown(l *link) {
	var sent int64
	buf := make([]byte, 32<<10)
	for {
		n, err := l.server.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if !p.gate(l) {
				return
			}
			cut := false
			if l.truncateAfter > 0 && sent+int64(len(chunk)) >= l.truncateAfter {
				chunk, cut = chunk[:l.truncateAfter-sent], true
			}
			p.mu.Lock()
			stallAfter := l.stallAfter
			p.mu.Unlock()
			if stallAfter > 0 && sent < stallAfter && sent+int64(len(chunk)) >= stallAfter {
				head := chunk[:stallAfter-sent]
				if !p.write(l, l.client, head) {
					return
				}
				sent += int64(len(head))
				chunk = chunk[len(head):]
				p.mu.Lock()
				l.stalled = true
				p.mu.Unlock()
				if !p.gate(l) { // until Resume, Cut or Close
					return
				}
			}
			if !p.write(l, l.client, chunk) {
				return
			}
			sent += int64(len(chunk))
			if cut {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gate blocks while forwarding is stalled (globally or on l) and reports
// whether the link is still open.
func (p *Proxy) gate(l *link) bool {
	for {
		p.mu.Lock()
		stalled := p.stalled || l.stalled && l.stallAfter > 0
		changed := p.changed
		p.mu.Unlock()
		if !stalled {
			select {
			case <-l.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-changed:
		case <-l.done:
			return false
		}
	}
}

// write forwards chunk to dst after the configured delay.
func (p *Proxy) write(l *link, dst net.Conn, chunk []byte) bool {
	p.mu.Lock()
	d := p.delay
	p.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return false
		}
	}
	_, err := dst.Write(chunk)
	return err == nil
}

// isUpgrade reports whether head holds an HTTP request header asking for a
// websocket upgrade.
func isUpgrade(head []byte) bool {
	return bytes.Contains(bytes.ToLower(head), []byte("upgrade: websocket"))
}
