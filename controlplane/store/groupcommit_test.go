package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openGC opens a store in a temporary directory, with a table gc (n) for
// the writes of the group commit's tests; closed when the test ends.
func openGC(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.db.Exec(`CREATE TABLE gc (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGroupCommitIsolatesFailures: many concurrent writes, every third of
// which inserts a row and then fails. Each write gets its own answer, the
// failed ones leave nothing behind, the others are all there, and some
// writes did share a commit (or the test proves nothing about groups).
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	s := openGC(t)
	boom := errors.New("boom")
	var commits sync.Map // one *sql.Tx per batch
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
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
	if err := s.write(cctx, func(context.Context, *sql.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("cancelled write: err %v, ran %v", err, ran)
	}
	// A failure that breaks the statement (a duplicate key) is isolated too.
	if err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO gc(n) VALUES (1)`)
		return err
	}); err == nil {
		t.Error("duplicate key accepted")
	}
	if err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO gc(n) VALUES (100000)`)
		return err
	}); err != nil {
		t.Errorf("write after a failed one: %v", err)
	}
}

// TestGroupCommitHandsTheLeadOn: a write queued behind a running batch is
// led by one of the writers queued with it (the lead passes on), a queued
// write whose ctx ends meanwhile gets its ctx error and is not run, and
// once the queue is empty no one leads.
func TestGroupCommitHandsTheLeadOn(t *testing.T) {
	ctx := context.Background()
	s := openGC(t)
	insert := func(n int, tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO gc(n) VALUES (?)`, n)
		return err
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var txA, txC *sql.Tx
	resA := make(chan error, 1)
	go func() {
		resA <- s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			txA = tx
			close(entered)
			<-release
			return insert(1, tx)
		})
	}()
	<-entered
	cctx, cancel := context.WithCancel(ctx)
	resB, resC := make(chan error, 1), make(chan error, 1)
	ranB := false
	go func() {
		resB <- s.write(cctx, func(_ context.Context, tx *sql.Tx) error { ranB = true; return insert(2, tx) })
	}()
	go func() {
		resC <- s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { txC = tx; return insert(3, tx) })
	}()
	for queued := 0; queued < 2; {
		s.queueMu.Lock()
		queued = len(s.queue)
		s.queueMu.Unlock()
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	if err := <-resA; err != nil {
		t.Fatalf("the leading write: %v", err)
	}
	if err := <-resB; !errors.Is(err, context.Canceled) {
		t.Fatalf("the write cancelled while queued: %v, want context.Canceled", err)
	}
	if err := <-resC; err != nil {
		t.Fatalf("the write queued behind the batch: %v", err)
	}
	if ranB {
		t.Error("the cancelled write ran")
	}
	if txC == txA {
		t.Error("the queued write shared the batch that was running when it queued")
	}
	var got []int
	rows, err := s.db.Query(`SELECT n FROM gc ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if fmt.Sprint(got) != "[1 3]" {
		t.Errorf("rows %v, want [1 3]", got)
	}
	s.queueMu.Lock()
	leading := s.leading
	s.queueMu.Unlock()
	if leading {
		t.Error("someone still leads with nothing queued")
	}
}

// TestGroupCommitFnContext: a write's statements run with its context's
// values but not its cancellation, so that SQLite's driver starts no
// watcher per statement inside the writer and a client that goes away
// mid-batch does not interrupt it.
func TestGroupCommitFnContext(t *testing.T) {
	type key struct{}
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cctx, cancel := context.WithCancel(context.WithValue(ctx, key{}, "v"))
	defer cancel()
	var done <-chan struct{}
	var val any
	if err := s.write(cctx, func(ctx context.Context, _ *sql.Tx) error {
		done, val = ctx.Done(), ctx.Value(key{})
		cancel() // the client goes away mid-write
		return nil
	}); err != nil {
		t.Fatalf("write whose client went away after it ran: %v", err)
	}
	if done != nil {
		t.Error("fn's context can be cancelled")
	}
	if val != "v" {
		t.Errorf("fn's context lost the write's values: %v", val)
	}
}

// TestGroupCommitsShareOneConnection: successive group commits run on one
// connection (SQLite.wconn), whose page cache no other connection's
// commit empties. A TEMP table is private to the connection that made
// it, so a later write that finds it ran on the same one; a read running
// meanwhile is served by another connection and does not see it.
func TestGroupCommitsShareOneConnection(t *testing.T) {
	ctx := context.Background()
	s := openGC(t)
	if err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TEMP TABLE probe (n INTEGER)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		var wg sync.WaitGroup
		for range 4 { // concurrent readers take pooled connections meanwhile
			wg.Add(1)
			go func() {
				defer wg.Done()
				var n int
				_ = s.db.QueryRow(`SELECT count(*) FROM gc`).Scan(&n)
			}()
		}
		err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO temp.probe(n) VALUES (?)`, i)
			return err
		})
		wg.Wait()
		if err != nil {
			t.Fatalf("write %d did not run on the writer's connection: %v", i, err)
		}
	}
	// The pool's other connections do not have the table.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM temp.probe`).Scan(&n); err == nil {
		t.Errorf("a pooled connection other than the writer's sees its TEMP table (%d rows)", n)
	}
	// After Close, writes fail cleanly and Close again is harmless.
	_ = s.Close()
	if err := s.write(ctx, func(context.Context, *sql.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
