//go:build linux

package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// The boot recipes and the agent's own prerequisites, as the workspace
// user.

// TestEntrypointAsWorkspaceUser: the container entrypoint, run as the
// workspace user (the Dockerfile's USER), starts the agent with a 0600
// token file the user owns and stops it cleanly on SIGTERM.
func TestEntrypointAsWorkspaceUser(t *testing.T) {
	u := ensureWsUser(t)
	base, mk := wsBase(t, u)
	bin := filepath.Join(base, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	entry := filepath.Join(bin, "courier-entrypoint")
	src, err := os.ReadFile("boot/entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entry, src, 0o755); err != nil {
		t.Fatal(err)
	}
	home, etc := mk("home"), mk("etc")
	ctx := context.Background()
	addr, _ := startServer(t, courier)
	url := "http://" + addr
	anon, _ := client.New(client.Config{URL: url})
	_, _ = anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: "ops", Email: "ops@x.test", Password: "password-1"})
	tok, err := anon.Login(ctx, client.LoginRequest{Username: "ops", Password: "password-1"})
	if err != nil {
		t.Fatal(err)
	}
	api := anon.WithToken(tok)
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "img", Owner: "ops", Template: client.Template{
		Scripts: []client.Script{{Name: "who", TimeoutSeconds: 30, Script: `id -u > ~/who`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "f", Value: valueUnprivFile, FilePath: "~/.config/f"}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(etc, "agent-token")
	wsFile(t, tokenFile, ws.AgentToken+"\n", u.uid, u.gid, 0o600)

	// No --data-dir: the default, under the user's home, must work.
	c, log := wsProcess(u, home, "/bin/sh", entry)
	c.Env = append(c.Env, "PATH="+bin+":/usr/bin:/bin", "COURIER_AGENT_URL="+url, "COURIER_AGENT_TOKEN_FILE="+tokenFile)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() { _ = c.Process.Kill() })
	waitUntil(t, "the agent to report ready", func() bool {
		w, err := api.Workspace(ctx, "img")
		return err == nil && w.State == "ready"
	})
	if got := strings.TrimSpace(read(filepath.Join(home, "who"))); got != strconv.Itoa(u.uid) {
		t.Errorf("the startup script ran as uid %q, want %d", got, u.uid)
	}
	if st, err := os.Stat(filepath.Join(home, ".config", "f")); err != nil || st.Mode().Perm() != 0o600 ||
		st.Sys().(*syscall.Stat_t).Uid != uint32(u.uid) {
		t.Errorf("file secret: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "state", "courier-agent")); err != nil {
		t.Errorf("the default data dir was not created under the user's home: %v", err)
	}
	stopAgent(t, c, done, log)
}

// TestBootRecipesRunAsWorkspaceUser: every boot recipe starts the agent as
// the workspace user, never as root.
func TestBootRecipesRunAsWorkspaceUser(t *testing.T) {
	for file, directive := range map[string]string{
		"boot/courier-agent.service": "User=", "boot/cloud-init.yaml": "User=", "boot/Dockerfile": "USER ",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, directive) {
				users = append(users, strings.TrimSpace(strings.TrimPrefix(l, directive)))
			}
		}
		if len(users) != 1 || users[0] == "" || users[0] == "root" || users[0] == "0" {
			t.Errorf("%s: %s%v, want exactly one, naming the workspace user", file, directive, users)
		}
	}
}

// TestAgentAsWorkspaceUserRefusesWhatItCannotUse: a token file or a data
// dir the user may not use stops the agent at once with one error naming
// the path and the permission; it never retries as someone else.
func TestAgentAsWorkspaceUserRefusesWhatItCannotUse(t *testing.T) {
	u := ensureWsUser(t)
	base, mk := wsBase(t, u)
	bin := filepath.Join(base, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	home, data := mk("home"), mk("data")
	rootOnly := filepath.Join(base, "root-only")
	if err := os.Mkdir(rootOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	rootToken := filepath.Join(rootOnly, "agent-token")
	wsFile(t, rootToken, "canary-token-5e1f\n", 0, 0, 0o600)
	userToken := filepath.Join(home, "agent-token")
	wsFile(t, userToken, "canary-token-5e1f\n", u.uid, u.gid, 0o600)
	for name, c := range map[string]struct{ token, data, path string }{
		"token file":   {rootToken, data, rootToken},
		"data dir":     {userToken, filepath.Join(rootOnly, "data"), filepath.Join(rootOnly, "data")},
		"data dir own": {userToken, rootOnly, rootOnly},
	} {
		cmd, log := wsProcess(u, home, agentBin, "--url", "http://127.0.0.1:1", "--token-file", c.token, "--data-dir", c.data)
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			out := log.String()
			if err == nil || !strings.Contains(out, c.path) || !strings.Contains(out, "permission denied") {
				t.Errorf("%s: exit %v, output %q: want a failure naming %s and the permission", name, err, out, c.path)
			}
			if strings.Contains(out, "canary-token-5e1f") {
				t.Errorf("%s: the output holds the token", name)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s: the agent kept running", name)
		}
	}
}
