package store

import (
	"context"
	"database/sql"
	"fmt"
)

// txFunc is a write's statements, run in tx. Its ctx is the write's,
// without its cancellation: see write.
type txFunc func(ctx context.Context, tx *sql.Tx) error

// writeReq is one write waiting for a group commit.
type writeReq struct {
	ctx  context.Context
	fn   txFunc
	done chan error
	lead chan struct{}
}

// write runs fn in a write transaction and returns once it is durable.
//
// Writers that arrive while another batch commits are committed together
// (group commit), so N concurrent writes cost one WAL fsync, not N — what
// lets thousands of reconnecting agents record their status at once. The
// semantics stay those of one transaction per write, run one after
// another:
//  1. A writer queues its request; if no writer is leading, it leads.
//  2. The leader takes writeMu, takes every queued request, and begins one
//     transaction.
//  3. Each request's fn runs inside its own SAVEPOINT, in queue order,
//     seeing the writes of those before it; a fn that fails is rolled
//     back to its savepoint alone and gets its own error.
//  4. One COMMIT makes the batch durable; every request gets its fn's
//     error, or the commit's error for all.
//  5. The leader hands the lead to the writer of the first request queued
//     meanwhile, which goes on from 2; with none queued, no one leads.
//
// A request whose ctx ends while queued gets the ctx error and is not run.
// Once it runs, fn gets ctx's values without its cancellation
// (context.WithoutCancel): the batch does not stop for one writer whose
// client went away, and SQLite's driver, handed a context that can end,
// starts a goroutine per statement to watch it, inside the serial writer.
//
// The audit records armed in ctx (audit.InTx) are appended after fn, in its
// savepoint, only when fn succeeds (see withAudit).
func (s *SQLite) write(ctx context.Context, fn txFunc) (err error) {
	if err := s.check(); err != nil {
		return err
	}
	fn, written := s.withAudit(ctx, fn)
	defer func() {
		if err == nil {
			written()
		}
	}()
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	s.queueMu.Lock()
	s.queue = append(s.queue, req)
	lead := !s.leading
	s.leading = true
	s.queueMu.Unlock()
	if lead {
		s.lead()
	}
	select {
	case err = <-req.done:
	case <-req.lead:
		s.lead()
		err = <-req.done
	}
	return err
}

// lead commits one batch, tells its writers their results, and hands the
// lead to the first writer queued meanwhile, if any (steps 2–5).
//
// Each batch has its own leader because a goroutine that leads batch after
// batch runs long enough for the scheduler to preempt it, typically while
// it wakes the writers of a batch, and a preempted goroutine waits behind
// every runnable one: meanwhile no batch commits, and every queued write
// waits too. That was most of the writes' p99 latency at a paced 3,300
// requests a second (BenchmarkCreateListAt3300, see BENCHMARKS.md).
// Handing the lead over before the results instead measured no better.
func (s *SQLite) lead() {
	s.queueMu.Lock()
	batch := s.queue
	s.queue = nil
	s.queueMu.Unlock()
	errs := s.commitBatch(batch)
	for i, r := range batch {
		r.done <- errs[i]
	}
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	if len(s.queue) == 0 {
		s.leading = false
		return
	}
	s.queue[0].lead <- struct{}{}
}

// beginWrite begins a batch's transaction on the writer's connection
// (see SQLite.wconn), opening it first if need be. It runs under writeMu.
// A connection that cannot begin is given back to the pool (which drops
// it if it is broken), and the next batch takes another.
func (s *SQLite) beginWrite() (*sql.Tx, error) {
	if s.wconn == nil {
		c, err := s.db.Conn(context.Background())
		if err != nil {
			return nil, err
		}
		s.wconn = c
	}
	tx, err := s.wconn.BeginTx(context.Background(), nil)
	if err != nil {
		s.dropWriterConn()
	}
	return tx, err
}

// dropWriterConn gives the writer's connection back to the pool, if one
// is held. It runs under writeMu.
func (s *SQLite) dropWriterConn() {
	if s.wconn != nil {
		_ = s.wconn.Close()
		s.wconn = nil
	}
}

// commitBatch runs batch in one transaction, each request in its own
// savepoint, and returns each request's result: its fn's error, or the
// error that failed the whole batch.
func (s *SQLite) commitBatch(batch []*writeReq) []error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	errs := make([]error, len(batch))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// The batch is everyone's: no one request's ctx may cancel it.
	tx, err := s.beginWrite()
	if err != nil {
		return fail(fmt.Errorf("store: begin: %w", err))
	}
	// The head is read again by the batch's first audit append; the
	// records' slice is kept for the next batch unless a burst grew it.
	s.batchHead = nil
	if cap(s.batchRecs) > 256 {
		s.batchRecs = nil
	}
	s.batchRecs = s.batchRecs[:0]
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.Exec(`SAVEPOINT w`); err != nil {
			_ = tx.Rollback()
			return fail(fmt.Errorf("store: savepoint: %w", err))
		}
		errs[i] = r.fn(context.WithoutCancel(r.ctx), tx)
		undo := `RELEASE w`
		if errs[i] != nil {
			undo = `ROLLBACK TO w; RELEASE w`
		}
		if _, err := tx.Exec(undo); err != nil {
			_ = tx.Rollback()
			return fail(fmt.Errorf("store: savepoint: %w", err))
		}
	}
	if err := s.flushAudit(tx); err != nil {
		_ = tx.Rollback()
		return fail(fmt.Errorf("store: audit head: %w", err))
	}
	s.maybeIndexInvolves(tx)
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("store: commit: %w", err))
	}
	return errs
}
