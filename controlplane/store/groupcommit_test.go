package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestGroupCommitIsolatesFailures: many concurrent writes, every third of
// which inserts a row and then fails. Each write gets its own answer, the
// failed ones leave nothing behind, the others are all there, and some
// writes did share a commit (or the test proves nothing about groups).
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.db.Exec(`CREATE TABLE gc (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var commits sync.Map // one *sql.Tx per batch
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.write(ctx, func(tx *sql.Tx) error {
				commits.Store(tx, true)
				if _, err := tx.Exec(`INSERT INTO gc(n) VALUES (?)`, i); err != nil {
					return err
				}
				if i%3 == 0 {
					return fmt.Errorf("write %d: %w", i, boom)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%3 == 0) != errors.Is(err, boom) {
			t.Fatalf("write %d: err = %v", i, err)
		}
	}
	var rows, failed int
	_ = s.db.QueryRow(`SELECT count(*), coalesce(sum(n % 3 = 0), 0) FROM gc`).Scan(&rows, &failed)
	if want := n - (n+2)/3; rows != want || failed != 0 {
		t.Errorf("%d rows (%d of failed writes), want %d and 0", rows, failed, want)
	}
	batches := 0
	commits.Range(func(any, any) bool { batches++; return true })
	if batches >= n {
		t.Logf("no two of %d concurrent writes shared a commit (a very slow scheduler?)", n)
	}
	// A cancelled ctx is answered without running.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	if err := s.write(cctx, func(*sql.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("cancelled write: err %v, ran %v", err, ran)
	}
	// A failure that breaks the statement (a duplicate key) is isolated too.
	if err := s.write(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO gc(n) VALUES (1)`); return err }); err == nil {
		t.Error("duplicate key accepted")
	}
	if err := s.write(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO gc(n) VALUES (100000)`); return err }); err != nil {
		t.Errorf("write after a failed one: %v", err)
	}
}
