package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// forwardingServer is an SSH server on loopback that allows local
// forwarding, and the address of an echo server behind it.
func forwardingServer(t *testing.T) (sshAddr string, echo tcpForward, stop func()) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// conns are closed by stop: Server.Close alone can miss a connection
	// whose handshake the client saw finish before the server tracked it.
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	srv := &gliderssh.Server{
		ConnCallback: func(_ gliderssh.Context, c net.Conn) net.Conn {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			return c
		},
		HostSigners:                 []gliderssh.Signer{signer},
		Handler:                     func(gliderssh.Session) {},
		LocalPortForwardingCallback: func(gliderssh.Context, string, uint32) bool { return true },
		ChannelHandlers:             map[string]gliderssh.ChannelHandler{"direct-tcpip": gliderssh.DirectTCPIPHandler},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	go func() {
		defer wg.Done()
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	stop = sync.OnceFunc(func() {
		_ = srv.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		_ = echoLn.Close()
		wg.Wait()
	})
	t.Cleanup(stop)
	return ln.Addr().String(), tcpForward{remote: echoLn.Addr().(*net.TCPAddr).Port}, stop
}

func dialForwardingServer(t *testing.T, addr string) *ssh.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sshClient(conn, "test")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// syncBuf is a bytes.Buffer safe for the forwarder's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestPortForwardCancelIsACleanExit(t *testing.T) {
	addr, fwd, _ := forwardingServer(t)
	sc := dialForwardingServer(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan error, 1)
	go func() { done <- portForward(ctx, sc, []tcpForward{fwd}, &out, io.Discard) }()
	var local string
	deadline := time.Now().Add(10 * time.Second)
	for local == "" && time.Now().Before(deadline) {
		if f := strings.Fields(out.String()); len(f) >= 2 {
			local = f[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatalf("dial the forward at %q: %v", local, err)
	}
	_, _ = c.Write([]byte("ping"))
	got := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo through the forward: %q, %v", got, err)
	}
	// Cancelled with a connection open: nil, and the connection is closed.
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("portForward after cancel = %v, want nil", err)
	}
	if _, err := c.Read(got); err == nil {
		t.Error("the forwarded connection is still open after cancel")
	}
	c.Close()
}

func TestPortForwardEndsWithTheConnection(t *testing.T) {
	addr, fwd, stop := forwardingServer(t)
	sc := dialForwardingServer(t, addr)
	done := make(chan error, 1)
	go func() { done <- portForward(context.Background(), sc, []tcpForward{fwd}, io.Discard, io.Discard) }()
	stop() // the workspace goes away
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "workspace connection ended") {
			t.Fatalf("portForward after the connection dropped = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("portForward did not return after the connection dropped")
	}
}
