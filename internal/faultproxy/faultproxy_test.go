package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a TCP server for the proxy to forward to: it echoes what it
// reads, or, when greeting is set, writes greeting first and then echoes.
type backend struct {
	ln       net.Listener
	greeting []byte
	accepted atomic.Int64
	received atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func newBackend(t *testing.T, greeting []byte) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, greeting: greeting}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				if len(b.greeting) > 0 {
					if _, err := c.Write(b.greeting); err != nil {
						return
					}
				}
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					b.received.Add(int64(n))
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func start(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back.
func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(got)
}

// silent asserts that nothing arrives on c for a short while: a stalled
// peer. The wait bounds an absence, it measures no speed.
func silent(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %d bytes, err %v; want a timeout (stalled)", n, err)
	}
}

func TestForwards(t *testing.T) {
	b := newBackend(t, nil)
	p := start(t, b.ln.Addr().String())
	c := dial(t, p)
	if got := roundTrip(t, c, "hello"); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	if p.Accepted() != 1 || p.Active() != 1 {
		t.Fatalf("accepted %d active %d", p.Accepted(), p.Active())
	}
}

func TestCutAndReset(t *testing.T) {
	b := newBackend(t, nil)
	p := start(t, b.ln.Addr().String())
	c := dial(t, p)
	roundTrip(t, c, "x")
	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after Cut read err %v, want EOF", err)
	}
	// New connections still work.
	c2 := dial(t, p)
	roundTrip(t, c2, "again")
	p.ResetAll()
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after ResetAll read err %v, want ECONNRESET", err)
	}
}

func TestStallKeepsSocketsOpen(t *testing.T) {
	b := newBackend(t, nil)
	p := start(t, b.ln.Addr().String())
	c := dial(t, p)
	roundTrip(t, c, "warm")
	p.Stall()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	silent(t, c)
	if p.Active() != 1 {
		t.Fatalf("active %d during stall, want the socket kept open", p.Active())
	}
	p.Resume()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "held" {
		t.Fatalf("after Resume got %q, %v", got, err)
	}
}

func TestDelay(t *testing.T) {
	b := newBackend(t, nil)
	p := start(t, b.ln.Addr().String())
	const d = 100 * time.Millisecond
	p.SetDelay(d)
	c := dial(t, p)
	began := time.Now()
	roundTrip(t, c, "slow")
	// A lower bound only: the chunk waited d each way.
	if el := time.Since(began); el < 2*d {
		t.Fatalf("round trip took %v, want at least %v", el, 2*d)
	}
}

func TestResetUpgrade(t *testing.T) {
	b := newBackend(t, nil)
	p := start(t, b.ln.Addr().String())
	p.SetResetUpgrade(true)
	c := dial(t, p)
	req := "GET /api/v2/agent/connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read err %v, want ECONNRESET", err)
	}
	if b.received.Load() != 0 || p.UpgradesReset() != 1 {
		t.Fatalf("server received %d bytes, resets %d: the upgrade must not reach the server", b.received.Load(), p.UpgradesReset())
	}
	// A plain request passes.
	c2 := dial(t, p)
	if got := roundTrip(t, c2, "GET / HTTP/1.1\r\n\r\n"); got != "GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("plain request echoed as %q", got)
	}
}

func TestTruncate(t *testing.T) {
	greeting := bytes.Repeat([]byte("0123456789"), 1000)
	b := newBackend(t, greeting)
	p := start(t, b.ln.Addr().String())
	p.SetTruncate(4321)
	c := dial(t, p)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, greeting[:4321]) {
		t.Fatalf("read %d bytes (%v), want the first 4321", len(got), err)
	}
	p.SetTruncate(0)
	c2 := dial(t, p)
	got = make([]byte, len(greeting))
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c2, got); err != nil || !bytes.Equal(got, greeting) {
		t.Fatalf("untruncated read: %v", err)
	}
}

func TestStallAfter(t *testing.T) {
	greeting := bytes.Repeat([]byte("abcdefghij"), 1000)
	b := newBackend(t, greeting)
	p := start(t, b.ln.Addr().String())
	p.SetStallAfter(1234)
	c := dial(t, p)
	got := make([]byte, 1234)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, greeting[:1234]) {
		t.Fatalf("first bytes: %v", err)
	}
	silent(t, c)
	p.Resume()
	rest := make([]byte, len(greeting)-1234)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, rest); err != nil || !bytes.Equal(rest, greeting[1234:]) {
		t.Fatalf("after Resume: %v", err)
	}
}

func TestReplyAndRefuse(t *testing.T) {
	b := newBackend(t, nil)
	p := start(t, b.ln.Addr().String())
	reply := []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	p.SetReply(reply)
	c := dial(t, p)
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, reply) {
		t.Fatalf("reply %q, %v", got, err)
	}
	p.SetReply(nil)
	p.SetRefuse(true)
	c2 := dial(t, p)
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("refused connection read %d, %v", n, err)
	}
	if b.accepted.Load() != 0 {
		t.Fatalf("the server saw %d connections; reply and refuse must not dial it", b.accepted.Load())
	}
	if p.Accepted() != 2 {
		t.Fatalf("accepted %d, want 2", p.Accepted())
	}
}

func TestCloseTwiceAndUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	p := start(t, target)
	c := dial(t, p)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a proxy with no server succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Active() != 0 {
		t.Fatalf("%d connections open after Close", p.Active())
	}
}
