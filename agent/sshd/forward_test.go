package sshd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// echoServer accepts on ln and echoes each connection, upper-cased per
// line, until ln closes.
func echoServer(t *testing.T, ln net.Listener) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := fmt.Fprintln(c, strings.ToUpper(sc.Text())); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
}

// roundTrip sends one line over c and reads the echo.
func roundTrip(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	return strings.TrimSpace(got)
}

func (h *harness) count(kind, result string) float64 {
	return testutil.ToFloat64(h.srv.metrics.total.WithLabelValues(kind, result))
}

// logged reports whether a debug line with msg names kind and target.
func (h *harness) logged(msg, kind, target string) bool {
	for _, e := range h.logs.FilterMessage(msg).All() {
		m := e.ContextMap()
		if m["kind"] == kind && (target == "" || m["target"] == target) {
			return true
		}
	}
	return false
}

func TestLocalForwardTCP(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			echoServer(t, ln)
			client := tr.dial(h, t)
			c, err := client.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if got := roundTrip(t, c, "data-never-logged"); got != "DATA-NEVER-LOGGED" {
				t.Fatalf("echo = %q", got)
			}
			c.Close()
			if got := h.count(kindDirectTCPIP, resultOK); got != 1 {
				t.Errorf("direct-tcpip ok = %v, want 1", got)
			}
			if !h.logged("ssh forward opened", kindDirectTCPIP, ln.Addr().String()) {
				t.Error("no debug line naming the forward's kind and target")
			}
			for _, e := range h.logs.All() {
				if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), "never-logged") {
					t.Errorf("forwarded data in the log: %s", e.Message)
				}
			}
			// A target nobody listens on: refused with a clear failure.
			dead, _ := net.Listen("tcp", "127.0.0.1:0")
			addr := dead.Addr().String()
			dead.Close()
			if _, err := client.Dial("tcp", addr); err == nil {
				t.Fatal("dial of a closed port succeeded")
			}
			if got := h.count(kindDirectTCPIP, resultFailed); got != 1 {
				t.Errorf("direct-tcpip failed = %v, want 1", got)
			}
		})
	}
}

func TestLocalForwardHalfClose(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The server reads everything, then answers with the length: it only
	// answers after the client's half-close reaches it.
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		fmt.Fprintf(c, "%d", len(b))
	}()
	defer ln.Close()
	c, err := h.pipeClient(t).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "100000" {
		t.Fatalf("answer after half-close = %q, %v", b, err)
	}
}

func TestRemoteForwardTCPBindsLoopback(t *testing.T) {
	for _, gateway := range []bool{false, true} {
		t.Run(fmt.Sprintf("gateway_ports=%v", gateway), func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetPolicy(Policy{GatewayPorts: gateway})
			client := h.pipeClient(t)
			// The client asks for every address; without GatewayPorts the
			// workspace binds loopback only.
			rl, err := client.Listen("tcp", "0.0.0.0:0")
			if err != nil {
				t.Fatal(err)
			}
			echoServer(t, rl)
			port := rl.Addr().(*net.TCPAddr).Port
			var bound []string
			for _, e := range h.logs.FilterMessage("ssh remote forward listening").All() {
				a, _ := e.ContextMap()["address"].(string)
				bound = append(bound, a)
			}
			// Without GatewayPorts: loopback, both families where the
			// workspace has IPv6, as sshd does ("localhost" may be ::1).
			want := []string{fmt.Sprintf("127.0.0.1:%d", port)}
			if hasIPv6Loopback() {
				want = append(want, fmt.Sprintf("[::1]:%d", port))
			}
			if gateway {
				want = []string{fmt.Sprintf("0.0.0.0:%d", port)}
				if len(bound) == 1 && bound[0] == fmt.Sprintf("[::]:%d", port) {
					want = bound
				}
			}
			if fmt.Sprint(bound) != fmt.Sprint(want) {
				t.Fatalf("remote forward bound %q, want %q", bound, want)
			}
			addrs := []string{fmt.Sprintf("127.0.0.1:%d", port)}
			if hasIPv6Loopback() {
				addrs = append(addrs, fmt.Sprintf("[::1]:%d", port))
			}
			for _, a := range addrs {
				c, err := net.Dial("tcp", a)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				if got := roundTrip(t, c, "through -R"); got != "THROUGH -R" {
					t.Fatalf("echo through %s = %q", a, got)
				}
				c.Close()
			}
			if h.count(kindTCPIPForward, resultOK) != 1 || h.count(kindForwardedTCPIP, resultOK) != float64(len(addrs)) {
				t.Errorf("counters: tcpip-forward %v, forwarded-tcpip %v, want 1 and %d",
					h.count(kindTCPIPForward, resultOK), h.count(kindForwardedTCPIP, resultOK), len(addrs))
			}
			// Cancelling closes the workspace's listeners.
			rl.Close()
			for _, a := range addrs {
				waitFor(t, "the listener on "+a+" to close", func() bool {
					c, err := net.Dial("tcp", a)
					if err == nil {
						c.Close()
					}
					return err != nil
				})
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamlocalForwarding(t *testing.T) {
	h := newHarness(t)
	client := h.pipeClient(t)
	dir, err := os.MkdirTemp("", "sshd-sock-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// ssh -L to a socket in the workspace.
	ln, err := net.Listen("unix", filepath.Join(dir, "app.sock"))
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	c, err := client.Dial("unix", filepath.Join(dir, "app.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, "to a socket"); got != "TO A SOCKET" {
		t.Fatalf("echo = %q", got)
	}
	c.Close()

	// ssh -R of a socket: created 0600, removed when cancelled.
	remote := filepath.Join(dir, "fwd.sock")
	rl, err := client.ListenUnix(remote)
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, rl)
	fi, err := os.Stat(remote)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("forwarded socket mode %v, want 0600", fi.Mode().Perm())
	}
	c, err = net.Dial("unix", remote)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, "from the workspace"); got != "FROM THE WORKSPACE" {
		t.Fatalf("echo = %q", got)
	}
	c.Close()
	// An existing path is not replaced.
	if _, err := client.ListenUnix(remote); err == nil {
		t.Error("a second forward on the same path succeeded")
	}
	rl.Close()
	waitFor(t, "the socket to be removed", func() bool { _, err := os.Stat(remote); return errors.Is(err, os.ErrNotExist) })
	for _, k := range []string{kindDirectStreamlocal, kindStreamlocalForward, kindForwardedStreamlocal} {
		if h.count(k, resultOK) != 1 {
			t.Errorf("%s ok = %v, want 1", k, h.count(k, resultOK))
		}
	}
}

func TestForwardingDisabled(t *testing.T) {
	h := newHarness(t)
	h.srv.SetPolicy(Policy{DisableForwarding: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	client := h.pipeClient(t)
	_, err = client.Dial("tcp", ln.Addr().String())
	var oce *gossh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != gossh.Prohibited || !strings.Contains(oce.Message, "turned off") {
		t.Fatalf("local forward with forwarding off: %v, want administratively prohibited", err)
	}
	if _, err := client.Dial("unix", "/tmp/whatever.sock"); err == nil {
		t.Error("socket forward allowed with forwarding off")
	}
	if _, err := client.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote forward allowed with forwarding off")
	}
	if _, err := client.ListenUnix(filepath.Join(h.home, "x.sock")); err == nil {
		t.Error("remote socket forward allowed with forwarding off")
	}
	// Agent forwarding: the request is refused, and the session has no
	// socket.
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := agent.RequestAgentForwarding(sess); err == nil {
		t.Error("agent forwarding request accepted with forwarding off")
	}
	out, err := sess.Output(`echo "sock=${SSH_AUTH_SOCK:-none}"`)
	if err != nil || strings.TrimSpace(string(out)) != "sock=none" {
		t.Fatalf("agent forwarding with forwarding off: %q, %v", out, err)
	}
	for _, k := range []string{kindDirectTCPIP, kindDirectStreamlocal, kindTCPIPForward, kindStreamlocalForward, kindAgent} {
		if h.count(k, resultRefused) != 1 {
			t.Errorf("%s refused = %v, want 1", k, h.count(k, resultRefused))
		}
	}
	// Turned back on, the same connection may forward (the policy is read
	// per request).
	h.srv.SetPolicy(Policy{})
	c, err := client.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestForwardsEndWithTheConnection(t *testing.T) {
	h := newHarness(t)
	client := h.pipeClient(t)
	rl, err := client.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := rl.Addr().String()
	client.Close()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

func TestMalformedForwardRequests(t *testing.T) {
	h := newHarness(t)
	client := h.pipeClient(t)
	for _, kind := range []string{"direct-tcpip", "direct-streamlocal@openssh.com"} {
		_, _, err := client.OpenChannel(kind, []byte{0, 0, 0, 9, 'x'})
		var oce *gossh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != gossh.ConnectionFailed || !strings.Contains(oce.Message, "malformed") {
			t.Errorf("%s with a garbage payload: %v", kind, err)
		}
	}
	huge := gossh.Marshal(&directTCPIPData{DestAddr: "127.0.0.1", DestPort: 70000})
	if _, _, err := client.OpenChannel("direct-tcpip", huge); err == nil {
		t.Error("direct-tcpip to port 70000 was accepted")
	}
	for _, req := range []string{"tcpip-forward", "cancel-tcpip-forward", "streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com"} {
		ok, _, err := client.SendRequest(req, true, []byte{1, 2})
		if err != nil || ok {
			t.Errorf("%s with a garbage payload: ok=%v, %v", req, ok, err)
		}
	}
	if ok, _, _ := client.SendRequest("tcpip-forward", true, gossh.Marshal(&tcpipForwardRequest{BindAddr: "127.0.0.1", BindPort: 70000})); ok {
		t.Error("tcpip-forward on port 70000 was accepted")
	}
	// A cancel of a forward this connection does not have changes nothing.
	if ok, _, _ := client.SendRequest("cancel-tcpip-forward", true, gossh.Marshal(&tcpipForwardRequest{BindAddr: "127.0.0.1", BindPort: 1})); ok {
		t.Error("cancel of an unknown forward succeeded")
	}
	// The connection still works.
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if out, err := sess.Output("echo alive"); err != nil || string(out) != "alive\n" {
		t.Fatalf("after malformed requests: %q, %v", out, err)
	}
}

// hasIPv6Loopback reports whether this host can listen on ::1.
func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}
