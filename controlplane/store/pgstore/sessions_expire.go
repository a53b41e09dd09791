package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// ExpireSessions implements store.Store. DELETE … RETURNING under
// FOR UPDATE SKIP LOCKED lets replicas sweeping at once take disjoint
// sessions; the records are staged in the same transaction and chained
// after it, as every other write's are.
func (s *Store) ExpireSessions(ctx context.Context, now time.Time, limit int, record func(store.Session) audit.Record) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int
	err := s.tx(ctx, func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE token_hash IN (
			SELECT token_hash FROM sessions WHERE expires_at > 0 AND expires_at <= $1
			ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
			RETURNING token_hash, user_id, created_at, expires_at`, nanos(now), limit)
		if err != nil {
			return err
		}
		var recs []audit.Record
		for rows.Next() {
			var sess store.Session
			var created, expires int64
			if err := rows.Scan(&sess.TokenHash, &sess.UserID, &created, &expires); err != nil {
				rows.Close()
				return err
			}
			sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
			recs = append(recs, record(sess))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		n = len(recs)
		if n == 0 {
			return nil
		}
		return stage(ctx, tx, recs)
	})
	if err != nil || n == 0 {
		return n, err
	}
	return n, s.chainPending(ctx)
}
