package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// auditInsert inserts one chained record (store.AuditCols order).
var auditInsert = func() string {
	ph := make([]string, 19)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return `INSERT INTO audit_log(` + store.AuditCols + `) VALUES (` + strings.Join(ph, ", ") + `)`
}()

// pendingCols are audit_pending's record columns: AuditCols without seq,
// prev_hash and hash.
const pendingCols = `at, actor_kind, actor_id, actor_name, source, user_agent, action,
	target_kind, target_id, target_name, target_owner, outcome, reason, details, request_id, replica`

const pendingInsert = `INSERT INTO audit_pending(` + pendingCols + `) VALUES
	($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

// stage inserts recs, unchained, into audit_pending in tx: the change's
// own transaction, which takes no lock on the chain (see the migration).
func stage(ctx context.Context, tx pgx.Tx, recs []audit.Record) error {
	b := &pgx.Batch{}
	queueRecords(b, recs)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("pgstore: stage audit records: %w", err)
	}
	return nil
}

// involvesInsert adds the records seq $1..$2 to audit_involves.
const involvesInsert = `INSERT INTO audit_involves(rec, user_id)
	SELECT seq, actor_id FROM audit_log WHERE seq BETWEEN $1 AND $2 AND actor_kind = 'user' AND actor_id <> ''
	UNION SELECT seq, target_id FROM audit_log WHERE seq BETWEEN $1 AND $2 AND target_kind = 'user' AND target_id <> ''
	UNION SELECT seq, target_owner FROM audit_log WHERE seq BETWEEN $1 AND $2 AND target_owner <> ''
	ON CONFLICT DO NOTHING`

// involvesPrune deletes the audit_involves entries of the records up to
// seq $1, by key (user_id, rec): the users each record involves, computed
// as involvesInsert does.
const involvesPrune = `DELETE FROM audit_involves WHERE (user_id, rec) IN (
	SELECT actor_id, seq FROM audit_log WHERE seq <= $1 AND actor_kind = 'user' AND actor_id <> ''
	UNION SELECT target_id, seq FROM audit_log WHERE seq <= $1 AND target_kind = 'user' AND target_id <> ''
	UNION SELECT target_owner, seq FROM audit_log WHERE seq <= $1 AND target_owner <> '')`

// queueRecords queues the inserts of recs into audit_pending, cleaned
// first (PostgreSQL's TEXT refuses what audit.Record.Clean removes).
func queueRecords(b *pgx.Batch, recs []audit.Record) {
	for _, r := range recs {
		r.Clean()
		args := store.AuditArgs(r)
		b.Queue(pendingInsert, args[1:17]...) // without seq, prev_hash, hash
	}
}

// queueAudit queues the records armed in ctx (audit.InTx), if any, for
// the transaction b is sent in.
func queueAudit(ctx context.Context, b *pgx.Batch) {
	if _, recs := audit.ToWrite(ctx); len(recs) > 0 {
		queueRecords(b, recs)
	}
}

// chainBatch is how many pending records one chaining transaction moves.
const chainBatch = 1000

// chainPending moves the pending records into the chain, in id order: it
// locks the head (FOR UPDATE SKIP LOCKED: when another writer or replica
// is chaining it returns at once, and that one chains them), takes the
// committed pending records, chains them after the head, inserts them and
// moves the head, in one transaction. Writers call it after staging.
func (s *Store) chainPending(ctx context.Context) error { return s.chain(ctx, headSkipLocked) }

// chainAll is chainPending for readers: it waits for a chainer holding the
// head to commit, then chains what is left, so every record committed
// before the call is in the chain when it returns. Skipping instead would
// let a list miss records that another chainer had taken and not yet
// committed.
func (s *Store) chainAll(ctx context.Context) error { return s.chain(ctx, headLocked) }

// The head's lock, skipping or waiting for another chainer.
const (
	headSkipLocked = `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE SKIP LOCKED`
	headLocked     = `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`
)

func (s *Store) chain(ctx context.Context, lockHead string) error {
	for {
		n := 0
		err := s.tx(ctx, func(tx pgx.Tx) error {
			n = 0
			var head audit.Head
			err := tx.QueryRow(ctx, lockHead).Scan(&head.Seq, &head.Hash)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // another chainer holds it
			}
			if err != nil {
				return fmt.Errorf("pgstore: audit head: %w", err)
			}
			rows, err := tx.Query(ctx, `DELETE FROM audit_pending WHERE id IN
				(SELECT id FROM audit_pending ORDER BY id LIMIT $1) RETURNING id, `+pendingCols, chainBatch)
			type staged struct {
				id  int64
				rec audit.Record
			}
			recs, err := collect(rows, err, func(r rowScanner) (staged, error) {
				var st staged
				rec, err := store.ScanAudit(func(dest ...any) error {
					// dest is AuditCols' order; audit_pending has no seq,
					// prev_hash or hash.
					return r.Scan(append([]any{&st.id}, dest[1:17]...)...)
				})
				st.rec = rec
				return st, err
			})
			if err != nil {
				return fmt.Errorf("pgstore: take pending audit records: %w", err)
			}
			if len(recs) == 0 {
				return nil
			}
			sort.Slice(recs, func(i, j int) bool { return recs[i].id < recs[j].id })
			b := &pgx.Batch{}
			first := head.Seq + 1
			for _, st := range recs {
				head = audit.Chain(head, &st.rec)
				b.Queue(auditInsert, store.AuditArgs(st.rec)...)
			}
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("pgstore: chain audit records: %w", err)
			}
			// The users each record involves, for their own pages (see
			// migration 0013), in one statement over the batch just chained.
			if _, err := tx.Exec(ctx, involvesInsert, first, head.Seq); err != nil {
				return fmt.Errorf("pgstore: index audit records: %w", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, head.Seq, head.Hash); err != nil {
				return fmt.Errorf("pgstore: audit head: %w", err)
			}
			n = len(recs)
			return nil
		})
		if err != nil || n < chainBatch {
			return err
		}
	}
}

// withAudit wraps a transaction's fn so that it also stages the records
// armed in ctx (audit.InTx), after fn succeeded, in its transaction. The
// returned mark tells the Pending once the commit succeeded.
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
			return stage(ctx, tx, recs)
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

// AppendAudit implements store.Store: it stages recs, then chains.
func (s *Store) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.tx(ctx, func(tx pgx.Tx) error { return stage(ctx, tx, recs) }); err != nil {
		return err
	}
	return s.chainPending(ctx)
}

// ListAudit implements store.Store.
func (s *Store) ListAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.chainAll(ctx); err != nil {
		return nil, err
	}
	ph := func(n int) string { return "$" + strconv.Itoa(n) }
	q, args := store.AuditQuery(f, ph)
	if f.Involving != "" {
		// Every chained record is in audit_involves (chain).
		q, args = store.InvolvingQuery(f, ph, "JOIN", -1)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	return collect(rows, err, func(r rowScanner) (audit.Record, error) { return store.ScanAudit(r.Scan) })
}

// AuditState implements store.Store. Like ListAudit, it chains the
// pending records first, so a record is in the chain by the time anyone
// reads it.
func (s *Store) AuditState(ctx context.Context) (audit.State, error) {
	if err := s.check(); err != nil {
		return audit.State{}, err
	}
	if err := s.chainAll(ctx); err != nil {
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
		// The side entries first: they are found from the records.
		if _, err := tx.Exec(ctx, involvesPrune, last.Seq); err != nil {
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
