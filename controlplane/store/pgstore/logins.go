package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store"
)

// loginLock is the advisory lock (the one-bigint key space, which the
// two-int key space of lockSpace does not overlap) of a login counter key:
// its FNV-1a hash. Two keys with one hash only wait for each other.
func loginLock(key string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int64(h.Sum64())
}

// UpdateLoginCounters implements store.Store. A transaction-scoped advisory
// lock per key (taken in key order, so two updates never wait on each other
// in a circle) serializes updates of the same key across replicas, whether
// or not its row exists yet.
func (s *Store) UpdateLoginCounters(ctx context.Context, keys []string, fn store.LoginCounterFunc) ([]store.LoginCounter, error) {
	locks := slices.Clone(keys)
	slices.Sort(locks)
	locks = slices.Compact(locks)
	var out []store.LoginCounter
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, k := range locks {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, loginLock(k)); err != nil {
				return fmt.Errorf("pgstore: lock login counter: %w", err)
			}
		}
		cur := make([]store.LoginCounter, len(keys))
		for i, k := range keys {
			cur[i].Key = k
			var last, locked int64
			err := tx.QueryRow(ctx, `SELECT failures, last_at, locked_until FROM login_counters WHERE key = $1`, []byte(k)).
				Scan(&cur[i].Failures, &last, &locked)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return fmt.Errorf("pgstore: read login counter: %w", err)
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
				if _, err := tx.Exec(ctx, `DELETE FROM login_counters WHERE key = $1`, []byte(c.Key)); err != nil {
					return fmt.Errorf("pgstore: delete login counter: %w", err)
				}
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO login_counters(key, failures, last_at, locked_until) VALUES ($1, $2, $3, $4)
				ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, locked_until = excluded.locked_until`,
				[]byte(c.Key), c.Failures, nanos(c.LastAt), nanos(c.LockedUntil)); err != nil {
				return fmt.Errorf("pgstore: write login counter: %w", err)
			}
		}
		out = next
		return nil
	})
	return out, err
}

// PruneLoginCounters implements store.Store.
func (s *Store) PruneLoginCounters(ctx context.Context, idleBefore time.Time) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM login_counters WHERE last_at < $1 AND locked_until < $1`, nanos(idleBefore))
	if err != nil {
		return 0, fmt.Errorf("pgstore: prune login counters: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
