package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// auditInsert inserts one record (store.AuditCols order).
var auditInsert = func() string {
	ph := make([]string, 19)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return `INSERT INTO audit_log(` + store.AuditCols + `) VALUES (` + strings.Join(ph, ", ") + `)`
}()

// appendAudit chains recs after the head and inserts them, in tx. It locks
// the head row (FOR UPDATE), which serializes appends across replicas: it
// is meant to be the last step of a transaction, so the lock is held only
// until the commit.
func appendAudit(ctx context.Context, tx pgx.Tx, recs []audit.Record) error {
	var head audit.Head
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&head.Seq, &head.Hash); err != nil {
		return fmt.Errorf("pgstore: audit head: %w", err)
	}
	if len(recs) == 1 {
		head = audit.Chain(head, &recs[0])
		if _, err := tx.Exec(ctx, auditInsert, store.AuditArgs(recs[0])...); err != nil {
			return fmt.Errorf("pgstore: append audit record: %w", err)
		}
	} else {
		b := &pgx.Batch{}
		for _, r := range recs {
			head = audit.Chain(head, &r)
			b.Queue(auditInsert, store.AuditArgs(r)...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("pgstore: append audit records: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, head.Seq, head.Hash); err != nil {
		return fmt.Errorf("pgstore: audit head: %w", err)
	}
	return nil
}

// withAudit wraps a transaction's fn so that it also appends the records
// armed in ctx (audit.InTx), after fn succeeded, as the transaction's last
// step. The returned mark tells the Pending once the commit succeeded.
func withAudit(ctx context.Context, fn func(tx pgx.Tx) error) (func(tx pgx.Tx) error, func()) {
	p := audit.Armed(ctx)
	if p == nil {
		return fn, func() {}
	}
	return func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if _, recs := audit.ToWrite(ctx); len(recs) > 0 {
			return appendAudit(ctx, tx, append([]audit.Record(nil), recs...))
		}
		return nil
	}, p.MarkWritten
}

// exec runs one statement: directly, or in a transaction with the audit
// records armed in ctx when there are any.
func (s *Store) exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error) {
	if audit.Armed(ctx) == nil {
		return s.pool.Exec(ctx, q, args...)
	}
	var tag pgconn.CommandTag
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		tag, err = tx.Exec(ctx, q, args...)
		return err
	})
	return tag, err
}

// AppendAudit implements store.Store.
func (s *Store) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error { return appendAudit(ctx, tx, append([]audit.Record(nil), recs...)) })
}

// ListAudit implements store.Store.
func (s *Store) ListAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q, args := store.AuditQuery(f, func(n int) string { return "$" + strconv.Itoa(n) })
	rows, err := s.pool.Query(ctx, q, args...)
	return collect(rows, err, func(r rowScanner) (audit.Record, error) { return store.ScanAudit(r.Scan) })
}

// AuditState implements store.Store.
func (s *Store) AuditState(ctx context.Context) (audit.State, error) {
	if err := s.check(); err != nil {
		return audit.State{}, err
	}
	var st audit.State
	err := s.pool.QueryRow(ctx, `SELECT h.seq, h.hash, c.seq, c.hash FROM audit_head h, audit_checkpoint c
		WHERE h.id = 1 AND c.id = 1`).Scan(&st.Head.Seq, &st.Head.Hash, &st.Checkpoint.Seq, &st.Checkpoint.Hash)
	return st, err
}

// PruneAudit implements store.Store. The checkpoint row is locked first, so
// two replicas pruning at once take turns.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx pgx.Tx) error {
		n = 0
		if _, err := tx.Exec(ctx, `SELECT 1 FROM audit_checkpoint WHERE id = 1 FOR UPDATE`); err != nil {
			return err
		}
		var last audit.Head
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log WHERE seq IN
			(SELECT seq FROM audit_log WHERE at < $1 ORDER BY seq LIMIT $2) ORDER BY seq DESC LIMIT 1`,
			store.Nanos(before), limit).Scan(&last.Seq, &last.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM audit_log WHERE seq <= $1`, last.Seq)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, `UPDATE audit_checkpoint SET seq = $1, hash = $2 WHERE id = 1`, last.Seq, last.Hash)
		return err
	})
	return n, err
}
