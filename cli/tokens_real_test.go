package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The token commands against the real control plane: a token made by
// `courier tokens create` drives the CLI through COURIER_SESSION_TOKEN,
// read scope stays read-only, an admin sees and revokes it, and it stops
// working at once.
func TestTokensRealControlPlane(t *testing.T) {
	srv := startRealServer(t)
	admin := newCLI(t, "")
	admin.ok(str(adminPassword+"\n"), "login", srv.url, "--username", "admin", "--password-stdin")
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	alice := newCLI(t, "")
	alice.ok(str("alice-password-1\n"), "login", srv.url, "--username", "alice", "--password-stdin")

	var created map[string]any
	r := alice.ok(nil, "tokens", "create", "ci", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatalf("create -o json: %v\n%s", err, r.stdout)
	}
	tok, _ := created["token"].(string)
	if created["name"] != "ci" || !strings.HasPrefix(tok, "courier_pat_") || created["expires_at"] == nil || created["scope"] != "write" {
		t.Fatalf("create -o json = %s", r.stdout)
	}
	var ro map[string]any
	if err := json.Unmarshal([]byte(alice.ok(nil, "tokens", "create", "ro", "--scope", "read", "--lifetime", "12h", "-o", "json").stdout), &ro); err != nil {
		t.Fatal(err)
	}
	roTok, _ := ro["token"].(string)

	// The token drives the CLI with no login.
	bot := newCLI(t, srv.url)
	bot.env = append(bot.env, "COURIER_SESSION_TOKEN="+tok)
	if r := bot.ok(nil, "whoami"); !strings.Contains(r.stdout, "alice") {
		t.Fatalf("whoami with the token: %q", r.stdout)
	}
	bot.ok(str(canary), "secret", "create", "from-ci", "--env", "FROM_CI")
	reader := newCLI(t, srv.url)
	reader.env = append(reader.env, "COURIER_SESSION_TOKEN="+roTok)
	reader.ok(nil, "secret", "list")
	if r := reader.run(str(canary), "secret", "create", "nope"); r.code == 0 || !strings.Contains(r.stderr, "read scope") {
		t.Fatalf("a read token created a secret: exit %d %q", r.code, r.stderr)
	}
	if r := reader.run(nil, "tokens", "create", "escalate"); r.code == 0 || !strings.Contains(r.stderr, "read scope") {
		t.Fatalf("a read token created a token: exit %d %q", r.code, r.stderr)
	}
	if r := alice.run(nil, "tokens", "create", "long", "--lifetime", "91d"); r.code == 0 || !strings.Contains(r.stderr, "maximum of 90d") {
		t.Fatalf("91d: exit %d %q", r.code, r.stderr)
	}

	// Listed without the token; the last use shows after the recorder's
	// flush (at most 10 s), so only the shape is checked here.
	r = alice.ok(nil, "tokens", "list")
	if !strings.Contains(r.stdout, "ci") || !strings.Contains(r.stdout, "ro") || strings.Contains(r.stdout, "courier_pat_") {
		t.Fatalf("list: %s", r.stdout)
	}
	r = admin.ok(nil, "tokens", "list", "--all")
	if !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "ci") || strings.Contains(r.stdout, "courier_pat_") {
		t.Fatalf("list --all: %s", r.stdout)
	}
	if r := alice.run(nil, "tokens", "list", "--all"); r.code == 0 {
		t.Fatal("a member listed every token")
	}
	if r := alice.run(nil, "tokens", "list", "--user", "admin"); r.code == 0 {
		t.Fatal("a member listed the admin's tokens")
	}

	// An admin revokes alice's token: the next command with it fails.
	admin.ok(nil, "tokens", "revoke", "ci", "--user", "alice")
	if r := bot.run(nil, "secret", "list"); r.code == 0 {
		t.Fatal("a revoked token still works")
	}
	if r := admin.run(nil, "tokens", "revoke", "ci", "--user", "alice"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("revoking twice: exit %d %q", r.code, r.stderr)
	}
	alice.ok(nil, "tokens", "revoke", "ro")
	if r := reader.run(nil, "secret", "list"); r.code == 0 {
		t.Fatal("a revoked read token still works")
	}
}
