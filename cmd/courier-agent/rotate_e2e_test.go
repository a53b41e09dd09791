package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// TestRotateTokenFileEndToEnd: the real binaries. An agent reading its
// token from a file is disconnected by `courier workspaces rotate-token`,
// logs the refusal once (its retries at debug level) while the token file
// still holds the old token, and picks the new one up from the file
// without a restart, applying a change made meanwhile; a second rotation
// with --token-file writes the file itself and the agent follows on its
// own. No token is in any log or output.
func TestRotateTokenFileEndToEnd(t *testing.T) {
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()
	addr, serverLog := startServer(t, courier)
	url := "http://" + addr
	api, session := firstUser(t, url, "dev", "dev@e2e.test", "correct-horse")
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "tok", Value: "v1", FilePath: "~/tok"}); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "agent-token")
	if err := os.WriteFile(tokenFile, []byte(ws.AgentToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agentLog := &logBuf{}
	agent := exec.Command(agentBin, "--url", url, "--token-file", tokenFile, "--data-dir", filepath.Join(t.TempDir(), "agent"),
		"--max-backoff", "500ms", "--log-level", "debug")
	agent.Env = append(os.Environ(), "HOME="+home, "SHELL=/bin/sh")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	waitUntil(t, "the first apply", func() bool { return read(filepath.Join(home, "tok")) == "v1" })

	cli := func(args ...string) string {
		t.Helper()
		c := exec.Command(courier, args...)
		c.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+session, "COURIER_CONFIG_DIR="+t.TempDir())
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("courier %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var outputs []string

	// Rotated, printed, the file not yet written: refused, logged once.
	out := cli("workspaces", "rotate-token", "dev")
	outputs = append(outputs, out)
	m := regexp.MustCompile(`New agent token \(shown once\): (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("rotate-token printed %q", out)
	}
	second := m[1]
	rotated := time.Now()
	refused := `"msg":"the control plane refused the agent token`
	waitUntil(t, "the agent's refusal", func() bool { return strings.Contains(agentLog.String(), refused) })
	t.Logf("the agent logged its refusal %v after the rotation", time.Since(rotated))
	waitUntil(t, "two quiet retries", func() bool { return strings.Count(agentLog.String(), "the agent token is still refused") >= 2 })
	if n := strings.Count(agentLog.String(), refused); n != 1 {
		t.Fatalf("the refusal is logged %d times, want once:\n%s", n, agentLog.String())
	}
	if _, err := api.UpdateSecret(ctx, "me", "tok", client.UpdateSecretRequest{Value: ptr("v2")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile+".new", []byte(second+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tokenFile+".new", tokenFile); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reconnect with the new token and its apply", func() bool { return read(filepath.Join(home, "tok")) == "v2" })

	// Rotated straight into the file: the agent follows by itself.
	out = cli("workspaces", "rotate-token", "dev", "--token-file", tokenFile)
	outputs = append(outputs, out)
	third := strings.TrimSpace(read(tokenFile))
	if third == second || len(third) < 43 || strings.Contains(out, third) {
		t.Fatalf("rotate-token --token-file: file %d chars, output %q", len(third), out)
	}
	if _, err := api.UpdateSecret(ctx, "me", "tok", client.UpdateSecretRequest{Value: ptr("v3")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the agent back with the third token", func() bool { return read(filepath.Join(home, "tok")) == "v3" })
	if n := strings.Count(agentLog.String(), "read a new agent token from the token file"); n != 2 {
		t.Errorf("the agent said %d times it read a new token, want 2", n)
	}
	if agent.ProcessState != nil {
		t.Fatal("the agent exited")
	}
	for _, tok := range []string{ws.AgentToken, second, third} {
		for name, text := range map[string]string{"agent log": agentLog.String(), "server log": serverLog.String(),
			"CLI output": strings.Join(outputs[1:], "\n")} {
			if strings.Contains(text, tok) {
				t.Errorf("an agent token is in the %s", name)
			}
		}
	}
}

func ptr(s string) *string { return &s }
