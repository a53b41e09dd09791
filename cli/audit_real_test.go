package cli_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane"
)

// TestAuditCommands drives secret changes through the CLI, then reads them
// back with `courier audit list` (one record per change), follows new
// ones, and checks that `courier audit verify` passes and then catches a
// record edited in the database.
func TestAuditCommands(t *testing.T) {
	srv := startRealServer(t)
	admin := newCLI(t, srv.url)
	admin.ok(str(adminPassword+"\n"), "login", srv.url, "--username", "admin", "--password-stdin")
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	alice := newCLI(t, srv.url)
	alice.ok(str("alice-password-1\n"), "login", srv.url, "--username", "alice", "--password-stdin")
	alice.ok(str(canary), "secret", "create", "deploy-key", "--env", "DEPLOY_KEY")
	alice.ok(nil, "secret", "update", "deploy-key", "--env", "DEPLOY_KEY2")

	var recs []client.AuditRecord
	r := admin.ok(nil, "audit", "list", "--action", "secret.*", "--target", "deploy-key", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		t.Fatalf("audit list -o json = %s: %v", r.stdout, err)
	}
	if len(recs) != 2 || recs[0].Action != "secret.update" || recs[1].Action != "secret.create" ||
		recs[0].Actor.Name != "alice" || recs[0].Source != "127.0.0.1" {
		t.Fatalf("records %+v", recs)
	}
	if !strings.Contains(string(recs[0].Details), `"old": "DEPLOY_KEY"`) {
		t.Errorf("update details %s", recs[0].Details)
	}
	r = admin.ok(nil, "audit", "list", "--actor", "alice")
	for _, want := range []string{"SEQ", "secret.update", "secret create", "session.login"} {
		if want == "secret create" {
			want = "secret deploy-key"
		}
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit list table lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := alice.run(nil, "audit", "list"); r.code == 0 || !strings.Contains(r.stderr, "admins and auditors") {
		t.Errorf("a member's audit list: exit %d, %s", r.code, r.stderr)
	}
	if r := alice.ok(nil, "audit", "list", "--mine", "--action", "secret.create"); !strings.Contains(r.stdout, "deploy-key") {
		t.Errorf("alice's own records: %s", r.stdout)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--outcome", "maybe"}, {"--limit", "5000"}, {"--limit", "0"}, {"-o", "xml"}} {
		if r := admin.run(nil, append([]string{"audit", "list"}, bad...)...); r.code == 0 {
			t.Errorf("audit list %v accepted", bad)
		}
	}

	// --follow prints a record written after it started.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := exec.CommandContext(ctx, courierBin, "audit", "list", "--follow", "--action", "secret.delete", "-o", "json")
	follow.Env = admin.env
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = follow.Wait() }()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Whether the delete lands before or after its first page, the record
	// is printed once, as a JSON line.
	alice.ok(nil, "secret", "delete", "deploy-key", "--yes")
	select {
	case line := <-lines:
		var rec client.AuditRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Action != "secret.delete" || rec.Target.Name != "deploy-key" {
			t.Fatalf("followed %q (%v)", line, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("audit list --follow printed nothing after a delete")
	}

	if r := admin.ok(nil, "audit", "verify"); !strings.Contains(r.stdout, "intact") {
		t.Fatalf("verify: %s", r.stdout)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.dir, controlplane.DBFile)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_log SET target_name = 'other' WHERE action = 'secret.create'`); err != nil {
		t.Fatal(err)
	}
	r = admin.run(nil, "audit", "verify")
	if r.code != 1 || !strings.Contains(r.stdout, "BROKEN") || !strings.Contains(r.stdout, "(edited)") {
		t.Fatalf("verify after an edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.all(), canary) {
		t.Fatal("a secret value reached the CLI's output")
	}
}
