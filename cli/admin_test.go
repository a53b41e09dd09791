package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsersAndWorkspaces(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)

	r := c.ok(str("pw-bob\n"), "users", "create", "bob", "--email", "bob@example.com", "--password-stdin")
	if !strings.Contains(r.stdout, "bob") || strings.Contains(r.all(), "pw-bob") {
		t.Errorf("users create output %q", r.all())
	}
	if r := c.run(nil, "users", "create", "carol", "--email", "c@example.com"); r.code == 0 || !strings.Contains(r.stderr, "--password-stdin") {
		t.Errorf("password prompt off a terminal: exit %d, %q", r.code, r.stderr)
	}
	r = c.ok(nil, "users", "list", "-o", "json")
	var users []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &users); err != nil || len(users) != 2 {
		t.Errorf("users list = %s (%v)", r.stdout, err)
	}

	tmpl := filepath.Join(c.home, "template.yaml")
	if err := os.WriteFile(tmpl, []byte("env:\n  GREETING: hello\nscripts:\n  - name: s\n    script: echo hi\n    timeout_seconds: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = c.ok(nil, "workspaces", "create", "dev", "--owner", "bob", "--template", tmpl)
	if !strings.Contains(r.stdout, "agent-token-dev") || !strings.Contains(r.stderr, "cannot show it again") {
		t.Errorf("workspace create: %q / %q", r.stdout, r.stderr)
	}
	if srv.lastEnv["GREETING"] != "hello" {
		t.Errorf("template env not sent: %v", srv.lastEnv)
	}
	if r := c.ok(nil, "workspaces", "list"); !strings.Contains(r.stdout, "dev") || !strings.Contains(r.stdout, "ready") {
		t.Errorf("workspaces list = %q", r.stdout)
	}

	bad := filepath.Join(c.home, "bad.yaml")
	if err := os.WriteFile(bad, []byte("scripst: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.run(nil, "workspaces", "create", "x", "--owner", "bob", "--template", bad); r.code == 0 || !strings.Contains(r.stderr, "scripst") {
		t.Errorf("typo in template: exit %d, %q", r.code, r.stderr)
	}
}

func TestSecretImport(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	env := filepath.Join(c.home, "prod.env")
	if err := os.WriteFile(env, []byte("ONE="+canary+"\nTWO=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.ok(nil, "secret", "import", env)
	if v, _ := srv.value("ONE"); v != canary {
		t.Errorf("ONE = %q", v)
	}
	if !strings.Contains(r.stdout, "TWO") || strings.Contains(r.all(), canary) {
		t.Errorf("import output %q", r.all())
	}
	// All or nothing: one bad line, nothing created.
	r = c.run(str("THREE=3\nPATH=x\n"), "secret", "import", "-", "--format", "env")
	if r.code == 0 || !strings.Contains(r.stderr, "nothing was created") {
		t.Errorf("bad import: exit %d, %q", r.code, r.stderr)
	}
	if _, ok := srv.value("THREE"); ok {
		t.Error("partial import")
	}
}
