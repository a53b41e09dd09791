package main_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/client"
)

// Agents told when a secret changed, end to end: a real control plane
// process, a real agent process behind a cuttable proxy, the change made
// through the REST API, and the workspace seen through OpenSSH, the file on
// disk and an app that wrote its env to a file when it started.

const (
	liveV1 = "e2e-canary-live-v1-3b7c"
	liveV2 = "e2e-canary-live-v2-8d2e"

	pendingLine = "secrets changed on the control plane; they will be applied at the agent's next start or reconnect"
	liveLine    = "secrets changed on the control plane; re-applying now (live files)"
)

// changesEnv is one control plane, one workspace whose app records its env
// at start, one secret (env LIVE_VAL, file ~/.config/live/value) at liveV1,
// and a running agent.
type changesEnv struct {
	t                   *testing.T
	api                 *client.Client
	home, url, session  string
	courier, ssh        string
	proxy               *cutProxy
	agentLog, serverLog *logBuf
}

func startChangesEnv(t *testing.T, courier, agentBin, sshBin string, agentEnv ...string) *changesEnv {
	t.Helper()
	ctx := context.Background()
	addr, serverLog := startServer(t, courier)
	e := &changesEnv{t: t, url: "http://" + addr, courier: courier, ssh: sshBin, serverLog: serverLog, home: t.TempDir()}
	e.api, e.session = firstUser(t, e.url, "dev", "dev@e2e.test", "correct-horse")
	ws, err := e.api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev", Template: client.Template{
		Apps: []client.App{{Slug: "recorder", Command: `echo "$LIVE_VAL" > ~/app-env.tmp && mv ~/app-env.tmp ~/app-env; while true; do sleep 1; done`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "live", Value: liveV1, EnvName: "LIVE_VAL",
		FilePath: "~/.config/live/value"}); err != nil {
		t.Fatal(err)
	}
	e.proxy = newCutProxy(t, addr)
	e.agentLog = &logBuf{}
	agent := exec.Command(agentBin, "--url", "http://"+e.proxy.ln.Addr().String(), "--data-dir", filepath.Join(t.TempDir(), "agent"),
		"--max-backoff", "1s")
	agent.Env = append(append(os.Environ(), "HOME="+e.home, "COURIER_AGENT_TOKEN="+ws.AgentToken, "SHELL=/bin/sh"), agentEnv...)
	agent.Stdout, agent.Stderr = e.agentLog, e.agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	waitUntil(t, "the first apply and the app", func() bool {
		return e.file() == liveV1 && read(filepath.Join(e.home, "app-env")) == liveV1+"\n"
	})
	waitUntil(t, "the first apply to be reported", func() bool { st := e.status(); return st.LastApply != nil })
	return e
}

func (e *changesEnv) file() string { return read(filepath.Join(e.home, ".config", "live", "value")) }

func (e *changesEnv) status() client.AgentStatus {
	e.t.Helper()
	st, err := e.api.AgentStatus(context.Background(), "dev")
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// sshEnv runs cmd in a new SSH session through the real OpenSSH client.
func (e *changesEnv) sshEnv(cmd string) string {
	e.t.Helper()
	c := exec.Command(e.ssh, "-F", "/dev/null", "-o", "ProxyCommand="+e.courier+" ssh --stdio %h",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
		"dev", cmd)
	c.Env = append(os.Environ(), "COURIER_URL="+e.url, "COURIER_SESSION_TOKEN="+e.session, "COURIER_CONFIG_DIR="+e.t.TempDir())
	out, err := c.CombinedOutput()
	if err != nil {
		e.t.Fatalf("ssh %q: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func (e *changesEnv) change(value string) {
	e.t.Helper()
	if _, err := e.api.UpdateSecret(context.Background(), "me", "live", client.UpdateSecretRequest{Value: &value}); err != nil {
		e.t.Fatal(err)
	}
}

// noCanaries checks the logs and the status for the values.
func (e *changesEnv) noCanaries() {
	e.t.Helper()
	st, _ := json.Marshal(e.status())
	for name, text := range map[string]string{"agent log": e.agentLog.String(), "server log": e.serverLog.String(), "agent status": string(st)} {
		for _, v := range []string{liveV1, liveV2} {
			if strings.Contains(text, v) {
				e.t.Errorf("the %s contains a secret value", name)
			}
		}
	}
	if e.t.Failed() {
		e.t.Log("agent log:\n" + e.agentLog.String())
	}
}

func buildChanges(t *testing.T) (courier, agentBin, sshBin string) {
	t.Helper()
	sshBin = need(t, "ssh")
	bin := t.TempDir()
	return build(t, bin, "github.com/courierhq/courier/cmd/courier"), build(t, bin, "github.com/courierhq/courier/cmd/courier-agent"), sshBin
}

// TestSecretChangeDefaultMode: a change through the REST API reaches the
// running agent, which logs once that it is pending and changes nothing on
// disk or in new sessions (R3); the status shows changes pending until a
// reconnect applies it.
func TestSecretChangeDefaultMode(t *testing.T) {
	courier, agentBin, sshBin := buildChanges(t)
	e := startChangesEnv(t, courier, agentBin, sshBin)
	e.change(liveV2)
	waitUntil(t, "the agent's pending log line", func() bool { return strings.Contains(e.agentLog.String(), pendingLine) })
	if st := e.status(); !st.ChangesPending || st.LastApply.LiveFiles {
		t.Fatalf("status after a change: changes_pending=%t (revision %d), live_files=%t", st.ChangesPending, st.SecretsRevision,
			st.LastApply.LiveFiles)
	}
	if got := e.file(); got != liveV1 {
		t.Fatalf("the file was rewritten without live files (now %d bytes)", len(got))
	}
	if got := e.sshEnv(`echo "$LIVE_VAL"`); got != liveV1+"\n" {
		t.Fatal("a new SSH session got the changed env before any apply")
	}

	// The reconnect applies it and clears the status.
	e.proxy.cut()
	waitUntil(t, "the reconnect's apply", func() bool { return e.file() == liveV2 })
	waitUntil(t, "changes pending to clear", func() bool { return !e.status().ChangesPending })
	if got := e.sshEnv(`echo "$LIVE_VAL"`); got != liveV2+"\n" {
		t.Fatal("a new SSH session after the reconnect lacks the new env")
	}
	if got := read(filepath.Join(e.home, "app-env")); got != liveV1+"\n" {
		t.Error("the running app's env changed (R4)")
	}
	if n := strings.Count(e.agentLog.String(), pendingLine); n != 1 {
		t.Errorf("%d pending log lines, want 1", n)
	}
	e.noCanaries()
}

// TestSecretChangeLiveFiles: with COURIER_AGENT_LIVE_FILES the file on disk
// changes soon after the REST call, a new SSH session sees the new env, the
// running app keeps the env it started with (R4), and the status clears by
// itself.
func TestSecretChangeLiveFiles(t *testing.T) {
	courier, agentBin, sshBin := buildChanges(t)
	e := startChangesEnv(t, courier, agentBin, sshBin, "COURIER_AGENT_LIVE_FILES=true")
	e.change(liveV2)
	waitUntil(t, "the file to change", func() bool { return e.file() == liveV2 })
	waitUntil(t, "the status to show the change applied", func() bool {
		st := e.status()
		return !st.ChangesPending && st.LastApply != nil && st.LastApply.SecretsRevision == st.SecretsRevision
	})
	if !e.status().LastApply.LiveFiles {
		t.Error("the apply report does not say live files are on")
	}
	if got := e.sshEnv(`echo "$LIVE_VAL"`); got != liveV2+"\n" {
		t.Fatal("a new SSH session after the live re-apply lacks the new env")
	}
	if got := read(filepath.Join(e.home, "app-env")); got != liveV1+"\n" {
		t.Error("the running app's env changed (R4)")
	}
	if !strings.Contains(e.agentLog.String(), liveLine) || strings.Contains(e.agentLog.String(), pendingLine) {
		t.Error("the agent did not log a live re-apply, or logged 'pending'")
	}
	if n := strings.Count(e.agentLog.String(), "connected to the control plane"); n != 1 {
		t.Errorf("%d connections: the live re-apply must not need a reconnect", n)
	}
	e.noCanaries()
}

// TestLiveFilesEnvMustBeBoolean: a misspelt COURIER_AGENT_LIVE_FILES stops
// the agent with a clear error instead of silently running in one mode.
func TestLiveFilesEnvMustBeBoolean(t *testing.T) {
	agentBin := build(t, t.TempDir(), "github.com/courierhq/courier/cmd/courier-agent")
	cmd := exec.Command(agentBin, "--url", "http://127.0.0.1:1")
	cmd.Env = append(os.Environ(), "COURIER_AGENT_LIVE_FILES=sometimes", "COURIER_AGENT_TOKEN=x")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "COURIER_AGENT_LIVE_FILES") || !strings.Contains(string(out), "true or false") {
		t.Fatalf("agent with COURIER_AGENT_LIVE_FILES=sometimes: %v\n%s", err, out)
	}
}
