package cli_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// storedTokenHash is the agent token hash stored for alice's workspace name.
func (s *realServer) workspace(t *testing.T, owner, name string) (store.Workspace, bool) {
	t.Helper()
	ctx := context.Background()
	u, err := s.store.UserByUsername(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := s.store.WorkspaceByName(ctx, u.ID, name)
	return ws, err == nil
}

func hashOf(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return string(sum[:])
}

// TestWorkspacesDeleteAndRotateToken: courier workspaces rotate-token prints
// the new token once or writes it to a file (0600) and prints nothing
// secret; a bad flag or an unwritable file rotates nothing; delete refuses
// without --yes off a terminal; show says when the token expires.
func TestWorkspacesDeleteAndRotateToken(t *testing.T) {
	srv := startRealServer(t)
	admin := newCLI(t, "")
	admin.ok(str(adminPassword+"\n"), "login", srv.url, "--username", "admin", "--password-stdin")
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	tmpl := filepath.Join(admin.home, "t.yaml")
	if err := os.WriteFile(tmpl, []byte("env: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin.ok(nil, "workspaces", "create", "dev", "--owner", "alice", "--template", tmpl)
	admin.ok(nil, "workspaces", "create", "other", "--owner", "alice", "--template", tmpl)
	alice := newCLI(t, "")
	alice.ok(str("alice-password-1\n"), "login", srv.url, "--username", "alice", "--password-stdin")
	var outputs []string

	// Printed once.
	r := alice.ok(nil, "workspaces", "rotate-token", "dev")
	outputs = append(outputs, r.all())
	m := regexp.MustCompile(`New agent token \(shown once\): (\S+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("rotate-token printed %q", r.stdout)
	}
	printed := m[1]
	ws, _ := srv.workspace(t, "alice", "dev")
	if string(ws.AgentTokenHash) != hashOf(printed) || !strings.Contains(r.stderr, "does not expire") {
		t.Fatalf("the printed token is not the stored one (stderr %q)", r.stderr)
	}

	// Nothing rotated on bad input.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"workspaces", "rotate-token", "dev", "--lifetime", "30"}, "unit"},
		{[]string{"workspaces", "rotate-token", "dev", "--lifetime", "1s"}, "at least"},
		{[]string{"workspaces", "rotate-token", "dev", "--token-file", filepath.Join(alice.home, "no", "such", "dir", "tok")}, "nothing was rotated"},
		{[]string{"workspaces", "rotate-token"}, "NAME"},
		{[]string{"workspaces", "rotate-token", "ghost"}, "not found"},
	} {
		r := alice.run(nil, c.args...)
		outputs = append(outputs, r.all())
		if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(c.want)) {
			t.Errorf("%v: exit %d, stderr %q (want %q)", c.args, r.code, r.stderr, c.want)
		}
		if ws, _ := srv.workspace(t, "alice", "dev"); string(ws.AgentTokenHash) != hashOf(printed) {
			t.Fatalf("%v rotated the token", c.args)
		}
	}

	// Written to an existing file in place: the same file (inode, so its
	// owner, and a container's bind mount of it), its mode kept, with a
	// warning for a mode others can read; nothing secret printed.
	tokenFile := filepath.Join(alice.home, "agent-token")
	if err := os.WriteFile(tokenFile, []byte(printed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// As root (CI), the file belongs to the workspace user, as it does in
	// production where rotation runs as root: it must stay theirs.
	const workspaceUID = 65534
	if os.Geteuid() == 0 {
		if err := os.Chown(tokenFile, workspaceUID, workspaceUID); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.Stat(tokenFile)
	r = alice.ok(nil, "workspaces", "rotate-token", "dev", "--token-file", tokenFile, "--lifetime", "30d")
	outputs = append(outputs, r.all())
	b, err := os.ReadFile(tokenFile)
	fi, _ := os.Stat(tokenFile)
	tok := strings.TrimSuffix(string(b), "\n")
	if err != nil || fi.Mode().Perm() != 0o644 || tok == printed || len(tok) < 43 || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("token file: %v, mode %v, %d bytes", err, fi.Mode(), len(b))
	}
	if !os.SameFile(before, fi) {
		t.Fatal("the token file was replaced by another file: a bind mount of it would keep the revoked token")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && (st.Uid != workspaceUID || st.Gid != workspaceUID) {
		t.Fatalf("the token file now belongs to %d:%d, not the workspace user: the agent could not read it", st.Uid, st.Gid)
	}
	if !strings.Contains(r.stderr, "readable by other users") {
		t.Errorf("no warning for a token file others can read: %q", r.stderr)
	}
	// A new file is created 0600.
	newFile := filepath.Join(alice.home, "new-token")
	r = alice.ok(nil, "workspaces", "rotate-token", "dev", "--token-file", newFile, "--lifetime", "30d")
	outputs = append(outputs, r.all())
	if fi, err := os.Stat(newFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new token file: %v, %v", err, fi)
	}
	r = alice.ok(nil, "workspaces", "rotate-token", "dev", "--token-file", tokenFile, "--lifetime", "30d")
	outputs = append(outputs, r.all())
	b, _ = os.ReadFile(tokenFile)
	tok = strings.TrimSuffix(string(b), "\n")
	if strings.Contains(r.all(), tok) || !strings.Contains(r.stdout, tokenFile) || !strings.Contains(r.stdout, "expires at") {
		t.Fatalf("rotate-token --token-file printed %q / %q", r.stdout, r.stderr)
	}
	ws, _ = srv.workspace(t, "alice", "dev")
	if string(ws.AgentTokenHash) != hashOf(tok) || ws.AgentTokenExpiresAt.IsZero() ||
		time.Until(ws.AgentTokenExpiresAt) < 29*24*time.Hour {
		t.Fatalf("stored hash or expiry wrong: %v", ws.AgentTokenExpiresAt)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(alice.home, ".courier-token-*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	if r := alice.ok(nil, "workspaces", "show", "dev"); !strings.Contains(r.stdout, "Agent token") || !strings.Contains(r.stdout, "expires in") {
		t.Errorf("show does not say when the token expires: %s", r.stdout)
	}

	// Delete: refused off a terminal without --yes, then done with it.
	r = alice.run(nil, "workspaces", "delete", "dev")
	if r.code == 0 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("delete without --yes: exit %d, %q", r.code, r.stderr)
	}
	if _, ok := srv.workspace(t, "alice", "dev"); !ok {
		t.Fatal("deleted without confirmation")
	}
	alice.ok(nil, "workspaces", "delete", "dev", "--yes")
	if _, ok := srv.workspace(t, "alice", "dev"); ok {
		t.Fatal("still there after delete --yes")
	}
	if r := alice.run(nil, "workspaces", "delete", "dev", "--yes"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("deleting again: exit %d, %q", r.code, r.stderr)
	}
	if r := alice.run(nil, "workspaces", "frobnicate"); r.code == 0 {
		t.Error("an unknown subcommand exits 0")
	}
	// An admin deletes anyone's, by owner/name.
	admin.ok(nil, "workspaces", "delete", "alice/other", "--yes")
	if _, ok := srv.workspace(t, "alice", "other"); ok {
		t.Fatal("the admin's delete did not delete")
	}
	for _, out := range outputs {
		if strings.Contains(out, tok) {
			t.Fatal("the token written to the file was printed")
		}
	}
}

// TestWorkspaceDeleteAsksOnATerminal: on a terminal delete asks; "n"
// keeps the workspace, "yes" deletes it.
func TestWorkspaceDeleteAsksOnATerminal(t *testing.T) {
	srv := startRealServer(t)
	admin := newCLI(t, "")
	admin.ok(str(adminPassword+"\n"), "login", srv.url, "--username", "admin", "--password-stdin")
	tmpl := filepath.Join(admin.home, "t.yaml")
	if err := os.WriteFile(tmpl, []byte("env: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"keep", "drop"} {
		admin.ok(nil, "workspaces", "create", n, "--owner", "admin", "--template", tmpl)
	}
	for _, tc := range []struct {
		name, answer string
		gone         bool
	}{{"keep", "n", false}, {"drop", "yes", true}} {
		s := startTTY(t, admin, "workspaces", "delete", tc.name)
		s.waitFor("the question", func() bool { return strings.Contains(s.output(), "[y/N]") })
		if _, err := io.WriteString(s.ptmx, tc.answer+"\r"); err != nil {
			t.Fatal(err)
		}
		if code := s.wait(); code != 0 {
			t.Fatalf("exit %d: %q", code, s.output())
		}
		if _, ok := srv.workspace(t, "admin", tc.name); ok == tc.gone {
			t.Errorf("%s: answered %q, still there = %t", tc.name, tc.answer, ok)
		}
	}
}
