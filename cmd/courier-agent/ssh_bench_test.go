package main_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// BenchmarkSSHLocalForward moves 100 MB per op to a sink on loopback,
// straight and through ssh -L (OpenSSH client, courier ssh --stdio, the
// control plane's websocket, the agent's yamux stream and its forward), in
// one run so machine noise hits both. Recorded in BENCHMARKS.md.
//
//	go test -run XXX -bench SSHLocalForward -benchtime 3x ./cmd/courier-agent/
func BenchmarkSSHLocalForward(b *testing.B) {
	const size = 100 << 20
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		b.Skip("ssh not installed")
	}
	dir := b.TempDir()
	courier, url, token := benchCourier(b, dir, nil)

	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	local := benchPort(b)
	fwd := exec.Command(sshBin, "-F", "/dev/null", "-o", "ProxyCommand="+courier+" ssh --stdio %h",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-N", "-L", local+":"+sink.Addr().String(), "dev")
	fwd.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+dir)
	if err := fwd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fwd.Process.Kill(); _ = fwd.Wait() })
	benchWait(b, func() bool { return send("127.0.0.1:"+local, 1) == nil })

	for _, tc := range []struct{ name, addr string }{{"loopback", sink.Addr().String()}, {"ssh-L", "127.0.0.1:" + local}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if err := send(tc.addr, size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchCourier builds courier and courier-agent into dir, starts a control
// plane and one agent for workspace "dev" on loopback, and returns the
// courier binary, the server URL and the owner's session token once the
// agent is connected (an ssh started before would fail).
//
// asUser, when set, makes the agent's process run as another user: it is
// given the agent's command (Env without the token, which is added after)
// and its data directory to prepare.
func benchCourier(b *testing.B, dir string, asUser func(agent *exec.Cmd, dataDir string)) (courier, url, token string) {
	b.Helper()
	courier, agentBin := filepath.Join(dir, "courier"), filepath.Join(dir, "courier-agent")
	for out, pkg := range map[string]string{courier: "./cmd/courier", agentBin: "./cmd/courier-agent"} {
		cmd := exec.Command("go", "build", "-o", out, "github.com/courierhq/courier/"+strings.TrimPrefix(pkg, "./"))
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, o)
		}
	}
	addr := "127.0.0.1:" + benchPort(b)
	server := exec.Command(courier, "server", "--listen", addr, "--data-dir", filepath.Join(dir, "data"))
	if err := server.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
	url = "http://" + addr
	benchWait(b, func() bool { r, err := http.Get(url + "/healthz"); return err == nil && r.Body.Close() == nil })
	ctx := context.Background()
	anon, _ := client.New(client.Config{URL: url})
	if _, err := anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: "dev", Email: "dev@bench.test", Password: "correct-horse"}); err != nil {
		b.Fatal(err)
	}
	token, err := anon.Login(ctx, client.LoginRequest{Username: "dev", Password: "correct-horse"})
	if err != nil {
		b.Fatal(err)
	}
	ws, err := anon.WithToken(token).CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev"})
	if err != nil {
		b.Fatal(err)
	}
	agent := exec.Command(agentBin, "--url", url, "--data-dir", filepath.Join(dir, "agent"))
	agent.Env = append(os.Environ(), "HOME="+b.TempDir())
	if asUser != nil {
		asUser(agent, filepath.Join(dir, "agent"))
	}
	agent.Env = append(agent.Env, "COURIER_AGENT_TOKEN="+ws.AgentToken)
	if err := agent.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	api := anon.WithToken(token)
	benchWait(b, func() bool { st, err := api.AgentStatus(ctx, "dev"); return err == nil && st.Connected })
	return courier, url, token
}

var chunk = make([]byte, 256<<10)

// send writes n bytes to addr, half-closes, and waits for the far end to
// close: every byte has reached the sink.
func send(addr string, n int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := c.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = io.Copy(io.Discard, c)
	return err
}

func benchPort(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()[len("127.0.0.1:"):]
}

func benchWait(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
