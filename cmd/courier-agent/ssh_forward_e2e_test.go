package main_test

// The forwarding half of TestSSHEndToEnd (ssh_e2e_test.go): ssh -L, -R,
// Unix sockets, -A, courier port-forward, a template with forwarding off,
// and a non-owner.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// testForwarding: ssh -L to an app and to a Unix socket, ssh -R of a TCP
// port (loopback even when the client asks for every address) and of a
// Unix socket, reached from inside the workspace.
func (w *sshWorld) testForwarding(t *testing.T) {
	appLn, appPort := listenTCP(t)
	httpServer(t, appLn, bodyApp)
	thisLn, thisPort := listenTCP(t)
	httpServer(t, thisLn, bodyThisSide)
	dir := shortDir(t)
	appSock := filepath.Join(dir, "app.sock")
	sockLn, err := net.Listen("unix", appSock)
	if err != nil {
		t.Fatal(err)
	}
	httpServer(t, sockLn, bodyApp)

	lTCP, lSock, rTCP, rAny := port(t), port(t), port(t), port(t)
	rSock := filepath.Join(dir, "remote.sock")
	out := background(t, w.tool(w.sshBin, "-N", "-o", "ExitOnForwardFailure=yes",
		"-L", lTCP+":127.0.0.1:"+appPort,
		"-L", lSock+":"+appSock,
		"-R", rTCP+":127.0.0.1:"+thisPort,
		"-R", "0.0.0.0:"+rAny+":127.0.0.1:"+thisPort,
		"-R", rSock+":127.0.0.1:"+thisPort,
		"dev"))
	waitUntil(t, "ssh -L", func() bool { b, _ := curl("http://127.0.0.1:" + lTCP + "/"); return b == bodyApp })
	if b, err := curl("http://127.0.0.1:" + lSock + "/"); b != bodyApp {
		t.Errorf("ssh -L to a Unix socket: %q, %v", b, err)
	}
	waitUntil(t, "ssh -R listeners", func() bool {
		return strings.Count(w.agentLogs["dev"].String(), `"msg":"ssh remote forward listening"`) >= 3
	})
	inside := w.run(w.sshBin, "dev", "curl -sS --max-time 10 http://127.0.0.1:"+rTCP+"/; echo; curl -sS --max-time 10 --unix-socket "+rSock+" http://x/; echo; stat -c %a "+rSock)
	if want := bodyThisSide + "\n" + bodyThisSide + "\n600\n"; inside != want {
		t.Errorf("from inside the workspace: %q, want %q", inside, want)
	}
	// The forward the client asked on 0.0.0.0 is on loopback only.
	if !strings.Contains(w.agentLogs["dev"].String(), `"address":"127.0.0.1:`+rAny+`"`) {
		t.Errorf("ssh -R 0.0.0.0:%s was not bound to 127.0.0.1", rAny)
	}
	// Each forward logged at debug with its kind and target.
	for _, want := range []string{`"kind":"direct-tcpip","target":"127.0.0.1:` + appPort + `"`, `"kind":"direct-streamlocal","target":"` + appSock + `"`,
		`"kind":"tcpip-forward","target":"127.0.0.1:` + rTCP + `"`, `"kind":"streamlocal-forward","target":"` + rSock + `"`} {
		if !strings.Contains(w.agentLogs["dev"].String(), want) {
			t.Errorf("agent log lacks %s", want)
		}
	}
	for _, want := range []string{`courier_agent_ssh_total{kind="direct-tcpip",result="ok"}`, `courier_agent_ssh_total{kind="forwarded-tcpip",result="ok"}`,
		`courier_agent_ssh_total{kind="direct-streamlocal",result="ok"}`, `courier_agent_ssh_total{kind="sftp",result="ok"}`} {
		if !w.metric("dev", want) {
			t.Errorf("agent /metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("ssh output: %s", out.String())
	}
}

// startSSHAgent runs a real ssh-agent holding a new key with the comment
// courier-e2e-key, and returns its socket.
func startSSHAgent(t *testing.T) string {
	t.Helper()
	dir := shortDir(t)
	sock, key := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "id")
	background(t, exec.Command("ssh-agent", "-D", "-a", sock))
	waitUntil(t, "ssh-agent", func() bool { _, err := os.Stat(sock); return err == nil })
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "courier-e2e-key", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	return sock
}

// testAgentForwarding: ssh -A with a real ssh-agent holding a test key.
func (w *sshWorld) testAgentForwarding(t *testing.T) {
	sock := startSSHAgent(t)
	c := w.tool(w.sshBin, "-A", "dev", `echo "$SSH_AUTH_SOCK"; stat -c %a "$SSH_AUTH_SOCK" "$(dirname "$SSH_AUTH_SOCK")"; ssh-add -l`)
	c.Env = append(c.Env, "SSH_AUTH_SOCK="+sock)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -A: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || lines[0] == sock || lines[1] != "600" || lines[2] != "700" || !strings.Contains(lines[3], "courier-e2e-key") {
		t.Fatalf("ssh -A: want the forwarded socket (600, in a 700 directory) and the test key, got:\n%s", out)
	}
	waitUntil(t, "the forwarded agent socket to be removed", func() bool {
		_, err := os.Stat(filepath.Dir(lines[0]))
		return os.IsNotExist(err)
	})
}

// testPortForward: courier port-forward, two --tcp, curl through both,
// then SIGINT: exit 0 and the ports closed.
func (w *sshWorld) testPortForward(t *testing.T) {
	appLn, appPort := listenTCP(t)
	httpServer(t, appLn, bodyApp)
	p1, p2 := port(t), port(t)
	pf := exec.Command(w.courier, "port-forward", "dev", "--tcp", p1+":"+appPort, "--tcp", p2+":"+appPort)
	pf.Env = w.courierEnv
	stdout, _ := pf.StdoutPipe()
	var stderr logBuf
	pf.Stderr = &stderr
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pf.Process.Kill() }()
	sc := bufio.NewScanner(stdout)
	for i := 0; i < 2; i++ {
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "Forwarding 127.0.0.1:") {
			t.Fatalf("port-forward said %q; stderr %s", sc.Text(), stderr.String())
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	for _, p := range []string{p1, p2} {
		if b, err := curl("http://127.0.0.1:" + p + "/"); b != bodyApp {
			t.Errorf("curl through port-forward :%s = %q, %v", p, b, err)
		}
	}
	_ = pf.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- pf.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("port-forward after SIGINT: %v; stderr %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("port-forward did not exit after SIGINT")
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+p1); err == nil {
		c.Close()
		t.Error("the local port is still open after port-forward exited")
	}

	// A local port already taken: a clear error, nothing left listening.
	busy, busyPort := listenTCP(t)
	defer busy.Close()
	free := port(t)
	pf = exec.Command(w.courier, "port-forward", "dev", "--tcp", free+":"+appPort, "--tcp", busyPort+":"+appPort)
	pf.Env = w.courierEnv
	out, err := pf.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "listen on 127.0.0.1:"+busyPort) {
		t.Errorf("port-forward on a taken port: %v\n%s", err, out)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+free); err == nil {
		c.Close()
		t.Error("port-forward left its other port listening after failing")
	}
}

// testForwardingOff: a template with disable_forwarding refuses ssh -L,
// ssh -R, ssh -A and courier port-forward; sessions still work.
func (w *sshWorld) testForwardingOff(t *testing.T) {
	appLn, appPort := listenTCP(t)
	httpServer(t, appLn, bodyApp)
	lp := port(t)
	out := background(t, w.toolAt("INFO", w.sshBin, "-N", "-L", lp+":127.0.0.1:"+appPort, "locked"))
	waitUntil(t, "ssh -L to listen", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+lp)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if b, err := curl("http://127.0.0.1:" + lp + "/"); err == nil || strings.Contains(b, bodyApp) {
		t.Errorf("ssh -L with forwarding off reached the app: %q", b)
	}
	waitUntil(t, "the refusal in ssh's output", func() bool {
		return strings.Contains(out.String(), "administratively prohibited: forwarding is turned off for this workspace")
	})

	rOut, err := w.tool(w.sshBin, "-N", "-o", "ExitOnForwardFailure=yes", "-R", port(t)+":127.0.0.1:"+appPort, "locked").CombinedOutput()
	if err == nil || !strings.Contains(string(rOut), "remote port forwarding failed") {
		t.Errorf("ssh -R with forwarding off: %v, %q", err, rOut)
	}
	c := w.tool(w.sshBin, "-A", "locked", `echo "sock=${SSH_AUTH_SOCK:-none}"`)
	c.Env = append(c.Env, "SSH_AUTH_SOCK="+startSSHAgent(t))
	if got, err := c.CombinedOutput(); err != nil || strings.TrimSpace(string(got)) != "sock=none" {
		t.Errorf("ssh -A with forwarding off: %q, %v", got, err)
	}

	pp := port(t)
	pf := exec.Command(w.courier, "port-forward", "locked", "--tcp", pp+":"+appPort)
	pf.Env = w.courierEnv
	pfOut := background(t, pf)
	waitUntil(t, "port-forward to listen", func() bool { return strings.Contains(pfOut.String(), "Forwarding") })
	if b, err := curl("http://127.0.0.1:" + pp + "/"); err == nil || strings.Contains(b, bodyApp) {
		t.Errorf("port-forward with forwarding off reached the app: %q", b)
	}
	waitUntil(t, "port-forward's refusal", func() bool {
		return strings.Contains(pfOut.String(), "refused: forwarding is turned off for this workspace")
	})
	for _, kind := range []string{"direct-tcpip", "tcpip-forward", "auth-agent"} {
		if want := `courier_agent_ssh_total{kind="` + kind + `",result="refused"}`; !w.metric("locked", want) {
			t.Errorf("agent /metrics lacks %s", want)
		}
	}
	// Sessions are unaffected.
	if got := w.run(w.sshBin, "locked", "echo ok"); got != "ok\n" {
		t.Errorf("session with forwarding off: %q", got)
	}
}

// testNotOwner: another user, even an admin, cannot forward into the
// workspace: the control plane refuses before any SSH.
func (w *sshWorld) testNotOwner(t *testing.T) {
	ctx := context.Background()
	if _, err := w.api.CreateUser(ctx, client.CreateUserRequest{Username: "mallory", Email: "m@e2e.test", Password: "mallory-horse", Admin: true}); err != nil {
		t.Fatal(err)
	}
	anon, _ := client.New(client.Config{URL: w.url})
	tok, err := anon.Login(ctx, client.LoginRequest{Username: "mallory", Password: "mallory-horse"})
	if err != nil {
		t.Fatal(err)
	}
	pf := exec.Command(w.courier, "port-forward", "dev/dev", "--tcp", port(t)+":80")
	pf.Env = append(os.Environ(), "COURIER_URL="+w.url, "COURIER_SESSION_TOKEN="+tok, "COURIER_CONFIG_DIR="+t.TempDir())
	out, err := pf.CombinedOutput()
	if err == nil || strings.Contains(string(out), "Forwarding") {
		t.Fatalf("a non-owner's port-forward was not refused: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "only the workspace's owner") {
		t.Errorf("refusal does not say why: %s", out)
	}
	if got, err := http.Get(w.url + "/metrics"); err == nil {
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if !strings.Contains(string(b), "courier_ssh_connections_total") {
			t.Error("control plane /metrics lacks courier_ssh_connections_total")
		}
	}
}
