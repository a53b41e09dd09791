package main_test

import (
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
	"testing"

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
	w.api, w.token = firstUser(t, w.url, "dev", "dev@e2e.test", "correct-horse")
	if _, err := w.api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "api-key", Value: valueSSHKey, EnvName: "API_KEY"}); err != nil {
		t.Fatal(err)
	}
	w.courierEnv = append(os.Environ(), "COURIER_URL="+w.url, "COURIER_SESSION_TOKEN="+w.token, "COURIER_CONFIG_DIR="+t.TempDir())
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
	t.Run("ssh-connection", w.testSSHConnection)
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
// testSSHConnection: SSH_CLIENT and SSH_CONNECTION name the real client
// (its loopback address and a real port) and the control plane's address
// it reached, as sshd's do, not 0.0.0.0 0 0; TERM is unset without a pty.
func (w *sshWorld) testSSHConnection(t *testing.T) {
	out := w.run(w.sshBin, "-T", "dev", `echo "$SSH_CLIENT|$SSH_CONNECTION|${TERM-unset}"`)
	parts := strings.Split(strings.TrimSpace(out), "|")
	if len(parts) != 3 {
		t.Fatalf("unexpected output %q", out)
	}
	cl, conn := strings.Fields(parts[0]), strings.Fields(parts[1])
	if len(cl) != 3 || len(conn) != 4 {
		t.Fatalf("SSH_CLIENT %q, SSH_CONNECTION %q: want 3 and 4 fields", parts[0], parts[1])
	}
	if cl[0] != "127.0.0.1" || cl[1] == "0" || conn[0] != cl[0] || conn[1] != cl[1] {
		t.Errorf("the client is not the real one: SSH_CLIENT %q, SSH_CONNECTION %q", parts[0], parts[1])
	}
	if conn[2] != "127.0.0.1" || conn[3] == "0" || cl[2] != conn[3] {
		t.Errorf("the server side is not the control plane's address: SSH_CONNECTION %q", parts[1])
	}
	if parts[2] != "unset" {
		t.Errorf("TERM = %q without a pty", parts[2])
	}
}

func (w *sshWorld) testEditorExec(t *testing.T) {
	c := w.tool(w.sshBin, "-T", "dev", "sh")
	c.Stdin = strings.NewReader("echo \"API_KEY=$API_KEY\"\nexit 0\n")
	out, err := c.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "API_KEY="+valueSSHKey {
		t.Fatalf("script over exec: %q, %v", out, err)
	}
}
