package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// A write of a user's secrets is the API's busiest transaction, so it is
// sent in as few round trips as its logic allows (each one costs a wake-up
// on both sides, which is most of the CPU a request costs on a small
// machine). It runs on a connection held from the pool rather than in a
// pgx.Tx, because a pgx.Tx sends its COMMIT alone: here BEGIN travels in
// the first batch and COMMIT in the last. Its shape, with writeSecrets:
//
//  1. one batch: BEGIN; raise the user's secrets revision, which locks the
//     user's row (an UPDATE of a non-key column takes FOR NO KEY UPDATE)
//     until the commit, serializing the user's writers across replicas;
//     then what the write's open step queues (its read of the set, or the
//     delete itself);
//  2. the write's own step, if it has one, whose last batch carries its
//     statements, the audit records and COMMIT (secretTx.finish). A write
//     without one (a delete) puts its records and COMMIT in the first
//     batch: one round trip in all.
//
// Since COMMIT is sent before the batch's results are read, a batch that
// carries it must fail on the server, not in Go, whenever the write must
// not happen: a statement that fails makes the server skip the rest of
// the batch, COMMIT included, and the transaction is rolled back. So the
// delete asserts that it found its secret with courier_found (migration
// 0015), which raises no_data_found.
//
// A write that fails at any step rolls back everything, the raise and the
// audit records included, so the revision still moves only with a change.

// codeNoData is no_data_found, which courier_found raises.
const codeNoData = "P0002"

// secretTx is the open transaction of one secret write.
type secretTx struct {
	conn   *pgxpool.Conn
	ctx    context.Context
	staged bool // the audit records are queued
	done   bool // COMMIT was sent and succeeded
}

// queueAudit queues the audit records armed in the write's ctx
// (audit.InTx), once per transaction.
func (t *secretTx) queueAudit(b *pgx.Batch) {
	if t.staged {
		return
	}
	t.staged = true
	queueAudit(t.ctx, b)
}

// send sends b and reads its results. read, if not nil, first reads the
// results of the write's own statements itself, so that its error names
// the statement that failed; Close then reads the rest, running their
// callbacks. An error from the server there is the write's: a delete that
// found nothing (courier_found) is store.ErrNotFound, anything else is
// wrapped with what was being done.
func (t *secretTx) send(b *pgx.Batch, read func(br pgx.BatchResults) error) error {
	br := t.conn.SendBatch(t.ctx, b)
	if read != nil {
		if err := read(br); err != nil {
			_ = br.Close()
			return err
		}
	}
	err := br.Close()
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &pe):
		return err // a callback's own error, or the connection's
	case pe.Code == codeNoData:
		return store.ErrNotFound
	}
	return fmt.Errorf("pgstore: write secrets: %w", err)
}

// finish sends b, the write's last statements, with the audit records (if
// not queued yet) and COMMIT in one round trip. read is as for send.
func (t *secretTx) finish(b *pgx.Batch, read func(br pgx.BatchResults) error) error {
	t.queueAudit(b)
	b.Queue(`COMMIT`)
	if err := t.send(b, read); err != nil {
		return err
	}
	t.done = true
	return nil
}

// end ends the transaction if it is still open (a failed write) and
// returns the connection to the pool. pgxpool closes a connection that is
// still in a transaction (the ROLLBACK failed) instead of reusing it.
func (t *secretTx) end() {
	pc := t.conn.Conn().PgConn()
	if !t.done && !pc.IsClosed() && pc.TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), rollbackTimeout)
		_, _ = pc.Exec(ctx, `ROLLBACK`).ReadAll()
		cancel()
	}
	t.conn.Release()
}

// rollbackTimeout bounds the ROLLBACK of a failed write, which runs even
// when the write's context has ended.
const rollbackTimeout = 5 * time.Second

// writeSecrets runs one write of userID's secrets (see the shape above):
// open queues the statements that go with BEGIN and the lock, each with
// its own callback; fn, if not nil, continues in the transaction and ends
// with finish. Audit records neither queued are staged with the commit.
// Like tx, it runs the write again when the server aborted it for a
// deadlock or a serialization failure, and marks the records written after
// the commit.
func (s *Store) writeSecrets(ctx context.Context, userID string, open func(t *secretTx, b *pgx.Batch), fn func(t *secretTx) error) error {
	if err := s.check(); err != nil {
		return err
	}
	p := audit.Armed(ctx)
	for attempt := 1; ; attempt++ {
		err := s.writeSecretsOnce(ctx, userID, open, fn)
		if attempt < maxAttempts && retryable(err) {
			continue
		}
		if err == nil && p != nil {
			p.MarkWritten()
		}
		return err
	}
}

func (s *Store) writeSecretsOnce(ctx context.Context, userID string, open func(t *secretTx, b *pgx.Batch), fn func(t *secretTx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	t := &secretTx{conn: conn, ctx: ctx}
	defer t.end()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`UPDATE users SET secrets_revision = secrets_revision + 1 WHERE id = $1`, userID).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("pgstore: user %s: %w", userID, store.ErrNotFound)
		}
		return nil
	})
	open(t, b)
	if fn == nil {
		return t.finish(b, nil)
	}
	if err := t.send(b, nil); err != nil {
		return err
	}
	if err := fn(t); err != nil {
		return err
	}
	if !t.done {
		return t.finish(&pgx.Batch{}, nil)
	}
	return nil
}
