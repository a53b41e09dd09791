package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// The end-to-end proof of the agent: a real control plane process, a real
// agent process in a temporary home, the real OpenSSH client through
// `courier ssh --stdio`, and a proxy between agent and control plane so the
// test can cut the agent's connection.

const (
	valueAPI  = "e2e-canary-api-7f1d"
	valueAPI2 = "e2e-canary-api-v2-9c3e"
	valueCfg  = `{"e2e-canary-cfg": 1}`
	valueSvc  = "e2e-canary-svc-41ab"
	valueColl = "e2e-canary-collider-55de"
	// valueBin is not UTF-8 text and holds NUL: a keytab-like file secret.
	valueBin = "\xff\xfeA\x80\x00e2e-canary-bin-3b7c\x00\xc3"
)

func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required on CI (.ci/run installs it): %v", bin, err)
		}
		t.Skipf("%s not installed; install it to run this test (CI always does)", bin)
	}
	return p
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logBuf collects a process's output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// cutProxy forwards TCP to target; cut closes every open connection.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// startServer runs `courier server` on a free loopback port until the test
// ends and returns its address once /healthz answers, and its log.
func startServer(t *testing.T, courier string) (string, *logBuf) {
	t.Helper()
	addr := freePort(t)
	log := &logBuf{}
	server := exec.Command(courier, "server", "--listen", addr, "--data-dir", filepath.Join(t.TempDir(), "data"))
	server.Stdout, server.Stderr = log, log
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
	waitUntil(t, "the control plane", func() bool {
		r, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	})
	return addr, log
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// firstUser creates the server's first user (an admin), logs in, and returns
// a client carrying that session and the session token.
func firstUser(t *testing.T, url, username, email, password string) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	anon, err := client.New(client.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: username, Email: email, Password: password}); err != nil {
		t.Fatal(err)
	}
	token, err := anon.Login(ctx, client.LoginRequest{Username: username, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return anon.WithToken(token), token
}

func read(p string) string { b, _ := os.ReadFile(p); return string(b) }

func TestEndToEnd(t *testing.T) {
	sshBin := need(t, "ssh")
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()

	// The control plane, as a real process.
	addr, serverLog := startServer(t, courier)
	url := "http://" + addr

	api, token := firstUser(t, url, "dev", "dev@e2e.test", "correct-horse")
	home := t.TempDir()
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev", Template: client.Template{
		Env: map[string]string{"API_KEY": "from-template", "TEMPLATE_ONLY": "t"},
		Scripts: []client.Script{{Name: "proof", TimeoutSeconds: 30, Script: `set -e
stat -c %a ~/.config/svc/token > ~/proof
cat ~/.config/svc/token >> ~/proof
echo " API_KEY=$API_KEY SERVICE_TOKEN=$SERVICE_TOKEN TEMPLATE_ONLY=$TEMPLATE_ONLY AGENT_TOKEN=${COURIER_AGENT_TOKEN:-unset}" >> ~/proof
ls /proc/$$/fd | tr '\n' ' ' > ~/fds`}},
		Apps: []client.App{{Slug: "long", Command: `while true; do echo "$API_KEY" > ~/app-env.tmp && mv ~/app-env.tmp ~/app-env; sleep 0.1; done`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name, value, env, file string) {
		t.Helper()
		if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: name, Value: value, EnvName: env, FilePath: file}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	mk("api-key", valueAPI, "API_KEY", "")
	mk("tool-config", valueCfg, "", "~/.config/tool/config.json")
	mk("service-token", valueSvc, "SERVICE_TOKEN", "~/.config/svc/token")
	mk("keytab", valueBin, "", "~/.keytab")

	// The agent, as a real process, behind a proxy the test can cut.
	proxy := newCutProxy(t, addr)
	agentLog := &logBuf{}
	agent := exec.Command(agentBin, "--url", "http://"+proxy.ln.Addr().String(), "--data-dir", filepath.Join(t.TempDir(), "agent"),
		"--max-backoff", "1s")
	agent.Env = append(os.Environ(), "HOME="+home, "COURIER_AGENT_TOKEN="+ws.AgentToken, "SHELL=/bin/sh")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	// Descriptors the agent inherits (3 to 7 here, as from a shell or a
	// supervisor) reach none of its children, as sshd closes them.
	for range 5 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		agent.ExtraFiles = append(agent.ExtraFiles, f)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Wait() }()
	t.Cleanup(func() { _ = agent.Process.Kill() })

	// (1) The startup script found the file (0600) and the env vars.
	waitUntil(t, "the startup script's proof", func() bool { return strings.Contains(read(filepath.Join(home, "proof")), "AGENT_TOKEN") })
	waitUntil(t, "the startup script's descriptors", func() bool { return read(filepath.Join(home, "fds")) != "" })
	for _, fd := range strings.Fields(read(filepath.Join(home, "fds"))) {
		if n, _ := strconv.Atoi(fd); n >= 5 && n <= 7 {
			t.Errorf("the startup script inherited the agent's descriptor %d (all: %s)", n, read(filepath.Join(home, "fds")))
		}
	}
	wantProof := "600\n" + valueSvc + " API_KEY=" + valueAPI + " SERVICE_TOKEN=" + valueSvc + " TEMPLATE_ONLY=t AGENT_TOKEN=unset\n"
	if got := read(filepath.Join(home, "proof")); got != wantProof {
		t.Fatalf("proof = %q\nwant    %q", got, wantProof)
	}
	if got := read(filepath.Join(home, ".config", "tool", "config.json")); got != valueCfg {
		t.Fatalf("file secret = %q", got)
	}
	if got := read(filepath.Join(home, ".keytab")); got != valueBin {
		t.Fatalf("binary file secret: %d bytes on disk, not the %d created", len(got), len(valueBin))
	}
	waitUntil(t, "the app", func() bool { return read(filepath.Join(home, "app-env")) == valueAPI+"\n" })

	// (2) The real OpenSSH client, through courier ssh --stdio.
	sshEnv := func(cmd string) string {
		t.Helper()
		c := exec.Command(sshBin, "-F", "/dev/null", "-o", "ProxyCommand="+courier+" ssh --stdio %h",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
			"dev", cmd)
		c.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+t.TempDir())
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("ssh %q: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	if got := sshEnv(`echo "API_KEY=$API_KEY SERVICE_TOKEN=$SERVICE_TOKEN"`); got != "API_KEY="+valueAPI+" SERVICE_TOKEN="+valueSvc+"\n" {
		t.Fatalf("ssh sees %q", got)
	}

	// (3) Change everything, then cut the connection.
	v2, env2, file2, coll := valueAPI2, "SVC_TOKEN", "~/.config/tool/config2.json", filepath.Join(home, ".config", "svc", "token")
	if _, err := api.UpdateSecret(ctx, "me", "api-key", client.UpdateSecretRequest{Value: &v2}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.UpdateSecret(ctx, "me", "service-token", client.UpdateSecretRequest{EnvName: &env2}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.UpdateSecret(ctx, "me", "tool-config", client.UpdateSecretRequest{FilePath: &file2}); err != nil {
		t.Fatal(err)
	}
	mk("collider", valueColl, "", coll) // the absolute spelling of ~/.config/svc/token
	connects := strings.Count(agentLog.String(), "connected to the control plane")
	proxy.cut()
	waitUntil(t, "the reconnect's apply", func() bool {
		return strings.Count(agentLog.String(), "connected to the control plane") > connects &&
			read(filepath.Join(home, ".config", "tool", "config2.json")) == valueCfg
	})
	waitUntil(t, "the reconnect's apply to finish", func() bool {
		return strings.Count(agentLog.String(), `"msg":"secrets applied"`) >= 2
	})

	// (4) A new SSH session sees the new value and name, not the old name.
	got := sshEnv(`echo "API_KEY=$API_KEY SVC_TOKEN=$SVC_TOKEN OLD=${SERVICE_TOKEN:-unset}"`)
	if want := "API_KEY=" + valueAPI2 + " SVC_TOKEN=" + valueSvc + " OLD=unset\n"; got != want {
		t.Fatalf("after reconnect ssh sees %q, want %q", got, want)
	}
	// The long-running app keeps the env it started with (R4).
	if got := read(filepath.Join(home, "app-env")); got != valueAPI+"\n" {
		t.Errorf("the running app's env changed: %q", got)
	}
	// Both files exist (R7); the collision left one file, newest wins (R8).
	if read(filepath.Join(home, ".config", "tool", "config.json")) != valueCfg {
		t.Error("the file at the old path is gone or changed (R7)")
	}
	if got := read(coll); got != valueColl {
		t.Errorf("collided path holds %q, want the most recently updated secret's value", got)
	}
	if n := strings.Count(agentLog.String(), "file secrets collide"); n != 1 {
		t.Errorf("%d collision warnings, want exactly 1", n)
	}
	warns := 0
	for _, line := range strings.Split(agentLog.String(), "\n") {
		if strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "collision") || strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "collide") {
			warns++
		}
	}
	if warns != 1 {
		t.Errorf("%d warning lines about the collision, want one (R8)", warns)
	}
	if !strings.Contains(agentLog.String(), "file left on disk by an earlier apply") {
		t.Error("the orphaned config.json was not reported")
	}
	// Scripts ran once.
	if n := strings.Count(read(filepath.Join(home, "proof")), "AGENT_TOKEN"); n != 1 {
		t.Errorf("startup script ran %d times", n)
	}

	// (5) SIGTERM: clean exit, state off.
	_ = agent.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-agentDone:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v\n%s", err, agentLog.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not exit after SIGTERM")
	}
	w, err := api.Workspace(ctx, "dev")
	if err != nil || w.State != "off" {
		t.Errorf("workspace state after SIGTERM = %q, %v", w.State, err)
	}

	// Canaries: no value in either log, nor the tokens.
	for name, log := range map[string]string{"agent": agentLog.String(), "server": serverLog.String()} {
		for _, v := range []string{valueAPI, valueAPI2, valueSvc, valueColl, "e2e-canary-cfg", "e2e-canary-bin-3b7c", ws.AgentToken, token} {
			if strings.Contains(log, v) {
				t.Errorf("the %s log contains a secret value or token (%.12s...)", name, v)
			}
		}
	}
	if t.Failed() {
		fmt.Println("agent log:\n" + agentLog.String())
	}
}
