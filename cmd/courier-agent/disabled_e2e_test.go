package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/client"
)

const (
	valuePaused   = "e2e-canary-paused-v1-3b7e"
	valuePausedV2 = "e2e-canary-paused-v2-8d21"
)

// TestDisabledSecretEndToEnd: a paused secret is absent from a new SSH
// session's env and its file is not rewritten at the next apply (the old
// file stays, R7) although its value changed meanwhile; enabled again, it
// is back with its new value after the next apply. Real control plane, real
// agent, real OpenSSH client.
func TestDisabledSecretEndToEnd(t *testing.T) {
	sshBin := need(t, "ssh")
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()
	addr, serverLog := startServer(t, courier)
	url := "http://" + addr

	api, token := firstUser(t, url, "dev", "dev@e2e.test", "correct-horse")
	home := t.TempDir()
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "paused", Value: valuePaused,
		EnvName: "PAUSED_KEY", FilePath: "~/.paused"}); err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, addr)
	agentLog := &logBuf{}
	agent := exec.Command(agentBin, "--url", "http://"+proxy.ln.Addr().String(), "--data-dir", filepath.Join(t.TempDir(), "agent"),
		"--max-backoff", "1s")
	agent.Env = append(os.Environ(), "HOME="+home, "COURIER_AGENT_TOKEN="+ws.AgentToken, "SHELL=/bin/sh")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })

	sshEnv := func() string {
		t.Helper()
		c := exec.Command(sshBin, "-F", "/dev/null", "-o", "ProxyCommand="+courier+" ssh --stdio %h",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
			"dev", `echo "PAUSED_KEY=${PAUSED_KEY:-unset}"`)
		c.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+t.TempDir())
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("ssh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	applies := func() int { return strings.Count(agentLog.String(), `"msg":"secrets applied"`) }
	// reapply cuts the agent's connection and waits for the next apply to
	// be reported to the control plane.
	reapply := func(wantOutcome string) {
		t.Helper()
		n := applies()
		proxy.cut()
		waitUntil(t, "the apply after the reconnect", func() bool {
			if applies() <= n {
				return false
			}
			st, err := api.AgentStatus(ctx, "dev")
			return err == nil && st.LastApply != nil && len(st.LastApply.Outcomes) == 1 && st.LastApply.Outcomes[0].Outcome == wantOutcome
		})
	}
	paused := filepath.Join(home, ".paused")
	waitUntil(t, "the first apply", func() bool { return read(paused) == valuePaused })
	if got := sshEnv(); got != "PAUSED_KEY="+valuePaused {
		t.Fatalf("enabled secret: ssh sees %q", got)
	}

	// Pause it and change its value: nothing of it reaches the workspace.
	off, on, v2 := false, true, valuePausedV2
	if _, err := api.UpdateSecret(ctx, "me", "paused", client.UpdateSecretRequest{Enabled: &off, Value: &v2}); err != nil {
		t.Fatal(err)
	}
	reapply("disabled")
	if got := sshEnv(); got != "PAUSED_KEY=unset" {
		t.Fatalf("paused secret: ssh sees %q, want it unset", got)
	}
	if got := read(paused); got != valuePaused {
		t.Fatalf("paused secret's file = %q, want the old value left as it was (R7)", got)
	}

	// Enabled again: back, with the value set while it was paused.
	if _, err := api.UpdateSecret(ctx, "me", "paused", client.UpdateSecretRequest{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	reapply("written")
	if got := sshEnv(); got != "PAUSED_KEY="+valuePausedV2 {
		t.Fatalf("enabled again: ssh sees %q", got)
	}
	if got := read(paused); got != valuePausedV2 {
		t.Fatalf("enabled again: file = %q", got)
	}
	for name, log := range map[string]string{"agent": agentLog.String(), "server": serverLog.String()} {
		for _, v := range []string{valuePaused, valuePausedV2} {
			if strings.Contains(log, v) {
				t.Errorf("the %s log contains a secret value", name)
			}
		}
	}
}
