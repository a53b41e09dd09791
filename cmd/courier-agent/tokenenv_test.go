package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// TestTokenFromEnvironmentLeavesProcEnviron starts the real agent with its
// token in COURIER_AGENT_TOKEN against a real control plane and checks,
// once it is ready, that /proc/<pid>/environ and /proc/<pid>/cmdline of the
// very process started no longer hold the token.
func TestTokenFromEnvironmentLeavesProcEnviron(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/environ, which only Linux has")
	}
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()
	addr, serverLog := startServer(t, courier)
	url := "http://" + addr
	api, _ := firstUser(t, url, "ops", "ops@x.test", "password-1")
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "envtok", Owner: "ops",
		Template: client.Template{Scripts: []client.Script{{Name: "env", TimeoutSeconds: 10,
			Script: `env > ~/script-env`}}}})
	if err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	agentLog := &logBuf{}
	agent := exec.Command(agentBin, "--url", url, "--data-dir", filepath.Join(t.TempDir(), "agent"))
	agent.Env = append(os.Environ(), "HOME="+home, "SHELL=/bin/sh", "COURIER_AGENT_TOKEN="+ws.AgentToken)
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- agent.Wait() }()
	t.Cleanup(func() { _ = agent.Process.Kill() })
	waitUntil(t, "the agent to report ready", func() bool {
		w, err := api.Workspace(ctx, "envtok")
		return err == nil && w.State == "ready"
	})

	proc := "/proc/" + strconv.Itoa(agent.Process.Pid)
	exe, err := os.Readlink(proc + "/exe")
	if err != nil || exe != agentBin {
		t.Fatalf("PID %d is %q (%v), not the agent started: the re-exec must keep the PID", agent.Process.Pid, exe, err)
	}
	environ, err := os.ReadFile(proc + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(proc + "/cmdline")
	for name, b := range map[string][]byte{"environ": environ, "cmdline": cmdline,
		"startup script's env": []byte(read(filepath.Join(home, "script-env"))),
		"agent log":            []byte(agentLog.String()), "server log": []byte(serverLog.String())} {
		if strings.Contains(string(b), ws.AgentToken) {
			t.Errorf("the agent token is in the %s", name)
		}
	}
	if strings.Contains(string(environ), "COURIER_AGENT_TOKEN=") {
		t.Error("COURIER_AGENT_TOKEN is still set in /proc/<pid>/environ")
	}
	if !strings.Contains(string(environ), "COURIER_AGENT_TOKEN_FD=") {
		t.Error("the agent did not re-execute itself (no COURIER_AGENT_TOKEN_FD in its environ)")
	}
	if read(filepath.Join(home, "script-env")) == "" {
		t.Fatal("the startup script did not run")
	}

	_ = agent.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v\n%s", err, agentLog.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not exit after SIGTERM")
	}
}
