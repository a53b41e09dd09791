package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// SSH as people use OpenSSH's server, end to end: a real control plane, real
// agents, and the real OpenSSH tools (ssh, scp, sftp, ssh-agent) through
// `courier ssh --stdio` as ProxyCommand. The workspace is this machine, so
// "an app in the workspace" is a server on loopback here.

const (
	valueSSHKey  = "e2e-canary-ssh-key-6a0f"
	bodyApp      = "e2e-canary-app-body-2c9d"
	bodyThisSide = "e2e-canary-this-side-77b1"
)

// sshWorld is one control plane with a logged-in owner.
type sshWorld struct {
	t                        *testing.T
	sshBin, courier, agent   string
	url, token               string
	api                      *client.Client
	serverLog                *logBuf
	courierEnv               []string
	sshOpts                  []string
	agentLogs                map[string]*logBuf
	agentHomes, agentMetrics map[string]string
}

func newSSHWorld(t *testing.T) *sshWorld {
	t.Helper()
	w := &sshWorld{t: t, sshBin: need(t, "ssh"), agentLogs: map[string]*logBuf{}, agentHomes: map[string]string{}, agentMetrics: map[string]string{}}
	for _, bin := range []string{"scp", "sftp", "ssh-agent", "ssh-add", "ssh-keygen", "curl"} {
		need(t, bin)
	}
	bin := t.TempDir()
	w.courier = build(t, bin, "github.com/courierhq/courier/cmd/courier")
	w.agent = build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	addr, serverLog := startServer(t, w.courier)
	w.url, w.serverLog = "http://"+addr, serverLog
	ctx := context.Background()
	anon, _ := client.New(client.Config{URL: w.url})
	if _, err := anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: "dev", Email: "dev@e2e.test", Password: "correct-horse"}); err != nil {
		t.Fatal(err)
	}
	token, err := anon.Login(ctx, client.LoginRequest{Username: "dev", Password: "correct-horse"})
	if err != nil {
		t.Fatal(err)
	}
	w.token, w.api = token, anon.WithToken(token)
	if _, err := w.api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "api-key", Value: valueSSHKey, EnvName: "API_KEY"}); err != nil {
		t.Fatal(err)
	}
	w.courierEnv = append(os.Environ(), "COURIER_URL="+w.url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+t.TempDir())
	w.sshOpts = []string{"-F", "/dev/null", "-o", "ProxyCommand=" + w.courier + " ssh --stdio %h",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"}
	return w
}

// workspace creates a workspace with tmpl and starts its agent (debug logs,
// metrics on a loopback port), waiting for its first apply.
func (w *sshWorld) workspace(name string, tmpl client.Template) {
	t := w.t
	t.Helper()
	ws, err := w.api.CreateWorkspace(context.Background(), client.CreateWorkspaceRequest{Name: name, Owner: "dev", Template: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	home, log, metrics := t.TempDir(), &logBuf{}, freePort(t)
	agent := exec.Command(w.agent, "--url", w.url, "--data-dir", filepath.Join(t.TempDir(), "agent"),
		"--log-level", "debug", "--metrics-listen", metrics)
	agent.Env = append(os.Environ(), "HOME="+home, "COURIER_AGENT_TOKEN="+ws.AgentToken, "SHELL=/bin/sh")
	agent.Stdout, agent.Stderr = log, log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	waitUntil(t, "the agent's first apply", func() bool { return strings.Contains(log.String(), `"msg":"secrets applied"`) })
	w.agentLogs[name], w.agentHomes[name], w.agentMetrics[name] = log, home, metrics
}

// tool returns an OpenSSH tool's command with the test's options and env.
func (w *sshWorld) tool(bin string, args ...string) *exec.Cmd {
	return w.toolAt("ERROR", bin, args...)
}

// toolAt is tool with OpenSSH's LogLevel set to level.
func (w *sshWorld) toolAt(level, bin string, args ...string) *exec.Cmd {
	// The first -o of a name wins in OpenSSH.
	opts := append([]string{"-o", "LogLevel=" + level}, w.sshOpts...)
	c := exec.Command(bin, append(opts, args...)...)
	c.Env = w.courierEnv
	return c
}

func (w *sshWorld) run(bin string, args ...string) string {
	w.t.Helper()
	out, err := w.tool(bin, args...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// background starts cmd until the test ends, its output in the returned
// buffer.
func background(t *testing.T, cmd *exec.Cmd) *logBuf {
	t.Helper()
	out := &logBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return out
}

// httpServer serves body on ln until the test ends.
func httpServer(t *testing.T, ln net.Listener, body string) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func listenTCP(t *testing.T) (net.Listener, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

func port(t *testing.T) string { _, p, _ := net.SplitHostPort(freePort(t)); return p }

// curl fetches url (extra curl args first) and returns the body, or "" and
// the error output.
func curl(args ...string) (string, error) {
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
	return string(out), err
}

// shortDir is a directory for Unix sockets, whose paths are limited to
// about 100 bytes (t.TempDir can be longer).
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "ssh-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func (w *sshWorld) metric(name, line string) bool {
	r, err := http.Get("http://" + w.agentMetrics[name] + "/metrics")
	if err != nil {
		return false
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return strings.Contains(string(b), line)
}

func TestSSHEndToEnd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and runs GNU stat in the workspace; CI runs it on Linux")
	}
	w := newSSHWorld(t)
	w.workspace("dev", client.Template{Env: map[string]string{"TEMPLATE_ONLY": "t"}})
	w.workspace("locked", client.Template{SSH: client.TemplateSSH{DisableForwarding: true}})
	t.Run("scp", w.testSCP)
	t.Run("sftp", w.testSFTP)
	t.Run("editor", w.testEditorExec)
	t.Run("forwarding", w.testForwarding)
	t.Run("agent", w.testAgentForwarding)
	t.Run("port-forward", w.testPortForward)
	t.Run("forwarding-off", w.testForwardingOff)
	t.Run("not-owner", w.testNotOwner)

	// No value, no forwarded data and no token in any log.
	for name, log := range map[string]string{"dev agent": w.agentLogs["dev"].String(), "locked agent": w.agentLogs["locked"].String(),
		"server": w.serverLog.String()} {
		for _, v := range []string{valueSSHKey, bodyApp, bodyThisSide, w.token} {
			if strings.Contains(log, v) {
				t.Errorf("the %s log contains a secret, forwarded data or a token (%.12s...)", name, v)
			}
		}
	}
	if t.Failed() {
		fmt.Println("dev agent log:\n" + w.agentLogs["dev"].String())
	}
}

// testSCP: 20 MB up and down, byte-exact, over the sftp subsystem (scp's
// default protocol in current OpenSSH).
func (w *sshWorld) testSCP(t *testing.T) {
	local := t.TempDir()
	data := make([]byte, 20<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	up := filepath.Join(local, "up.bin")
	if err := os.WriteFile(up, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(w.agentLogs["dev"].String(), `"msg":"ssh subsystem started"`)
	w.run("scp", up, "dev:up.bin") // relative: the home directory
	if got, err := os.ReadFile(filepath.Join(w.agentHomes["dev"], "up.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file differs (%d bytes, %v)", len(got), err)
	}
	down := filepath.Join(local, "down.bin")
	w.run("scp", "dev:up.bin", down)
	if got, err := os.ReadFile(down); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs (%d bytes, %v)", len(got), err)
	}
	if n := strings.Count(w.agentLogs["dev"].String(), `"msg":"ssh subsystem started"`) - before; n != 2 {
		t.Errorf("%d sftp subsystem starts for two scp runs, want 2", n)
	}
	// scp -O: the legacy protocol runs the workspace's own scp over exec.
	small := filepath.Join(local, "legacy.txt")
	if err := os.WriteFile(small, []byte("legacy scp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.run("scp", "-O", small, "dev:legacy.txt")
	if got, _ := os.ReadFile(filepath.Join(w.agentHomes["dev"], "legacy.txt")); string(got) != "legacy scp\n" {
		t.Errorf("scp -O uploaded %q", got)
	}
}

// testSFTP: sftp in batch mode (ls, put, get, rm), and the secret env in
// the SFTP server's own environment.
func (w *sshWorld) testSFTP(t *testing.T) {
	home, local := w.agentHomes["dev"], t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "listed-file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(local, "put.txt"), []byte("put through sftp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	batch := filepath.Join(local, "batch")
	if err := os.WriteFile(batch, []byte("ls\nput put.txt remote.txt\nget remote.txt back.txt\nrm remote.txt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := w.tool("sftp", "-b", batch, "dev")
	c.Dir = local
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("sftp batch: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "listed-file") {
		t.Errorf("sftp ls does not list the home directory: %s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(local, "back.txt")); string(got) != "put through sftp\n" {
		t.Errorf("sftp get = %q", got)
	}
	if _, err := os.Stat(filepath.Join(home, "remote.txt")); !os.IsNotExist(err) {
		t.Errorf("sftp rm left remote.txt: %v", err)
	}

	// While an sftp session is open, read its server's environment.
	c = w.tool("sftp", "-b", "-", "dev")
	stdin, _ := c.StdinPipe()
	c.Stdout, c.Stderr = io.Discard, io.Discard
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = c.Wait() }()
	var env string
	waitUntil(t, "the sftp server process", func() bool {
		env = sftpServerEnv(w.agent)
		return env != ""
	})
	if !strings.Contains(env, "\x00API_KEY="+valueSSHKey+"\x00") || !strings.Contains(env, "\x00TEMPLATE_ONLY=t\x00") {
		t.Error("the sftp server's environment lacks the secret or the template env")
	}
	if strings.Contains(env, "COURIER_AGENT_TOKEN") {
		t.Error("the agent token reached the sftp server")
	}
}

// sftpServerEnv returns the environment ("\x00"-separated, framed by NULs)
// of a running `agent sftp-server` process, or "".
func sftpServerEnv(agent string) string {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || string(b) != agent+"\x00sftp-server\x00" {
			continue
		}
		if env, err := os.ReadFile(filepath.Join(filepath.Dir(p), "environ")); err == nil {
			return "\x00" + string(env)
		}
	}
	return ""
}

// testEditorExec: editors run a shell over an exec channel and feed it a
// script on stdin; it gets the secret env like any session.
func (w *sshWorld) testEditorExec(t *testing.T) {
	c := w.tool(w.sshBin, "-T", "dev", "sh")
	c.Stdin = strings.NewReader("echo \"API_KEY=$API_KEY\"\nexit 0\n")
	out, err := c.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "API_KEY="+valueSSHKey {
		t.Fatalf("script over exec: %q, %v", out, err)
	}
}

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
