package controlplane

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
)

// auditKey counts records by action and outcome.
type auditKey struct{ action, outcome string }

func countAudit(recs []audit.Record) map[auditKey]int {
	m := map[auditKey]int{}
	for _, r := range recs {
		m[auditKey{r.Action, r.Outcome}]++
	}
	return m
}

// readAudit reads every record through GET /api/v2/audit as the admin,
// newest first, following the cursor.
func (ts *testServer) readAudit(admin string) []audit.Record {
	ts.t.Helper()
	var out []audit.Record
	path := "/api/v2/audit?limit=50"
	for {
		var p client.AuditPage
		ts.want(ts.do("GET", path, admin, nil), 200).json(ts.t, &p)
		out = append(out, p.Records...)
		if p.NextBefore == 0 {
			return out
		}
		path = fmt.Sprintf("/api/v2/audit?limit=50&before=%d", p.NextBefore)
	}
}

// waitAudit flushes the API tokens' last uses (which write first-use
// records), the tally of refused credentials and the batcher, and waits until the log holds n records.
func (ts *testServer) waitAudit(admin string, n int) []audit.Record {
	ts.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ts.api.uses.Flush(context.Background()); err != nil {
			ts.t.Fatal(err)
		}
		ts.api.audit.refusals.Flush()
		ts.api.audit.batch.Flush(context.Background())
		st, err := ts.store.AuditState(context.Background())
		if err != nil {
			ts.t.Fatal(err)
		}
		if st.Head.Seq >= int64(n) || time.Now().After(deadline) {
			return ts.readAudit(admin)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuditOneRecordPerAction drives every audited action through the REST
// API, the dashboard, the agent endpoint and SSH, then reads the log back
// and expects exactly one record per action, a verifiable chain, the same
// records in the export file, and no value, token or password anywhere.
// Runs on PostgreSQL too (COURIER_TEST_STORE=postgres).
func TestAuditOneRecordPerAction(t *testing.T) {
	exportFile := filepath.Join(t.TempDir(), "audit.jsonl")
	ts := newTestServer(t, func(c *Config) { c.AuditLogFile = exportFile })
	p := ts.setup()
	want := map[auditKey]int{
		{actUserCreate, audit.Success}: 3, // root (first user), alice, bob
		{actLogin, audit.Success}:      4, // root, alice, bob, alice on the dashboard
	}
	expect := func(action, outcome string) { want[auditKey{action, outcome}]++ }
	base := "/api/v2/users/me/secrets"

	// Sign-in refused, secrets created, refused, updated, imported, read by
	// an admin, deleted.
	ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": "alice", "password": "wrong " + canary}), 401)
	expect(actLogin, audit.Failure)
	ts.want(ts.do("POST", base, p.alice, secretBody("db", "env_name", "DB")), 201)
	expect(actSecretCreate, audit.Success)
	ts.want(ts.do("POST", base, p.alice, secretBody("bad", "env_name", "1BAD")), 400)
	expect(actSecretCreate, audit.Failure)
	ts.want(ts.do("PATCH", base+"/db", p.alice, map[string]string{"env_name": "DB2", "value": canary + "2"}), 200)
	expect(actSecretUpdate, audit.Success)
	ts.want(ts.do("POST", base+"/batch", p.alice, map[string]string{"format": "env", "content": "A=" + canary + "\nB=" + canary + "\n"}), 201)
	expect(actSecretBatch, audit.Success)
	want[auditKey{actSecretCreate, audit.Success}] += 2
	ts.want(ts.do("GET", base, p.alice, nil), 200) // her own: not recorded
	ts.want(ts.do("GET", "/api/v2/users/alice/secrets", p.admin, nil), 200)
	expect(actSecretList, audit.Success)
	ts.want(ts.do("GET", "/api/v2/users/alice/secrets/db", p.admin, nil), 200)
	expect(actSecretRead, audit.Success)
	ts.want(ts.do("PATCH", "/api/v2/users/alice/secrets/db", p.admin, map[string]string{"description": "x"}), 403)
	expect(actSecretUpdate, audit.Denied)
	ts.want(ts.do("DELETE", base+"/db", p.alice, nil), 204)
	expect(actSecretDelete, audit.Success)

	// An API token: created, used twice (one first-use record), revoked.
	tok := ts.createToken(p.alice, map[string]any{"name": "ci", "lifetime": "1d"})
	expect(actTokenCreate, audit.Success)
	ts.want(ts.do("GET", base, tok.Token, nil), 200)
	ts.want(ts.do("GET", base, tok.Token, nil), 200)
	expect(actTokenFirstUse, audit.Success)
	ts.want(ts.do("DELETE", "/api/v2/users/me/tokens/ci", p.alice, nil), 204)
	expect(actTokenRevoke, audit.Success)

	// Users' and workspaces' lifecycle.
	ts.want(ts.do("PUT", "/api/v2/users/bob/role", p.admin, map[string]string{"role": "auditor"}), 200)
	expect(actUserRole, audit.Success)
	ts.want(ts.do("PUT", "/api/v2/users/bob/status/suspend", p.admin, nil), 200)
	expect(actUserSuspend, audit.Success)
	ts.want(ts.do("PUT", "/api/v2/users/bob/status/activate", p.admin, nil), 200)
	expect(actUserActivate, audit.Success)
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &created)
	expect(actWorkspaceNew, audit.Success)
	var rotated RotatedAgentTokenResponse
	ts.want(ts.do("POST", "/api/v2/workspaces/"+created.Workspace.ID+"/agent-token", p.alice, nil), 201).json(t, &rotated)
	expect(actAgentTokenRot, audit.Success)

	// The dashboard: a sign-in (counted above) and a secret.
	b := ts.browser()
	b.login("alice")
	wantStatus(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "web", "value": canary}, nil), http.StatusSeeOther)
	expect(actSecretCreate, audit.Success)

	// The agent endpoint: a refused token, a session with an apply report.
	_, res, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {created.AgentToken}, proto.HeaderVersion: {proto.Version}}})
	if err == nil || res.StatusCode != 401 {
		t.Fatalf("rotated agent token: %v", err)
	}
	expect(actAgentRefused, audit.Denied)
	agent := dialAgent(t, ts, rotated.AgentToken)
	expect(actAgentConnect, audit.Success)
	if st := agent.call(t, "POST", proto.PathApply, proto.ApplyReport{At: time.Now(), Outcomes: []proto.Outcome{
		{Secret: "A", EnvName: "A", Outcome: proto.OutcomeWritten}, {Secret: "B", EnvName: "B", Outcome: proto.OutcomeWritten}}}, nil); st != 204 {
		t.Fatalf("apply: %d", st)
	}
	expect(actAgentApply, audit.Success)

	// SSH through the control plane: opened and closed.
	sshEcho(t, ts, p.alice)
	expect(actSSHOpen, audit.Success)
	expect(actSSHClose, audit.Success)
	_ = agent.sess.Close()
	expect(actAgentDrop, audit.Success)

	ts.want(ts.do("POST", "/api/v2/users/logout", p.bob, nil), 401) // bob's sessions ended at suspension
	expect(actRefused, audit.Denied)
	ts.want(ts.do("POST", "/api/v2/users/logout", p.alice, nil), 204)
	expect(actLogout, audit.Success)

	total := 0
	for _, n := range want {
		total += n
	}
	recs := ts.waitAudit(p.admin, total)
	if got := countAudit(recs); fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Errorf("records by action and outcome:\n got %v\nwant %v", sorted(got), sorted(want))
	}

	// What the records say.
	for _, r := range recs {
		if r.RequestID == "" && r.Actor.Kind != audit.ActorAgent || r.Replica == "" || r.Time.IsZero() {
			t.Errorf("record %d lacks its request ID, replica or time: %+v", r.Seq, r)
		}
		if r.Actor.Kind != audit.ActorAgent && r.Source != "127.0.0.1" {
			t.Errorf("record %d source %q, want 127.0.0.1", r.Seq, r.Source)
		}
		switch {
		case r.Action == actSecretUpdate && r.Outcome == audit.Success:
			var d struct {
				Changed map[string]audit.Change `json:"changed"`
			}
			if err := json.Unmarshal(r.Details, &d); err != nil || d.Changed["env_name"].Old != "DB" ||
				d.Changed["env_name"].New != "DB2" || !d.Changed["value"].Changed {
				t.Errorf("update details %s", r.Details)
			}
			if r.Target.Name != "db" || r.Target.OwnerID != p.aliceID || r.Actor.ID != p.aliceID {
				t.Errorf("update record %+v", r)
			}
		case r.Action == actLogin && r.Outcome == audit.Failure:
			if r.Actor.Name != "alice" || r.Reason == "" || r.Target.ID != p.aliceID {
				t.Errorf("failed sign-in record %+v", r)
			}
		case r.Action == actSecretList:
			if r.Actor.ID != p.adminID || r.Target.OwnerID != p.aliceID || r.Target.Kind != targetUser || r.Target.Name != "alice" {
				t.Errorf("admin's read %+v: want the target to be user alice, whose list it is", r)
			}
		case r.Action == actAgentApply:
			if !strings.Contains(string(r.Details), `"written":2`) || r.Target.ID != created.Workspace.ID {
				t.Errorf("apply record %+v details %s", r, r.Details)
			}
		case r.Action == actSSHClose:
			if !strings.Contains(string(r.Details), `"bytes_from_client":21`) {
				t.Errorf("ssh close details %s", r.Details)
			}
		}
	}

	var rep audit.Report
	ts.want(ts.do("GET", "/api/v2/audit/verify", p.admin, nil), 200).json(t, &rep)
	if !rep.OK || rep.Checked != int64(total) {
		t.Fatalf("verify: %+v (want %d records)", rep, total)
	}
	// Alice sees her own records, not root's sign-in.
	var mine client.AuditPage
	ts.want(ts.do("GET", "/api/v2/users/me/audit?limit=1000", ts.login("alice", testPassword), nil), 200).json(t, &mine)
	for _, r := range mine.Records {
		if r.Actor.ID != p.aliceID && r.Target.OwnerID != p.aliceID && r.Target.ID != p.aliceID {
			t.Errorf("alice sees a record not about her: %+v", r)
		}
	}
	if len(mine.Records) < 10 {
		t.Errorf("alice sees %d records", len(mine.Records))
	}

	// The export file gets every record (plus head lines); nothing secret
	// is in it, in the table, or in the answers (checked at cleanup).
	secrets := []string{canary, testPassword, tok.Token, p.alice, p.admin, created.AgentToken, rotated.AgentToken}
	dump, _ := json.Marshal(recs)
	var exported []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		exported, _ = os.ReadFile(exportFile)
		if lines := countRecordLines(exported); lines >= total+1 || time.Now().After(deadline) {
			if lines < total+1 { // +1: alice's login just above
				t.Fatalf("export file has %d records, want %d", lines, total+1)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range secrets {
		for name, text := range map[string]string{"audit table": string(dump), "export file": string(exported)} {
			if strings.Contains(text, s) {
				t.Errorf("a secret (%.8s...) is in the %s", s, name)
			}
		}
	}
}

func countRecordLines(b []byte) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"action"`) {
			n++
		}
	}
	return n
}

func sorted(m map[auditKey]int) []string {
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%s/%s=%d", k.action, k.outcome, n))
	}
	sort.Strings(out)
	return out
}

// TestAuditRetention: with --audit-retention, records older than it are
// pruned when the server starts, and the chain still verifies from the
// first record kept (the checkpoint).
func TestAuditRetention(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, func(c *Config) { c.DataDir = dir })
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("old")), 201)
	n := len(ts.waitAudit(p.admin, 7))
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(500 * 24 * time.Hour)
	ts2 := newTestServer(t, func(c *Config) {
		c.DataDir, c.AuditRetention = dir, 400*24*time.Hour
		c.Now = func() time.Time { return later }
	})
	var st audit.State
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if st, err = ts2.store.AuditState(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st.Checkpoint.Seq == int64(n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Checkpoint.Seq != int64(n) {
		t.Fatalf("checkpoint at %d, want %d (every old record pruned)", st.Checkpoint.Seq, n)
	}
	admin := ts2.login("root", testPassword)
	ts2.want(ts2.do("POST", "/api/v2/users/me/secrets", admin, secretBody("new")), 201)
	var rep audit.Report
	ts2.want(ts2.do("GET", "/api/v2/audit/verify", admin, nil), 200).json(t, &rep)
	if !rep.OK || rep.From != int64(n)+1 || rep.Checked != 2 {
		t.Fatalf("verify after pruning: %+v", rep)
	}
}
