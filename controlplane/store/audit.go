package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
)

// The audit log's SQL shared by both stores (issue 20). Each store appends
// the records that audit.InTx put in a write's context inside that write's
// transaction (see write and appendAudit), and AppendAudit appends a batch
// on its own.

// AuditCols are the audit_log columns in the order AuditArgs and ScanAudit
// use.
const AuditCols = `seq, at, actor_kind, actor_id, actor_name, source, user_agent, action,
	target_kind, target_id, target_name, target_owner, outcome, reason, details, request_id, replica,
	prev_hash, hash`

// AuditArgs returns r's column values in AuditCols order.
func AuditArgs(r audit.Record) []any { return appendAuditArgs(make([]any, 0, 19), r) }

// appendAuditArgs appends r's column values in AuditCols order to args.
func appendAuditArgs(args []any, r audit.Record) []any {
	return append(args, r.Seq, Nanos(r.Time), r.Actor.Kind, r.Actor.ID, r.Actor.Name, r.Source, r.UserAgent,
		r.Action, r.Target.Kind, r.Target.ID, r.Target.Name, r.Target.OwnerID, r.Outcome, r.Reason,
		string(r.Details), r.RequestID, r.Replica, nonNil(r.PrevHash), nonNil(r.Hash))
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ScanAudit reads one row of AuditCols.
func ScanAudit(scan func(dest ...any) error) (audit.Record, error) {
	var (
		r       audit.Record
		at      int64
		details string
	)
	err := scan(&r.Seq, &at, &r.Actor.Kind, &r.Actor.ID, &r.Actor.Name, &r.Source, &r.UserAgent,
		&r.Action, &r.Target.Kind, &r.Target.ID, &r.Target.Name, &r.Target.OwnerID, &r.Outcome, &r.Reason,
		&details, &r.RequestID, &r.Replica, &r.PrevHash, &r.Hash)
	r.Time = FromNanos(at)
	if details != "" {
		r.Details = json.RawMessage(details)
	}
	return r, err
}

// InvolvingCond is audit.Filter.Involving's condition, its one
// placeholder ("?") standing for the user ID three times: the actor is
// that user, the target is that user, or the target is that user's.
const InvolvingCond = `((actor_kind = 'user' AND actor_id = ?) OR (target_kind = 'user' AND target_id = ?) OR target_owner = ?)`

// AuditQuery returns the SELECT for f (already validated) and its
// arguments; ph(n) spells the n-th placeholder (1-based).
func AuditQuery(f audit.Filter, ph func(n int) string) (string, []any) {
	where, args := auditWhere(f, ph, nil)
	return auditSelect(`audit_log`, `seq`, where, f), args
}

// InvolvingQuery returns the SELECT for f (valid, with Involving set)
// through the side table audit_involves (migration 0013), and its
// arguments: the records up to mark, or all that it holds when mark < 0.
// join is how the dialect joins it to audit_log so that the side table's
// index drives the walk ("CROSS JOIN" in SQLite, which keeps that order;
// "JOIN" in PostgreSQL).
func InvolvingQuery(f audit.Filter, ph func(n int) string, join string, mark int64) (string, []any) {
	conds, args := []string{`user_id = ` + ph(1)}, []any{f.Involving}
	if mark >= 0 {
		args = append(args, mark)
		conds = append(conds, `rec <= `+ph(2))
	}
	g := f
	g.Involving = ""
	where, args := auditWhere(g, ph, args)
	return auditSelect(`audit_involves `+join+` audit_log ON seq = rec`, `rec`, append(conds, where...), f), args
}

// auditSelect is the SELECT of AuditCols from the table expression from,
// under where, ordered by the column seqCol, as f asks.
func auditSelect(from, seqCol string, where []string, f audit.Filter) string {
	order := "DESC"
	if f.Oldest {
		order = "ASC"
	}
	q := `SELECT ` + AuditCols + ` FROM ` + from
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	return q + fmt.Sprintf(` ORDER BY %s %s LIMIT %d`, seqCol, order, f.Limit)
}

// auditWhere returns f's conditions and their arguments, after the
// arguments in args (the placeholders count on from them).
func auditWhere(f audit.Filter, ph func(n int) string, args []any) ([]string, []any) {
	var where []string
	add := func(cond string, vals ...any) {
		for range vals {
			args = append(args, nil)
			cond = strings.Replace(cond, "?", ph(len(args)), 1)
		}
		copy(args[len(args)-len(vals):], vals)
		where = append(where, cond)
	}
	if f.Actor != "" {
		add(`(actor_id = ? OR lower(actor_name) = lower(?))`, f.Actor, f.Actor)
	}
	if a, ok := strings.CutSuffix(f.Action, "*"); ok {
		add(`substr(action, 1, ?) = ?`, len(a), a)
	} else if f.Action != "" {
		add(`action = ?`, f.Action)
	}
	if f.Target != "" {
		add(`(target_id = ? OR target_name = ?)`, f.Target, f.Target)
	}
	if f.Outcome != "" {
		add(`outcome = ?`, f.Outcome)
	}
	if f.Involving != "" {
		add(InvolvingCond, f.Involving, f.Involving, f.Involving)
	}
	if !f.Since.IsZero() {
		add(`at >= ?`, Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add(`at < ?`, Nanos(f.Until))
	}
	if f.After > 0 {
		add(`seq > ?`, f.After)
	}
	if f.Before > 0 {
		add(`seq < ?`, f.Before)
	}
	return where, args
}

// scopeOf is a scope for the audit record: [] (every workspace) for none.
func scopeOf(ws []string) []string {
	if len(ws) == 0 {
		return []string{}
	}
	return ws
}

// SecretDiff is the Details of an updated secret: for each field that
// changed, old and new for env_name, file_path, enabled and workspaces,
// that it changed for the description,
// and only that it changed for the value (never the value).
func SecretDiff(old, cur Secret) map[string]any {
	d := map[string]any{}
	if old.EnvName != cur.EnvName {
		d["env_name"] = audit.Change{Old: old.EnvName, New: cur.EnvName, Changed: true}
	}
	if old.FilePath != cur.FilePath {
		d["file_path"] = audit.Change{Old: old.FilePath, New: cur.FilePath, Changed: true}
	}
	if old.Enabled != cur.Enabled {
		d["enabled"] = audit.Change{Old: old.Enabled, New: cur.Enabled, Changed: true}
	}
	if old.Description != cur.Description {
		d["description"] = audit.Change{Changed: true}
	}
	if !slices.Equal(old.Workspaces, cur.Workspaces) {
		// A scope is names and globs, not a value: both are shown, an
		// empty list meaning every workspace.
		d["workspaces"] = audit.Change{Old: scopeOf(old.Workspaces), New: scopeOf(cur.Workspaces), Changed: true}
	}
	if string(old.Value) != string(cur.Value) || old.Format != cur.Format {
		d["value"] = audit.Change{Changed: true}
	}
	return d
}

// NoteSecretDiff puts SecretDiff into the record a store write under ctx
// appends, if any.
func NoteSecretDiff(ctx context.Context, old, cur Secret) {
	if p := audit.Armed(ctx); p != nil {
		p.Update(func(r *audit.Record) {
			r.Details = audit.Details(map[string]any{"changed": SecretDiff(old, cur)})
		})
	}
}

// appendAudit chains recs after the head, in tx's batch. It runs under
// writeMu, inside commitBatch: the head is read once per batch and kept in
// s.batchHead; the chained records wait in s.batchRecs and are inserted,
// with the head written back, once, just before the batch commits
// (flushAudit) — so they are in the same transaction as the change, and
// the one writer every write waits for runs a few multi-row statements per
// batch instead of three statements per change. It executes no write
// itself, so a request whose savepoint is rolled back (its fn failed, and
// then appendAudit was not called) leaves nothing behind.
func (s *SQLite) appendAudit(ctx context.Context, tx *sql.Tx, recs []audit.Record) error {
	if s.batchHead == nil {
		var head audit.Head
		if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.Seq, &head.Hash); err != nil {
			return fmt.Errorf("store: audit head: %w", err)
		}
		s.batchHead = &head
	}
	head := *s.batchHead
	for _, r := range recs {
		head = audit.Chain(head, &r)
		s.batchRecs = append(s.batchRecs, r)
	}
	*s.batchHead = head
	return nil
}

// auditChunks are the row counts of the multi-row INSERTs flushAudit
// uses (largest first), so that few statement texts are ever prepared;
// auditInserts are their texts.
var (
	auditChunks  = []int{64, 32, 16, 8, 4, 2, 1}
	auditInserts = func() map[int]string {
		m := map[int]string{}
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", 19), ", ") + ")"
		for _, n := range auditChunks {
			m[n] = `INSERT INTO audit_log(` + AuditCols + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
		}
		return m
	}()
)

// flushAudit inserts the batch's chained records and writes its head.
func (s *SQLite) flushAudit(tx *sql.Tx) error {
	recs := s.batchRecs
	if len(recs) == 0 {
		return nil
	}
	args := make([]any, 0, min(len(recs), auditChunks[0])*19)
	for _, n := range auditChunks {
		for len(recs) >= n {
			args = args[:0]
			for _, r := range recs[:n] {
				args = appendAuditArgs(args, r)
			}
			if _, err := tx.Exec(auditInserts[n], args...); err != nil {
				return fmt.Errorf("append audit records: %w", err)
			}
			recs = recs[n:]
		}
	}
	_, err := tx.Exec(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, s.batchHead.Seq, s.batchHead.Hash)
	return err
}

// withAudit wraps a write's fn so that it also appends the records armed
// in ctx (audit.InTx), after fn succeeded and in its transaction. The
// returned mark tells the Pending once the write is durable.
func (s *SQLite) withAudit(ctx context.Context, fn txFunc) (txFunc, func()) {
	p := audit.Armed(ctx)
	if p == nil {
		return fn, func() {}
	}
	return func(ctx context.Context, tx *sql.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		if _, recs := audit.ToWrite(ctx); len(recs) > 0 {
			return s.appendAudit(ctx, tx, recs)
		}
		return nil
	}, p.MarkWritten
}

// AppendAudit implements Store.
func (s *SQLite) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.appendAudit(ctx, tx, append([]audit.Record(nil), recs...))
	})
}

// ListAudit implements Store.
func (s *SQLite) ListAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.Involving != "" {
		return s.listInvolving(ctx, f)
	}
	q, args := AuditQuery(f, func(int) string { return "?" })
	return s.queryAudit(ctx, q, args)
}

// AuditState implements Store.
func (s *SQLite) AuditState(ctx context.Context) (audit.State, error) {
	if err := s.check(); err != nil {
		return audit.State{}, err
	}
	var st audit.State
	err := s.db.QueryRowContext(ctx, `SELECT h.seq, h.hash, c.seq, c.hash FROM audit_head h, audit_checkpoint c
		WHERE h.id = 1 AND c.id = 1`).Scan(&st.Head.Seq, &st.Head.Hash, &st.Checkpoint.Seq, &st.Checkpoint.Hash)
	return st, err
}

// PruneAudit implements Store.
func (s *SQLite) PruneAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var last audit.Head
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log WHERE seq IN
			(SELECT seq FROM audit_log WHERE at < ? ORDER BY seq LIMIT ?) ORDER BY seq DESC LIMIT 1`,
			Nanos(before), limit).Scan(&last.Seq, &last.Hash)
		if err == sql.ErrNoRows {
			n = 0
			return nil
		}
		if err != nil {
			return err
		}
		// The side entries first: they are found from the records.
		if _, err := tx.ExecContext(ctx, pruneInvolvesSQL, last.Seq); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE seq <= ?`, last.Seq)
		if err != nil {
			return err
		}
		m, _ := res.RowsAffected()
		n = int(m)
		_, err = tx.ExecContext(ctx, `UPDATE audit_checkpoint SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash)
		return err
	})
	return n, err
}
