package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// A write of a user's secrets is the API's busiest transaction, so it is
// sent in as few round trips as its logic allows (each one costs a wake-up
// on both sides, which is most of the CPU a request costs on a small
// machine). Its shape, with writeSecrets:
//
//  1. one batch: BEGIN; raise the user's secrets revision, which locks the
//     user's row (an UPDATE of a non-key column takes FOR NO KEY UPDATE)
//     until the commit, serializing the user's writers across replicas;
//     then what the write's open step queues (its read of the set, or the
//     delete itself);
//  2. the write's own step, which may send its last statements together
//     with the audit records (secretTx.finish);
//  3. COMMIT.
//
// A write that fails at any step rolls back everything, the raise and the
// audit records included, so the revision still moves only with a change.

// secretTx is the open transaction of one secret write.
type secretTx struct {
	tx     pgx.Tx
	ctx    context.Context
	staged bool
}

// queueAudit queues the audit records armed in the write's ctx
// (audit.InTx) into b, once per transaction.
func (t *secretTx) queueAudit(b *pgx.Batch) {
	if t.staged {
		return
	}
	t.staged = true
	queueAudit(t.ctx, b)
}

// finish sends b, the write's last statements, with the audit records in
// one round trip. read, if not nil, reads b's own results first (to name
// which statement failed); the audit inserts' results are read after.
func (t *secretTx) finish(b *pgx.Batch, read func(br pgx.BatchResults) error) error {
	n := b.Len()
	t.queueAudit(b)
	br := t.tx.SendBatch(t.ctx, b)
	if read != nil {
		if err := read(br); err != nil {
			_ = br.Close()
			return err
		}
	}
	if err := br.Close(); err != nil {
		if b.Len() > n {
			return fmt.Errorf("pgstore: stage audit records: %w", err)
		}
		return err
	}
	return nil
}

// writeSecrets runs one write of userID's secrets (see the shape above):
// open queues the statements that go with BEGIN and the lock, each with
// its own callback; fn, if not nil, continues in the transaction. Audit
// records neither queued are staged before the commit. Like tx, it runs
// the write again when the server aborted it for a deadlock or a
// serialization failure, and marks the records written after the commit.
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

func (s *Store) writeSecretsOnce(ctx context.Context, userID string, open func(t *secretTx, b *pgx.Batch), fn func(t *secretTx) error) (err error) {
	t := &secretTx{ctx: ctx}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(`UPDATE users SET secrets_revision = secrets_revision + 1 WHERE id = $1`, userID).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("pgstore: user %s: %w", userID, store.ErrNotFound)
		}
		return nil
	})
	open(t, b)
	br := s.pool.SendBatch(ctx, b)
	t.tx = br.Tx()
	// A Rollback after the commit, or of a transaction that never began,
	// only returns an error; a failed write always rolls back (and pgxpool
	// releases the connection either way).
	defer func() {
		if err != nil {
			_ = t.tx.Rollback(ctx)
		}
	}()
	if err := br.Close(); err != nil {
		return err
	}
	if fn != nil {
		if err := fn(t); err != nil {
			return err
		}
	}
	if !t.staged {
		if err := t.finish(&pgx.Batch{}, nil); err != nil {
			return err
		}
	}
	return t.tx.Commit(ctx)
}
