package store

import (
	"context"
	"database/sql"
	"fmt"
)

// writeReq is one write waiting for a group commit.
type writeReq struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
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
//  5. The leader repeats from 2 while requests are queued, then stops
//     leading.
//
// A request whose ctx ends while queued gets the ctx error and is not run.
//
// The audit records armed in ctx (audit.InTx) are appended after fn, in its
// savepoint, only when fn succeeds (see withAudit).
func (s *SQLite) write(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if err := s.check(); err != nil {
		return err
	}
	fn, written := s.withAudit(ctx, fn)
	defer func() {
		if err == nil {
			written()
		}
	}()
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.queueMu.Lock()
	s.queue = append(s.queue, req)
	lead := !s.leading
	s.leading = true
	s.queueMu.Unlock()
	if lead {
		s.lead()
	}
	err = <-req.done
	return err
}

// lead commits batches until the queue is empty (steps 2–5).
func (s *SQLite) lead() {
	for {
		s.queueMu.Lock()
		batch := s.queue
		s.queue = nil
		if len(batch) == 0 {
			s.leading = false
			s.queueMu.Unlock()
			return
		}
		s.queueMu.Unlock()
		s.commitBatch(batch)
	}
}

func (s *SQLite) commitBatch(batch []*writeReq) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	fail := func(err error, reqs []*writeReq) {
		for _, r := range reqs {
			r.done <- err
		}
	}
	// The batch is everyone's: no one request's ctx may cancel it.
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("store: begin: %w", err), batch)
		return
	}
	// The head is read again by the batch's first audit append; the
	// records' slice is kept for the next batch unless a burst grew it.
	s.batchHead = nil
	if cap(s.batchRecs) > 256 {
		s.batchRecs = nil
	}
	s.batchRecs = s.batchRecs[:0]
	errs := make([]error, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.Exec(`SAVEPOINT w`); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("store: savepoint: %w", err), batch)
			return
		}
		errs[i] = r.fn(tx)
		undo := `RELEASE w`
		if errs[i] != nil {
			undo = `ROLLBACK TO w; RELEASE w`
		}
		if _, err := tx.Exec(undo); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("store: savepoint: %w", err), batch)
			return
		}
	}
	if err := s.flushAudit(tx); err != nil {
		_ = tx.Rollback()
		fail(fmt.Errorf("store: audit head: %w", err), batch)
		return
	}
	s.maybeIndexInvolves(tx)
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("store: commit: %w", err), batch)
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}
