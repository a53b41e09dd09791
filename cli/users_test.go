package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The users commands against the real control plane: roles, suspension,
// deletion, passwords, and an auditor's read of another user's secrets.
func TestUsersLifecycle(t *testing.T) {
	srv := startRealServer(t)
	admin := newCLI(t, "")
	admin.ok(str(adminPassword+"\n"), "login", srv.url, "--username", "admin", "--password-stdin")
	const alicePW, bobPW = "alice-password-1", "bob-password-22"
	admin.ok(str(alicePW+"\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	admin.ok(str(bobPW+"\n"), "users", "create", "bob", "--email", "bob@example.com", "--password-stdin")
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.all()); return r }
	if r := keep(admin.ok(str("carol-password-3\n"), "users", "create", "carol", "--email", "carol@example.com",
		"--password-stdin", "--role", "auditor")); !strings.Contains(r.stdout, "Created user carol <carol@example.com> (auditor).") {
		t.Errorf("create --role: %q", r.stdout)
	}
	if r := keep(admin.run(str("dan-password-4\n"), "users", "create", "dan", "--email", "dan@example.com",
		"--password-stdin", "--role", "owner")); r.code == 0 || !strings.Contains(r.stderr, "role: must be admin, member or auditor") {
		t.Errorf("create --role owner: exit %d %q", r.code, r.stderr)
	}
	if r := keep(admin.run(str("12345678\n"), "users", "create", "dan", "--email", "dan@example.com", "--password-stdin")); r.code == 0 ||
		!strings.Contains(r.stderr, "password: is on the list of the most often used ones") {
		t.Errorf("create with a common password: exit %d %q", r.code, r.stderr)
	}

	r := keep(admin.ok(nil, "users", "list"))
	for _, want := range []string{"ROLE", "STATUS", "LOGIN", "member", "active", "password"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("users list lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "auditor") || strings.Contains(r.stdout, "ADMIN ") {
		t.Errorf("users list still has the ADMIN column:\n%s", r.stdout)
	}

	// Roles.
	if r := keep(admin.ok(nil, "users", "set-role", "alice", "auditor")); !strings.Contains(r.stdout, "alice is now auditor.") {
		t.Errorf("set-role: %q", r.stdout)
	}
	r = keep(admin.ok(nil, "users", "set-role", "bob", "member", "-o", "json"))
	var u map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil || u["role"] != "member" || u["status"] != "active" || u["admin"] != false {
		t.Errorf("set-role -o json = %s (%v)", r.stdout, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad role", []string{"users", "set-role", "alice", "root"}, "must be admin, member or auditor"},
		{"last admin", []string{"users", "set-role", "admin", "member"}, "admin is the last active admin"},
		{"missing role", []string{"users", "set-role", "alice"}, "takes the USERNAME and a ROLE"},
		{"unknown user", []string{"users", "suspend", "nobody"}, "not found"},
		{"self suspend", []string{"users", "suspend", "admin"}, "cannot suspend your own account"},
		{"self delete", []string{"users", "delete", "admin", "--yes"}, "cannot delete your own account"},
		{"unknown subcommand", []string{"users", "frobnicate"}, `unknown command "frobnicate"`},
	} {
		if r := keep(admin.run(nil, tc.args...)); r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q (want %q)", tc.name, r.code, r.stderr, tc.want)
		}
	}

	// The auditor reads bob's secret metadata; bob cannot read hers.
	alice := newCLI(t, "")
	alice.ok(str(alicePW+"\n"), "login", srv.url, "--username", "alice", "--password-stdin")
	bob := newCLI(t, "")
	bob.ok(str(bobPW+"\n"), "login", srv.url, "--username", "bob", "--password-stdin")
	keep(bob.ok(str(canary), "secret", "create", "bob-key", "--env", "BOB_KEY"))
	r = keep(alice.ok(nil, "secret", "list", "--user", "bob"))
	if !strings.Contains(r.stdout, "bob-key") || !strings.Contains(r.stdout, "BOB_KEY") {
		t.Errorf("auditor's list of bob's secrets: %q", r.stdout)
	}
	keep(alice.ok(nil, "secret", "list", "bob-key", "--user", "bob", "-o", "json"))
	if r := keep(bob.run(nil, "secret", "list", "--user", "alice")); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("member reading another's list: exit %d %q", r.code, r.stderr)
	}
	if r := keep(alice.run(nil, "users", "suspend", "bob")); r.code == 0 || !strings.Contains(r.stderr, "only an admin") {
		t.Errorf("auditor suspending: exit %d %q", r.code, r.stderr)
	}
	if r := keep(alice.ok(nil, "users", "list")); !strings.Contains(r.stdout, "bob") {
		t.Errorf("auditor's users list: %q", r.stdout)
	}

	// Suspend: bob's stored session stops working at once; activate.
	r = keep(admin.ok(nil, "users", "suspend", "bob"))
	if !strings.Contains(r.stdout, "Suspended bob") {
		t.Errorf("suspend: %q", r.stdout)
	}
	if r := keep(bob.run(nil, "whoami")); r.code == 0 {
		t.Error("whoami works for a suspended user")
	}
	if r := keep(bob.run(str(bobPW+"\n"), "login", srv.url, "--username", "bob", "--password-stdin")); r.code == 0 || !strings.Contains(r.stderr, "suspended") {
		t.Errorf("suspended login: exit %d %q", r.code, r.stderr)
	}
	if r := keep(admin.ok(nil, "users", "list")); !strings.Contains(r.stdout, "suspended") {
		t.Errorf("list after suspend:\n%s", r.stdout)
	}
	keep(admin.ok(nil, "users", "activate", "bob"))
	keep(bob.ok(str(bobPW+"\n"), "login", srv.url, "--username", "bob", "--password-stdin"))

	// Passwords: own change from stdin lines, then refusals.
	const newPW = "a much better passphrase"
	if r := keep(bob.ok(str(bobPW+"\n"+newPW+"\n"), "users", "passwd", "--password-stdin")); !strings.Contains(r.stdout, "Password changed") {
		t.Errorf("passwd: %q", r.stdout)
	}
	keep(bob.ok(nil, "whoami")) // this session stays
	if r := keep(bob.run(str(bobPW+"\n"), "login", srv.url, "--username", "bob", "--password-stdin")); r.code == 0 {
		t.Error("the old password still logs in")
	}
	keep(bob.ok(str(newPW+"\n"), "login", srv.url, "--username", "bob", "--password-stdin"))
	for _, tc := range []struct {
		name  string
		stdin *string
		args  []string
		want  string
	}{
		{"one line for one's own", str(newPW + "\n"), []string{"users", "passwd", "--password-stdin"}, "two lines"},
		{"three lines", str("a\nb\nc\n"), []string{"users", "passwd", "--password-stdin"}, "two lines"},
		{"empty stdin", str(""), []string{"users", "passwd", "--password-stdin"}, "two lines"},
		{"no terminal", nil, []string{"users", "passwd"}, "--password-stdin"},
		{"wrong old", str("not-the-password\nanother fine one\n"), []string{"users", "passwd", "--password-stdin"}, "old_password: is not your current password"},
		{"common", str(newPW + "\r\nPassword123\r\n"), []string{"users", "passwd", "--password-stdin"}, "most often used"},
		{"too short", str(newPW + "\nshort\n"), []string{"users", "passwd", "--password-stdin"}, "at least 8 bytes"},
		{"member resets another", str("another fine one\n"), []string{"users", "passwd", "alice", "--password-stdin"}, "not found"},
	} {
		if r := keep(bob.run(tc.stdin, tc.args...)); r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q (want %q)", tc.name, r.code, r.stderr, tc.want)
		}
	}
	keep(bob.ok(nil, "whoami"))

	// An admin's reset: one line, bob's sessions end.
	if r := keep(admin.ok(str(bobPW+"\n"), "users", "passwd", "bob", "--password-stdin")); !strings.Contains(r.stdout, "Password of bob reset") {
		t.Errorf("reset: %q", r.stdout)
	}
	if r := keep(bob.run(nil, "whoami")); r.code == 0 {
		t.Error("bob's session survived the reset")
	}
	keep(bob.ok(str(bobPW+"\n"), "login", srv.url, "--username", "bob", "--password-stdin"))

	// Delete: refused without --yes off a terminal; then bob and his
	// secrets are gone.
	if r := keep(admin.run(nil, "users", "delete", "bob")); r.code == 0 || !strings.Contains(r.stderr, "pass --yes") {
		t.Errorf("delete without --yes: exit %d %q", r.code, r.stderr)
	}
	if _, ok := srv.value(t, "bob", "bob-key"); !ok {
		t.Fatal("bob's secret went without --yes")
	}
	if r := keep(admin.ok(nil, "users", "delete", "bob", "--yes")); !strings.Contains(r.stdout, "Deleted user bob") {
		t.Errorf("delete: %q", r.stdout)
	}
	if r := keep(bob.run(nil, "whoami")); r.code == 0 {
		t.Error("a deleted user's session works")
	}
	if r := keep(admin.run(nil, "secret", "list", "--user", "bob")); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("deleted user's secrets: exit %d %q", r.code, r.stderr)
	}

	for _, out := range outputs {
		for _, secret := range []string{canary, alicePW, bobPW, newPW} {
			if strings.Contains(out, secret) {
				t.Fatalf("%q leaked:\n%s", secret, out)
			}
		}
	}
}
