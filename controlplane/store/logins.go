package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// UpdateLoginCounters implements Store.
func (s *SQLite) UpdateLoginCounters(ctx context.Context, keys []string, fn LoginCounterFunc) ([]LoginCounter, error) {
	var out []LoginCounter
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cur := make([]LoginCounter, len(keys))
		for i, k := range keys {
			cur[i].Key = k
			var last, locked int64
			err := tx.QueryRowContext(ctx, `SELECT failures, last_at, locked_until FROM login_counters WHERE key = ?`, k).
				Scan(&cur[i].Failures, &last, &locked)
			switch {
			case err == sql.ErrNoRows:
			case err != nil:
				return fmt.Errorf("store: read login counter: %w", err)
			default:
				cur[i].LastAt, cur[i].LockedUntil = fromNanos(last), fromNanos(locked)
			}
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		for _, c := range next {
			if c.Failures <= 0 && c.LockedUntil.IsZero() {
				if _, err := tx.ExecContext(ctx, `DELETE FROM login_counters WHERE key = ?`, c.Key); err != nil {
					return fmt.Errorf("store: delete login counter: %w", err)
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_counters(key, failures, last_at, locked_until) VALUES (?, ?, ?, ?)
				ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, locked_until = excluded.locked_until`,
				c.Key, c.Failures, nanos(c.LastAt), nanos(c.LockedUntil)); err != nil {
				return fmt.Errorf("store: write login counter: %w", err)
			}
		}
		out = next
		return nil
	})
	return out, err
}

// PruneLoginCounters implements Store.
func (s *SQLite) PruneLoginCounters(ctx context.Context, idleBefore time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM login_counters WHERE last_at < ? AND locked_until < ?`, nanos(idleBefore), nanos(idleBefore))
		if err != nil {
			return fmt.Errorf("store: prune login counters: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
