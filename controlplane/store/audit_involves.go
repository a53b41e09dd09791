package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
	"go.uber.org/zap"
)

// A user's own audit records on SQLite (audit.Filter.Involving), without a
// per-user index on audit_log (see migration 0013).
//
// audit_involves maps each record to the users it involves. Keeping it in
// step with every append would dirty one index page per user in every
// group commit, which is what the per-user indexes cost; instead the group
// commit fills it in bulk, for every record since audit_involves_mark, at
// most once per involvesEvery. A read takes the indexed records up to the
// mark from it and scans the records after the mark, which are at most
// about involvesEvery's worth of appends.

// involvesEvery is how often, at most, a group commit indexes the records
// appended since the last time.
const involvesEvery = time.Second

// involvedUsers selects (user_id, rec) for every user each record of
// audit_log in the range cond involves: its actor if a user, its target if
// a user, its target's owner. Each record is read once (CROSS JOIN keeps
// audit_log the outer loop) and yields each of those users once: the
// usual record, a user acting on what they own, yields one row, not two.
func involvedUsers(cond string) string {
	return `SELECT user_id, rec FROM (
		SELECT seq AS rec, CASE k
			WHEN 0 THEN CASE WHEN actor_kind = 'user' THEN actor_id END
			WHEN 1 THEN CASE WHEN target_kind = 'user'
				AND NOT (actor_kind = 'user' AND target_id = actor_id) AND target_id != target_owner THEN target_id END
			ELSE CASE WHEN NOT (actor_kind = 'user' AND target_owner = actor_id) THEN target_owner END
			END AS user_id
		FROM audit_log CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2)
		WHERE ` + cond + `)
	WHERE user_id IS NOT NULL AND user_id != ''`
}

// indexInvolvesSQL adds the records after the mark to audit_involves
// (sorted by its key, so that each page is written once) and moves the
// mark to the head, which flushAudit has already advanced in this
// transaction.
var indexInvolvesSQL = `INSERT OR IGNORE INTO audit_involves(user_id, rec) ` +
	involvedUsers(`seq > (SELECT seq FROM audit_involves_mark WHERE id = 1)`) + ` ORDER BY user_id, rec;
UPDATE audit_involves_mark SET seq = (SELECT seq FROM audit_head WHERE id = 1)
	WHERE id = 1 AND seq != (SELECT seq FROM audit_head WHERE id = 1)`

// pruneInvolvesSQL deletes the entries of the records up to seq ?, by
// key: the users each of them involves, computed as indexing does.
var pruneInvolvesSQL = `DELETE FROM audit_involves WHERE (user_id, rec) IN (` + involvedUsers(`seq <= ?`) + `)`

// maybeIndexInvolves runs indexInvolvesSQL in tx, the group commit's
// transaction under writeMu, when involvesEvery has passed since the last
// run. It is an index, not a record: if it fails, it is undone alone (the
// batch commits without it), logged, and tried again next time.
func (s *SQLite) maybeIndexInvolves(tx *sql.Tx) {
	now := time.Now()
	if now.Sub(s.involvesAt) < s.involvesEvery {
		return
	}
	s.involvesAt = now
	if _, err := tx.Exec(`SAVEPOINT involves`); err != nil {
		s.log.Warn("audit: indexing users' records failed", zap.Error(err))
		return
	}
	undo := `RELEASE involves`
	if _, err := tx.Exec(indexInvolvesSQL); err != nil {
		s.log.Warn("audit: indexing users' records failed; trying again later", zap.Error(err))
		undo = `ROLLBACK TO involves; RELEASE involves`
	}
	if _, err := tx.Exec(undo); err != nil {
		s.log.Warn("audit: indexing users' records failed", zap.Error(err))
	}
}

// listInvolving is ListAudit for a filter with Involving set (f is
// valid). It reads the mark once: the records up to it come through
// audit_involves, which holds all of them, and the records after it by
// scanning from the mark. Records are only ever appended after the head
// and the mark only moves once they are indexed, so the two parts neither
// overlap nor miss a record, without a transaction around both.
func (s *SQLite) listInvolving(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	var mark int64
	if err := s.db.QueryRowContext(ctx, `SELECT seq FROM audit_involves_mark WHERE id = 1`).Scan(&mark); err != nil {
		return nil, err
	}
	ph := func(int) string { return "?" }

	// After the mark: the plain query, from the mark on.
	tailF := f
	tailF.After = max(f.After, mark)
	tailQ, tailArgs := AuditQuery(tailF, ph)

	// Up to the mark: walk the user's index entries in order and join each
	// to its record, stopping at the page's limit.
	idxQ := func(limit int) (string, []any) {
		g := f
		g.Limit = limit
		return InvolvingQuery(g, ph, "CROSS JOIN", mark)
	}

	// Newest first reads the tail first; oldest first, the indexed part.
	first, firstArgs, second := tailQ, tailArgs, idxQ
	if f.Oldest {
		first, firstArgs = idxQ(f.Limit)
		second = func(n int) (string, []any) {
			g := tailF
			g.Limit = n
			return AuditQuery(g, ph)
		}
	}
	out, err := s.queryAudit(ctx, first, firstArgs)
	if err != nil || len(out) >= f.Limit {
		return out, err
	}
	q, args := second(f.Limit - len(out))
	more, err := s.queryAudit(ctx, q, args)
	return append(out, more...), err
}

// queryAudit runs a SELECT of AuditCols.
func (s *SQLite) queryAudit(ctx context.Context, q string, args []any) ([]audit.Record, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := ScanAudit(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
