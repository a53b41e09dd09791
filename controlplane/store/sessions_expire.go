package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
)

// ExpireSessions implements Store.
func (s *SQLite) ExpireSessions(ctx context.Context, now time.Time, limit int, record func(Session) audit.Record) (int, error) {
	var n int
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `DELETE FROM sessions WHERE token_hash IN (
			SELECT token_hash FROM sessions WHERE expires_at > 0 AND expires_at <= ? ORDER BY expires_at LIMIT ?)
			RETURNING token_hash, user_id, created_at, expires_at`, nanos(now), limit)
		if err != nil {
			return err
		}
		var recs []audit.Record
		for rows.Next() {
			var sess Session
			var created, expires int64
			if err := rows.Scan(&sess.TokenHash, &sess.UserID, &created, &expires); err != nil {
				_ = rows.Close()
				return err
			}
			sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
			recs = append(recs, record(sess))
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := rows.Close(); err != nil {
			return err
		}
		n = len(recs)
		if n == 0 {
			return nil
		}
		return s.appendAudit(ctx, tx, recs)
	})
	return n, err
}
