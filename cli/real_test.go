package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane"
	"github.com/courierhq/courier/controlplane/store"
)

// realServer is the real control plane, in-process on a loopback port with
// an unencrypted SQLite store (so a stored value is the raw value), plus a
// second handle on the same database to read what was stored.
type realServer struct {
	url   string
	store store.Store
	dir   string // the data dir
}

const adminPassword = "admin-password-123"

func startRealServer(t *testing.T) *realServer {
	t.Helper()
	cfg := controlplane.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BcryptCost = 4
	srv, err := controlplane.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane Run: %v", err)
		}
		_ = srv.Close()
	})
	st, err := store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, controlplane.DBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c, err := client.New(client.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFirstUser(ctx, client.CreateUserRequest{
		Username: "admin", Email: "admin@example.com", Password: adminPassword,
	}); err != nil {
		t.Fatal(err)
	}
	return &realServer{url: srv.URL(), store: st, dir: cfg.DataDir}
}

// value reads the stored value of user's secret name straight from the store.
func (s *realServer) value(t *testing.T, username, name string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := s.store.UserByUsername(ctx, username)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.store.GetSecret(ctx, u.ID, name)
	if err != nil {
		return "", false
	}
	return string(sec.Value), true
}

func TestRealControlPlane(t *testing.T) {
	srv := startRealServer(t)
	admin := newCLI(t, "")
	admin.ok(str(adminPassword+"\n"), "login", srv.url, "--username", "admin", "--password-stdin")
	if fi, err := os.Stat(filepath.Join(admin.cfg, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v", err, fi)
	}

	// Admin commands: a user and a workspace.
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	tmpl := filepath.Join(admin.home, "t.yaml")
	if err := os.WriteFile(tmpl, []byte("env:\n  GREETING: hi\nscripts:\n  - name: s\n    script: echo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := admin.ok(nil, "workspaces", "create", "dev", "--owner", "alice", "--template", tmpl, "-o", "json")
	var ws map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil || ws["agent_token"] == "" || ws["owner_name"] != "alice" {
		t.Fatalf("workspace create -o json = %s (%v)", r.stdout, err)
	}
	if r := admin.ok(nil, "workspaces", "list"); !strings.Contains(r.stdout, "dev") {
		t.Errorf("workspaces list = %q", r.stdout)
	}

	alice := newCLI(t, "")
	alice.ok(str("alice-password-1\n"), "login", srv.url, "--username", "alice", "--password-stdin")
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.all()); return r }

	// Round trip with a trailing newline kept verbatim.
	r = keep(alice.ok(str(canary+"\n"), "secret", "create", "api-key", "--env", "API_KEY", "--file", "~/.api-key", "--description", "d"))
	if !strings.Contains(r.stderr, "warning") {
		t.Errorf("no newline warning: %q", r.stderr)
	}
	if v, _ := srv.value(t, "alice", "api-key"); v != canary+"\n" {
		t.Fatalf("stored %q, want the canary and its newline", v)
	}
	r = keep(alice.ok(nil, "secret", "list", "-o", "json"))
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0]["env_name"] != "API_KEY" {
		t.Fatalf("list -o json = %s (%v)", r.stdout, err)
	}
	keep(alice.ok(nil, "secret", "update", "api-key", "--env", ""))
	r = keep(alice.ok(nil, "secret", "list", "api-key", "-o", "json"))
	var one map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || one["env_name"] != "" || one["file_path"] != "~/.api-key" {
		t.Errorf("after --env \"\": %s (%v)", r.stdout, err)
	}
	keep(alice.ok(str(canary+"-2"), "secret", "update", "api-key"))
	if v, _ := srv.value(t, "alice", "api-key"); v != canary+"-2" {
		t.Errorf("value after update = %q", v)
	}

	// Server errors: non-zero exit, the server's message and field details.
	for _, tc := range []struct {
		name  string
		stdin *string
		args  []string
		want  string
	}{
		{"duplicate", str(canary), []string{"secret", "create", "api-key"}, "api-key"},
		{"missing", nil, []string{"secret", "update", "ghost", "--description", "x"}, "not found"},
		{"too large", str(strings.Repeat("x", 25*1024)), []string{"secret", "create", "big"}, "value"},
		{"admin only", nil, []string{"users", "list"}, "admin"},
		{"bad import", str("A=1\nPATH=2\n"), []string{"secret", "import", "-", "--format", "env"}, "env_name"},
	} {
		r := keep(alice.run(tc.stdin, tc.args...))
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q (want %q)", tc.name, r.code, r.stderr, tc.want)
		}
	}
	if _, ok := srv.value(t, "alice", "A"); ok {
		t.Error("a failed import created a secret")
	}

	// Import, all or nothing, through the batch endpoint.
	envFile := filepath.Join(alice.home, "x.env")
	if err := os.WriteFile(envFile, []byte("ONE="+canary+"\nTWO=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keep(alice.ok(nil, "secret", "import", envFile))
	if v, _ := srv.value(t, "alice", "ONE"); v != canary {
		t.Errorf("imported ONE = %q", v)
	}

	keep(alice.ok(nil, "secret", "delete", "api-key", "--yes"))
	if _, ok := srv.value(t, "alice", "api-key"); ok {
		t.Error("still stored after delete")
	}
	keep(alice.ok(nil, "logout"))
	if r := alice.run(nil, "whoami"); r.code == 0 {
		t.Error("whoami works after logout")
	}
	for _, out := range outputs {
		if strings.Contains(out, canary) {
			t.Fatalf("canary leaked:\n%s", out)
		}
	}
}
