package store_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/storetest"
)

// TestSQLiteAuditInvolving checks a user's records on SQLite against a
// scan of the whole log, with the side table's mark in many places:
// nothing indexed, all indexed, and part of the log after the mark; both
// orders, every page size, cursors, other filters, after pruning and
// after the migration's backfill.
func TestSQLiteAuditInvolving(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "courier.db")
	open := func() *store.SQLite {
		s, err := store.OpenSQLite(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	defer func() { _ = s.Close() }()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	mark := func() (m, head int64) {
		if err := raw.QueryRow(`SELECT m.seq, h.seq FROM audit_involves_mark m, audit_head h`).Scan(&m, &head); err != nil {
			t.Fatal(err)
		}
		return m, head
	}

	rng := rand.New(rand.NewPCG(1, 2))
	check := func(stage string) { t.Helper(); storetest.CheckInvolving(t, s, stage) }

	// Nothing indexed yet beyond the empty log.
	store.SetInvolvesEvery(s, time.Hour)
	if err := s.AppendAudit(ctx, storetest.RandomRecords(rng, 60, storetest.T0)); err != nil {
		t.Fatal(err)
	}
	if m, head := mark(); m != 0 || head != 60 {
		t.Fatalf("mark %d head %d, want 0 and 60", m, head)
	}
	check("all after the mark")

	// Chunks, each indexed or not: the mark lands in between.
	for i := range 12 {
		every := time.Hour
		if i%3 == 1 {
			every = 0
		}
		store.SetInvolvesEvery(s, every)
		if err := s.AppendAudit(ctx, storetest.RandomRecords(rng, 1+rng.IntN(30), storetest.T0.Add(time.Duration(60+i*30)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	m, head := mark()
	if m == 0 || m >= head {
		t.Fatalf("mark %d, head %d: want a mark inside the log", m, head)
	}
	check("mark inside the log")

	store.SetInvolvesEvery(s, 0)
	if err := s.AppendAudit(ctx, storetest.RandomRecords(rng, 5, storetest.T0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if m, head := mark(); m != head {
		t.Fatalf("mark %d, head %d: want all indexed", m, head)
	}
	check("all indexed")

	// Pruning removes the side rows with their records.
	if _, err := s.PruneAudit(ctx, storetest.T0.Add(100*time.Second), 1000); err != nil {
		t.Fatal(err)
	}
	var stale int
	if err := raw.QueryRow(`SELECT count(*) FROM audit_involves WHERE rec NOT IN (SELECT seq FROM audit_log)`).Scan(&stale); err != nil || stale != 0 {
		t.Fatalf("%d side rows left for pruned records (%v)", stale, err)
	}
	check("after pruning")

	// A database from before migration 0013: the migrations index it all
	// (0013) and rekey the side table (0014).
	_ = s.Close()
	for _, q := range []string{`DROP TABLE audit_involves`, `DROP TABLE audit_involves_mark`,
		`CREATE INDEX audit_log_actor ON audit_log(actor_id)`, `CREATE INDEX audit_log_owner ON audit_log(target_owner)`,
		`DELETE FROM schema_migrations WHERE version >= 13`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s = open()
	if m, head := mark(); m != head {
		t.Fatalf("after the migration: mark %d, head %d", m, head)
	}
	check("after the migration")
}
