package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/client"
)

// TestRequiredAndScopedSecretsRealAgent walks the README's "required
// secrets" step against a real control plane and a real agent: a template
// asking for NPM_TOKEN is refused (listing it with its description and
// link) until --allow-missing-secrets; the agent waits; the owner creates
// the secret scoped to the workspace; with live files the startup script
// runs at once. Bad templates and bad --workspace values are clear
// errors. No value in any output.
func TestRequiredAndScopedSecretsRealAgent(t *testing.T) {
	url, _ := runServerAt(t, t.TempDir(), "127.0.0.1:0")
	admin := newCLI(t, "")
	c, _ := client.New(client.Config{URL: url})
	if _, err := c.CreateFirstUser(context.Background(), client.CreateUserRequest{Username: "admin",
		Email: "admin@example.com", Password: adminPassword}); err != nil {
		t.Fatal(err)
	}
	admin.ok(str(adminPassword+"\n"), "login", url, "--username", "admin", "--password-stdin")
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	write := func(name, body string) string {
		p := filepath.Join(admin.home, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.all()); return r }

	// Bad templates: each a clear error, nothing created.
	for _, tc := range []struct{ name, body, want string }{
		{"unknown.yaml", "secrets:\n  - env: A\n    requried: true\n", "requried"},
		{"docs.yaml", "secrets:\n  - env: A\n    docs_url: javascript:alert(1)\n", "docs_url"},
		{"mode.yaml", "on_missing_secrets: later\n", "on_missing_secrets"},
		{"unknown.json", `{"secrets":[{"env":"A","why":"x"}]}`, "why"},
	} {
		r := keep(admin.run(nil, "workspaces", "create", "bad", "--owner", "alice", "--template", write(tc.name, tc.body)))
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("template %s: exit %d, stderr %q, want an error naming %q", tc.name, r.code, r.stderr, tc.want)
		}
	}

	tmpl := write("t.yaml", `live_files: true
scripts:
  - name: install
    script: echo "token=$NPM_TOKEN" > ~/installed
secrets:
  - env: NPM_TOKEN
    description: Token for the private npm registry
    docs_url: https://wiki.example.com/npm-token
    required: true
  - file: ~/.sentryclirc
    description: optional
`)
	r := keep(admin.run(nil, "workspaces", "create", "dev", "--owner", "alice", "--template", tmpl))
	for _, want := range []string{"NPM_TOKEN", "missing", "Token for the private npm registry", "https://wiki.example.com/npm-token", "--allow-missing-secrets"} {
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("create without the secret: exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
		}
	}
	var created client.CreatedWorkspace
	r = keep(admin.ok(nil, "workspaces", "create", "dev", "--owner", "alice", "--template", tmpl, "--allow-missing-secrets", "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || len(created.SecretRequirements) != 2 ||
		created.SecretRequirements[0].Status != client.RequirementMissing {
		t.Fatalf("create --allow-missing-secrets = %s (%v)", r.stdout, err)
	}

	alice := newCLI(t, "")
	alice.ok(str("alice-password-1\n"), "login", url, "--username", "alice", "--password-stdin")
	home := t.TempDir()
	runAgent(t, url, created.AgentToken, home)
	waitUntil(t, "waiting_for_secrets", func() bool { return alice.status("dev").State == "waiting_for_secrets" })
	if _, err := os.Stat(filepath.Join(home, "installed")); err == nil {
		t.Fatal("the startup script ran while NPM_TOKEN was missing")
	}
	r = keep(alice.ok(nil, "workspaces", "show", "dev"))
	if !strings.Contains(r.stdout, "REQUIRED SECRET") || !strings.Contains(r.stdout, "waiting_for_secrets") {
		t.Errorf("show while waiting:\n%s", r.stdout)
	}

	// Bad --workspace values are refused before any value is read.
	for _, args := range [][]string{
		{"--workspace", "web-["},
		{"--workspace", "", "--workspace", "dev"},
		{"--workspace", "alice/dev"},
	} {
		r := keep(alice.run(str(canary), append([]string{"secret", "create", "x", "--env", "X"}, args...)...))
		if r.code == 0 || !strings.Contains(r.stderr, "workspace") {
			t.Errorf("secret create %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	// Scoped to another workspace, it does not count; scoped to dev, it
	// does, and the live agent starts the scripts.
	r = keep(alice.ok(str(canary), "secret", "create", "npm", "--env", "NPM_TOKEN", "--workspace", "web-*"))
	if !strings.Contains(r.stdout, "only in workspaces web-*") {
		t.Errorf("create --workspace says %q", r.stdout)
	}
	if st := alice.status("dev"); st.SecretRequirements[0].Status != client.RequirementMissing {
		t.Fatalf("a secret scoped to web-* met dev's requirement: %+v", st.SecretRequirements)
	}
	keep(alice.ok(nil, "secret", "update", "npm", "--workspace", "dev", "--workspace", "web-*"))
	waitUntil(t, "the startup script", func() bool { b, _ := os.ReadFile(filepath.Join(home, "installed")); return len(b) > 0 })
	if b, _ := os.ReadFile(filepath.Join(home, "installed")); string(b) != "token="+canary+"\n" {
		t.Fatalf("the script saw %q", b)
	}
	waitUntil(t, "ready", func() bool { return alice.status("dev").State == "ready" })
	r = keep(alice.ok(nil, "workspaces", "show", "dev"))
	if !strings.Contains(r.stdout, "NPM_TOKEN") || !strings.Contains(r.stdout, "met") {
		t.Errorf("show when ready:\n%s", r.stdout)
	}
	r = keep(alice.ok(nil, "secret", "list"))
	if !strings.Contains(r.stdout, "WORKSPACES") || !strings.Contains(r.stdout, "dev,web-*") {
		t.Errorf("secret list:\n%s", r.stdout)
	}
	if r = keep(alice.ok(nil, "secret", "list", "--workspace", "api")); strings.Contains(r.stdout, "npm") {
		t.Errorf("secret list --workspace api lists npm (scoped to dev, web-*):\n%s", r.all())
	}
	if r = keep(alice.ok(nil, "secret", "list", "--workspace", "web-2")); !strings.Contains(r.stdout, "npm") {
		t.Errorf("secret list --workspace web-2 lacks npm:\n%s", r.stdout)
	}
	// An overlapping scope on the same env name is refused, naming npm; a
	// disjoint one is accepted.
	r = keep(alice.run(str(canary), "secret", "create", "other", "--env", "NPM_TOKEN", "--workspace", "dev"))
	if r.code == 0 || !strings.Contains(r.stderr, `secret "npm"`) || !strings.Contains(r.stderr, "overlap") {
		t.Errorf("overlapping scope: exit %d, stderr %q", r.code, r.stderr)
	}
	keep(alice.ok(str(canary), "secret", "create", "other", "--env", "NPM_TOKEN", "--workspace", "api"))
	keep(alice.ok(nil, "secret", "delete", "other", "--yes"))
	// --workspace "" resets the scope to every workspace.
	keep(alice.ok(nil, "secret", "update", "npm", "--workspace", ""))
	var list []client.Secret
	r = keep(alice.ok(nil, "secret", "list", "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].Workspaces != nil {
		t.Fatalf("after --workspace \"\": %s (%v)", r.stdout, err)
	}
	for _, out := range outputs {
		if strings.Contains(out, canary) {
			t.Fatalf("the value leaked into CLI output: %q", out)
		}
	}
}
