package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// auditTests are the conformance tests of the audit log (issue 20).
var auditTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"AuditAppendAndList", testAuditAppendList},
	{"AuditHostileTextRoundTrips", testAuditHostileText},
	{"AuditInTheChangesTransaction", testAuditInTx},
	{"AuditInvolvingMatchesAScan", testAuditInvolving},
	{"AuditConcurrentAppendsKeepOneChain", testAuditConcurrent},
	{"AuditPruneKeepsChainVerifiable", testAuditPrune},
	{"ExpireSessions", testExpireSessions},
	{"TokenFirstUseRecordedOnce", testTokenFirstUse},
}

func auditRec(action, actor, target string, at time.Time) audit.Record {
	return audit.Record{Time: at, Actor: audit.Actor{Kind: audit.ActorUser, ID: actor, Name: actor + "-name"},
		Source: "192.0.2.1", UserAgent: "test", Action: action, Outcome: audit.Success,
		Target: audit.Target{Kind: "secret", ID: target, Name: target + "-name", OwnerID: actor}, RequestID: "req", Replica: "r1"}
}

// verify runs audit.Verify over s.
func verify(t *testing.T, s store.Store) audit.Report {
	t.Helper()
	st, err := s.AuditState(ctx)
	if err != nil {
		t.Fatalf("AuditState: %v", err)
	}
	rep, err := audit.Verify(ctx, st, func(c2 context.Context, after int64, limit int) ([]audit.Record, error) {
		return s.ListAudit(c2, audit.Filter{After: after, Limit: limit, Oldest: true})
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func testAuditAppendList(t *testing.T, s store.Store) {
	if rep := verify(t, s); !rep.OK || rep.Checked != 0 {
		t.Fatalf("empty chain: %+v", rep)
	}
	var recs []audit.Record
	for i := range 5 {
		r := auditRec("secret.create", "alice", fmt.Sprint("s", i), T0.Add(time.Duration(i)*time.Minute))
		if i == 3 {
			r.Actor.ID, r.Actor.Name, r.Action, r.Outcome = "bob", "bob", "session.login_failed", audit.Failure
			r.Target.OwnerID = "bob"
			r.Details = audit.Details(map[string]any{"n": 1})
		}
		recs = append(recs, r)
	}
	if err := s.AppendAudit(ctx, recs[:2]); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := s.AppendAudit(ctx, recs[2:]); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	all, err := s.ListAudit(ctx, audit.Filter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListAudit: %d records, %v", len(all), err)
	}
	if all[0].Seq != 5 || all[4].Seq != 1 {
		t.Fatalf("newest first: got seqs %d..%d", all[0].Seq, all[4].Seq)
	}
	got := all[1] // seq 4 = recs[3]
	want := recs[3]
	if got.Actor != want.Actor || got.Target != want.Target || !got.Time.Equal(want.Time) ||
		got.Outcome != want.Outcome || string(got.Details) != string(want.Details) || got.Replica != "r1" {
		t.Fatalf("record read back %+v, want %+v", got, want)
	}
	if !bytes.Equal(got.Hash, audit.Hash(got, all[2].Hash)) {
		t.Fatal("record 4's hash does not chain to record 3")
	}
	for _, tc := range []struct {
		f    audit.Filter
		want []int64
	}{
		{audit.Filter{Actor: "bob"}, []int64{4}},
		{audit.Filter{Actor: "ALICE-NAME"}, []int64{5, 3, 2, 1}},
		{audit.Filter{Action: "session.*"}, []int64{4}},
		{audit.Filter{Action: "secret.create"}, []int64{5, 3, 2, 1}},
		{audit.Filter{Target: "s2-name"}, []int64{3}},
		{audit.Filter{Outcome: audit.Failure}, []int64{4}},
		{audit.Filter{Involving: "bob"}, []int64{4}},
		{audit.Filter{Since: T0.Add(time.Minute), Until: T0.Add(3 * time.Minute)}, []int64{3, 2}},
		{audit.Filter{Before: 4, Limit: 2}, []int64{3, 2}},
		{audit.Filter{After: 2, Limit: 2, Oldest: true}, []int64{3, 4}},
		{audit.Filter{After: 1, Before: 4}, []int64{3, 2}},
		{audit.Filter{Action: "'; DROP TABLE audit_log; --"}, nil},
		{audit.Filter{Action: "%"}, nil},
	} {
		rs, err := s.ListAudit(ctx, tc.f)
		if err != nil {
			t.Fatalf("ListAudit(%+v): %v", tc.f, err)
		}
		var seqs []int64
		for _, r := range rs {
			seqs = append(seqs, r.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
			t.Errorf("ListAudit(%+v) = %v, want %v", tc.f, seqs, tc.want)
		}
	}
	if _, err := s.ListAudit(ctx, audit.Filter{Outcome: "maybe"}); !errors.Is(err, audit.ErrBadFilter) {
		t.Fatalf("bad outcome: %v, want ErrBadFilter", err)
	}
	if rep := verify(t, s); !rep.OK || rep.Checked != 5 {
		t.Fatalf("Verify: %+v", rep)
	}
}

func testAuditInTx(t *testing.T, s store.Store) {
	u := mkUser(t, s, "auditee")
	rec := auditRec("secret.create", u.ID, "a", T0)
	c, p := audit.WithRecords(ctx, rec)
	sec := mkSecret("a", "A", "")
	sec.Value = []byte("CANARY-VALUE-1")
	if err := s.CreateSecrets(c, u.ID, []store.Secret{sec}, nil); err != nil {
		t.Fatalf("CreateSecrets: %v", err)
	}
	if !p.Written() {
		t.Fatal("records not marked written after a successful write")
	}
	// A second write under the same ctx does not append them again.
	if err := s.DeleteSecret(c, u.ID, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteSecret: %v", err)
	}
	// A write that fails appends nothing.
	c2, p2 := audit.WithRecords(ctx, auditRec("secret.create", u.ID, "dup", T0))
	if err := s.CreateSecrets(c2, u.ID, []store.Secret{mkSecret("a", "", "")}, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate CreateSecrets: %v", err)
	}
	if p2.Written() {
		t.Fatal("records marked written after a failed write")
	}
	// Nor a delete of a missing secret (PostgreSQL sends its commit with
	// the delete, so the server itself must refuse it).
	c5, p5 := audit.WithRecords(ctx, auditRec("secret.delete", u.ID, "nope", T0))
	if err := s.DeleteSecret(c5, u.ID, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteSecret of a missing secret: %v", err)
	}
	if p5.Written() {
		t.Fatal("records marked written after a failed delete")
	}
	// An update's diff is filled in by the store: names old and new
	// targets, only "changed" for the value.
	c3, p3 := audit.WithRecords(ctx, auditRec("secret.update", u.ID, "a", T0))
	env, file, scope := "B", "~/b", []string{"api", "web-*"}
	if _, err := s.UpdateSecret(c3, u.ID, "a", store.SecretUpdate{EnvName: &env, FilePath: &file, Workspaces: &scope,
		Value: []byte("CANARY-VALUE-2"), Format: store.FormatPlain, UpdatedAt: T0}, nil); err != nil {
		t.Fatalf("UpdateSecret: %v", err)
	}
	if !p3.Written() {
		t.Fatal("update's record not written")
	}
	// Writes that go straight to the table on some stores carry records
	// too: a session, an API token, a workspace.
	c4, p4 := audit.WithRecords(ctx, auditRec("session.login", u.ID, u.ID, T0))
	if err := s.CreateSession(c4, store.Session{TokenHash: []byte("0123456789abcdef0123456789abcdef"), UserID: u.ID,
		CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}); err != nil || !p4.Written() {
		t.Fatalf("CreateSession: %v, written %t", err, p4.Written())
	}
	rs, err := s.ListAudit(ctx, audit.Filter{})
	if err != nil || len(rs) != 3 {
		t.Fatalf("ListAudit: %d records (want 3), %v", len(rs), err)
	}
	var d struct {
		Changed map[string]audit.Change `json:"changed"`
	}
	if err := json.Unmarshal(rs[1].Details, &d); err != nil {
		t.Fatalf("details %s: %v", rs[1].Details, err)
	}
	if c := d.Changed["env_name"]; c.Old != "A" || c.New != "B" {
		t.Errorf("env_name change %+v, want A -> B", c)
	}
	if c := d.Changed["file_path"]; c.Old != "" || c.New != "~/b" || !c.Changed {
		t.Errorf("file_path change %+v, want '' -> ~/b", c)
	}
	if c := d.Changed["workspaces"]; !c.Changed || fmt.Sprint(c.Old) != "[]" || fmt.Sprint(c.New) != "[api web-*]" {
		t.Errorf("workspaces change %+v, want [] -> [api web-*]", c)
	}
	if c := d.Changed["value"]; !c.Changed || c.Old != nil || c.New != nil {
		t.Errorf("value change %+v, want only changed", c)
	}
	for _, r := range rs {
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), "CANARY") {
			t.Fatalf("a value reached the audit log: %s", b)
		}
	}
	if rep := verify(t, s); !rep.OK {
		t.Fatalf("Verify: %+v", rep)
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.AppendAudit(ctx, []audit.Record{auditRec("x", fmt.Sprint(w), fmt.Sprint(i), T0)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AppendAudit: %v", err)
	}
	if rep := verify(t, s); !rep.OK || rep.Checked != writers*each {
		t.Fatalf("Verify after concurrent appends: %+v", rep)
	}
}

func testAuditPrune(t *testing.T, s store.Store) {
	var recs []audit.Record
	for i := range 10 {
		recs = append(recs, auditRec("x", "a", fmt.Sprint(i), T0.Add(time.Duration(i)*time.Hour)))
	}
	if err := s.AppendAudit(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneAudit(ctx, T0.Add(6*time.Hour), 4)
	if err != nil || n != 4 {
		t.Fatalf("PruneAudit = %d, %v; want 4", n, err)
	}
	n, err = s.PruneAudit(ctx, T0.Add(6*time.Hour), 4)
	if err != nil || n != 2 {
		t.Fatalf("second PruneAudit = %d, %v; want 2", n, err)
	}
	st, err := s.AuditState(ctx)
	if err != nil || st.Checkpoint.Seq != 6 || st.Head.Seq != 10 {
		t.Fatalf("AuditState = %+v, %v; want checkpoint 6, head 10", st, err)
	}
	if rep := verify(t, s); !rep.OK || rep.From != 7 || rep.Checked != 4 {
		t.Fatalf("Verify after prune: %+v", rep)
	}
	if n, err := s.PruneAudit(ctx, T0, 100); err != nil || n != 0 {
		t.Fatalf("PruneAudit with nothing old = %d, %v", n, err)
	}
}

// Tamperer runs one SQL statement straight on a store's database, as an
// attacker with write access would.
type Tamperer func(t *testing.T, sql string)

// RunAuditTamper checks that audit.Verify finds a record edited, removed
// or reordered directly in the database. open returns a fresh store and a
// way to run SQL on its database.
func RunAuditTamper(t *testing.T, open func(t *testing.T) (store.Store, Tamperer)) {
	for _, tc := range []struct {
		name    string
		sql     []string
		bad     int64
		problem string
	}{
		{"EditedRow", []string{`UPDATE audit_log SET target_name = 'other' WHERE seq = 3`}, 3, audit.ProblemEdited},
		{"DeletedRow", []string{`DELETE FROM audit_log WHERE seq = 3`}, 3, audit.ProblemRemoved},
		{"DeletedLastRow", []string{`DELETE FROM audit_log WHERE seq = 5`}, 5, audit.ProblemRemoved},
		{"SwappedPair", []string{`UPDATE audit_log SET seq = -1 WHERE seq = 2`,
			`UPDATE audit_log SET seq = 2 WHERE seq = 3`, `UPDATE audit_log SET seq = 3 WHERE seq = -1`}, 2, audit.ProblemReordered},
		{"EditedHeadRow", []string{`UPDATE audit_head SET seq = 4`}, 5, audit.ProblemEdited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, exec := open(t)
			defer s.Close()
			var recs []audit.Record
			for i := range 5 {
				recs = append(recs, auditRec("secret.update", "a", fmt.Sprint(i), T0.Add(time.Duration(i)*time.Second)))
			}
			if err := s.AppendAudit(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if rep := verify(t, s); !rep.OK {
				t.Fatalf("before tampering: %+v", rep)
			}
			for _, q := range tc.sql {
				exec(t, q)
			}
			rep := verify(t, s)
			if rep.OK || rep.BadSeq != tc.bad || rep.Problem != tc.problem {
				t.Fatalf("Verify = %+v; want record %d %s", rep, tc.bad, tc.problem)
			}
		})
	}
}

// testTokenFirstUse: TouchAPITokens appends a use's first-use record only
// in the write that moves the token's last use from never — once, however
// many writers (replicas) race, and never for a use after that.
func testTokenFirstUse(t *testing.T, s store.Store) {
	u := mkUser(t, s, "firstuse")
	mk := func(name string) store.APIToken {
		tok := store.APIToken{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", len(name)), UserID: u.ID, Name: name,
			TokenHash: []byte("first-use-" + name), Scope: store.ScopeRead, CreatedAt: T0, ExpiresAt: T0.Add(24 * time.Hour)}
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	raced, quiet := mk("raced"), mk("quiet-token")
	first := func(tok store.APIToken, at time.Time, reqID string) *audit.Record {
		r := auditRec("token.first_use", u.ID, tok.ID, at)
		r.Target.Kind, r.RequestID = "token", reqID
		r.UserAgent = "agent \xff\x00 odd" // a client's bytes: stored cleaned, never refused
		return &r
	}

	// Eight writers race to record the first use of one token.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := T0.Add(time.Duration(i+1) * time.Second)
			errs <- s.TouchAPITokens(ctx, []store.APITokenUse{{ID: raced.ID, At: at, Addr: "192.0.2.1",
				FirstUse: first(raced, at, fmt.Sprint("req-", i))}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("TouchAPITokens: %v", err)
		}
	}
	// A later use still carrying a first-use draft (a replica that had not
	// seen the write) records nothing; a use without one neither.
	later := T0.Add(time.Minute)
	if err := s.TouchAPITokens(ctx, []store.APITokenUse{
		{ID: raced.ID, At: later, Addr: "192.0.2.2", FirstUse: first(raced, later, "req-late")},
		{ID: quiet.ID, At: later, Addr: "192.0.2.3"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAPITokens(ctx, []store.APITokenUse{{ID: quiet.ID, At: later.Add(time.Second), FirstUse: first(quiet, later, "req-quiet")}}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ListAudit(ctx, audit.Filter{Action: "token.first_use", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Target.ID != raced.ID || !strings.HasPrefix(recs[0].RequestID, "req-") ||
		recs[0].RequestID == "req-late" || recs[0].UserAgent != "agent \uFFFD odd" {
		t.Fatalf("first-use records %+v, want one for the raced token from one of the racers", recs)
	}
	got, err := s.APITokenByHash(ctx, raced.TokenHash, T0)
	if err != nil || !got.LastUsedAt.Equal(later) || got.LastUsedAddr != "192.0.2.2" {
		t.Fatalf("last use after the races: %+v, %v", got, err)
	}
	if rep := verify(t, s); !rep.OK {
		t.Fatalf("chain after first uses: %+v", rep)
	}
}

// hostileTexts are field values that an encoding of records could alter:
// quotes, backslashes, control characters, JSON and SQL look-alikes,
// separators, characters outside the BMP, invalid UTF-8 and NUL (both
// cleaned before hashing), and a value over the field cap.
var hostileTexts = []string{
	"", `"`, `\`, `\"`, "\u0041", "a\nb", "tab\there", "\x01\x1f\x7f", "line\u2028sep\u2029",
	"emoji 🔑 and 日本語", `{"json":[1,"x"]}`, "'; DROP TABLE audit_log; --", "bad \xff\xfe utf8",
	"nul\x00inside", strings.Repeat("é", 400), "]]},{", "\r\n", `\u0000 \\ raw`,
}

// testAuditHostileText appends records whose every text field is hostile,
// in one batch, and reads each back exactly as it was hashed.
func testAuditHostileText(t *testing.T, s store.Store) {
	var recs []audit.Record
	for i, h := range hostileTexts {
		r := audit.Record{Time: T0.Add(time.Duration(i) * time.Nanosecond), Actor: audit.Actor{Kind: audit.ActorUser, ID: "u" + h, Name: h},
			Source: h, UserAgent: h, Action: "secret.create", Target: audit.Target{Kind: "secret", ID: h, Name: h, OwnerID: h},
			Outcome: audit.Failure, Reason: h, RequestID: h, Replica: h,
			Details: audit.Details(map[string]any{"text": h, "n": i})}
		recs = append(recs, r)
	}
	if err := s.AppendAudit(ctx, recs); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	got, err := s.ListAudit(ctx, audit.Filter{Oldest: true, Limit: len(recs)})
	if err != nil || len(got) != len(recs) {
		t.Fatalf("ListAudit: %d records, %v", len(got), err)
	}
	for i, want := range recs {
		want.Clean()
		g := got[i]
		if g.Actor != want.Actor || g.Target != want.Target || g.Source != want.Source || g.UserAgent != want.UserAgent ||
			g.Reason != want.Reason || g.RequestID != want.RequestID || g.Replica != want.Replica ||
			string(g.Details) != string(want.Details) || !g.Time.Equal(want.Time) {
			t.Errorf("record %d (%q) read back as %+v, want %+v", i, hostileTexts[i], g, want)
		}
		if !bytes.Equal(g.Hash, audit.Hash(g, g.PrevHash)) {
			t.Errorf("record %d (%q): the stored fields do not give the stored hash", i, hostileTexts[i])
		}
	}
	if rep := verify(t, s); !rep.OK || rep.Checked != int64(len(recs)) {
		t.Fatalf("Verify: %+v", rep)
	}
}
