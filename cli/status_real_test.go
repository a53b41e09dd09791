package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane"
)

// runServerAt runs a real control plane on listen with its data in dir
// until the returned stop is called.
func runServerAt(t *testing.T, dir, listen string) (url string, stop func()) {
	t.Helper()
	cfg := controlplane.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.BcryptCost = listen, dir, 4
	srv, err := controlplane.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane Run: %v", err)
		}
		_ = srv.Close()
	}
	t.Cleanup(stop)
	return srv.URL(), stop
}

// runAgent runs the real agent in-process until the test ends.
func runAgent(t *testing.T, url, token, home string) (stop func()) {
	t.Helper()
	return runAgentBackoff(t, url, token, home, 200*time.Millisecond)
}

func runAgentBackoff(t *testing.T, url, token, home string, maxBackoff time.Duration) (stop func()) {
	t.Helper()
	a, err := agent.New(agent.Config{URL: url, Token: token, Home: home, DataDir: filepath.Join(home, ".agent"),
		Shell: "/bin/sh", Base: []string{"PATH=" + os.Getenv("PATH")}, Version: "v0.0.1-cli-test",
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: maxBackoff})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = a.Close()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

func (c *cli) status(workspace string) client.AgentStatus {
	c.t.Helper()
	var st client.AgentStatus
	r := c.ok(nil, "workspaces", "show", workspace, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		c.t.Fatalf("workspaces show -o json = %s: %v", r.stdout, err)
	}
	return st
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkspacesShowRealAgent: `courier workspaces show` against a real
// control plane and a real agent — outcomes, a lost collision, a paused
// secret, a file left behind — and again after the control plane
// restarted on the same data. No value in any output.
func TestWorkspacesShowRealAgent(t *testing.T) {
	dir := t.TempDir()
	url, stopServer := runServerAt(t, dir, "127.0.0.1:0")
	admin := newCLI(t, "")
	c, _ := client.New(client.Config{URL: url})
	if _, err := c.CreateFirstUser(context.Background(), client.CreateUserRequest{Username: "admin",
		Email: "admin@example.com", Password: adminPassword}); err != nil {
		t.Fatal(err)
	}
	admin.ok(str(adminPassword+"\n"), "login", url, "--username", "admin", "--password-stdin")
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	tmpl := filepath.Join(admin.home, "t.yaml")
	if err := os.WriteFile(tmpl, []byte("env: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var created client.CreatedWorkspace
	r := admin.ok(nil, "workspaces", "create", "dev", "--owner", "alice", "--template", tmpl, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatal(err)
	}

	alice := newCLI(t, "")
	alice.ok(str("alice-password-1\n"), "login", url, "--username", "alice", "--password-stdin")
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.all()); return r }
	home := t.TempDir()
	keep(alice.ok(str(canary), "secret", "create", "tok", "--env", "TOK", "--file", "~/.tok"))
	keep(alice.ok(str(canary), "secret", "create", "a-old", "--file", "~/same"))
	keep(alice.ok(str(canary), "secret", "create", "b-new", "--file", home+"/same"))
	r = keep(alice.ok(str(canary), "secret", "create", "paused", "--file", "~/paused", "--enabled=false"))
	if !strings.Contains(r.stdout, "paused") {
		t.Errorf("create --enabled=false says %q", r.stdout)
	}

	// Before any agent: the table says so.
	r = keep(alice.ok(nil, "workspaces", "show", "dev"))
	if !strings.Contains(r.stdout, "never connected") || !strings.Contains(r.stdout, "none yet") {
		t.Errorf("show before the agent:\n%s", r.stdout)
	}
	stopAgent := runAgent(t, url, created.AgentToken, home)
	waitUntil(t, "the first apply", func() bool { return alice.status("dev").LastApply != nil })
	keep(alice.ok(nil, "secret", "update", "tok", "--file", "~/.tok2"))
	stopAgent()
	runAgent(t, url, created.AgentToken, home)
	waitUntil(t, "the second apply, ready", func() bool {
		st := alice.status("dev")
		return st.State == "ready" && st.Connected && st.LastApply != nil && len(st.LastApply.LeftBehind) == 1
	})
	r = keep(alice.ok(nil, "workspaces", "show", "dev"))
	checkShowTable(t, r.stdout, home)
	if strings.Contains(r.stdout, "changes pending") {
		t.Errorf("changes pending right after an apply:\n%s", r.stdout)
	}
	t.Logf("courier workspaces show dev:\n%s", r.stdout)

	// The control plane restarts on the same data and port: the status is
	// still there, and the agent comes back by itself.
	addr := strings.TrimPrefix(url, "http://")
	stopServer()
	url2, _ := runServerAt(t, dir, addr)
	st := alice.status("dev")
	if st.LastApply == nil || len(st.LastApply.Outcomes) != 4 || st.LastApply.LeftBehind[0] != filepath.Join(home, ".tok") {
		t.Fatalf("status after restart = %+v", st)
	}
	waitUntil(t, "the agent back after the restart", func() bool { return alice.status("dev").Connected })
	r = keep(alice.ok(nil, "workspaces", "show", "dev"))
	checkShowTable(t, r.stdout, home)
	keep(alice.ok(nil, "workspaces", "show", "dev", "-o", "json"))

	// The ENABLED column, the field in -o json, and --enabled alone as an
	// update.
	r = keep(alice.ok(nil, "secret", "list"))
	if !strings.Contains(r.stdout, "ENABLED") || !strings.Contains(r.stdout, "no") {
		t.Errorf("secret list:\n%s", r.stdout)
	}
	var list []client.Secret
	r = keep(alice.ok(nil, "secret", "list", "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 4 || list[2].Name != "paused" || list[2].Enabled || !list[3].Enabled {
		t.Errorf("secret list -o json = %s (%v)", r.stdout, err)
	}
	if !strings.Contains(r.stdout, `"enabled": false`) {
		t.Errorf("-o json lacks the enabled field: %s", r.stdout)
	}
	r = keep(alice.ok(nil, "secret", "update", "paused", "--enabled"))
	if !strings.Contains(r.stdout, "enabled") {
		t.Errorf("update --enabled says %q", r.stdout)
	}
	r = keep(alice.ok(nil, "secret", "update", "tok", "--enabled=false"))
	if !strings.Contains(r.stdout, "paused") {
		t.Errorf("update --enabled=false says %q", r.stdout)
	}
	// Those changes came after the agent's last apply: pending until it
	// applies again (it is not in live mode).
	r = keep(alice.ok(nil, "workspaces", "show", "dev"))
	if !strings.Contains(r.stdout, "changes pending") || !alice.status("dev").ChangesPending {
		t.Errorf("show after changes lacks changes pending:\n%s", r.stdout)
	}

	// A second agent with the same token: the table shows the replacement.
	runAgentBackoff(t, url2, created.AgentToken, t.TempDir(), time.Hour)
	waitUntil(t, "the replacement", func() bool { return alice.status("dev").ReplacedAt != nil })
	r = keep(alice.ok(nil, "workspaces", "show", "dev"))
	for _, want := range []string{"Replaced", "Warnings:", "another agent connected with this workspace's token"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show after a replacement lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := alice.run(nil, "workspaces", "show", "nope"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("show of a missing workspace: exit %d, %q", r.code, r.stderr)
	}
	for _, out := range outputs {
		if strings.Contains(out, canary) {
			t.Fatalf("canary leaked:\n%s", out)
		}
	}
}

func checkShowTable(t *testing.T, out, home string) {
	t.Helper()
	for _, want := range []string{
		"alice/dev", "ready", "connected since", "v0.0.1-cli-test",
		"SECRET", "OUTCOME",
		"lost_collision", "lost to b-new", "disabled", "paused", "written", "TOK", home + "/.tok2",
		"Left behind", home + "/.tok\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("workspaces show lacks %q:\n%s", want, out)
		}
	}
}
