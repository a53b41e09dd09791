package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store"
)

const secretCols = `id, user_id, name, description, env_name, file_path, value, value_format, enabled, created_at, updated_at, workspaces`

func scanSecret(row rowScanner) (store.Secret, error) {
	var sec store.Secret
	var format int16
	var created, updated int64
	var scope string
	if err := row.Scan(&sec.ID, &sec.UserID, &sec.Name, &sec.Description, &sec.EnvName, &sec.FilePath,
		&sec.Value, &format, &sec.Enabled, &created, &updated, &scope); err != nil {
		return store.Secret{}, notFound(err)
	}
	var err error
	if sec.Workspaces, err = store.DecodeScope(scope); err != nil {
		return store.Secret{}, err
	}
	sec.Format = store.ValueFormat(format)
	sec.CreatedAt, sec.UpdatedAt = fromNanos(created), fromNanos(updated)
	return sec, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func listSecrets(ctx context.Context, q querier, userID string) ([]store.Secret, error) {
	rows, err := q.Query(ctx, `SELECT `+secretCols+` FROM secrets WHERE user_id = $1 ORDER BY name`, userID)
	return collect(rows, err, scanSecret)
}

// secretsAtRevisionSQL selects the revision beside each secret, in one
// statement and so from one snapshot.
const secretsAtRevisionSQL = `SELECT (SELECT secrets_revision FROM users WHERE id = $1), ` + secretCols +
	` FROM secrets WHERE user_id = $1 ORDER BY name`

// SecretsAtRevision implements store.Store.
func (s *Store) SecretsAtRevision(ctx context.Context, userID string) ([]store.Secret, int64, error) {
	if err := s.check(); err != nil {
		return nil, 0, err
	}
	if !storable(userID) {
		return nil, 0, store.ErrNotFound
	}
	var rev int64
	rows, err := s.pool.Query(ctx, secretsAtRevisionSQL, userID)
	out, err := collect(rows, err, func(r rowScanner) (store.Secret, error) {
		return scanSecret(scanWith(r, &rev))
	})
	if err != nil || len(out) > 0 {
		return out, rev, err
	}
	// No secrets: the revision first, then the list (a secret created
	// between the two is in the list, never missing from it).
	if rev, err = s.SecretsRevision(ctx, userID); err != nil {
		return nil, 0, err
	}
	out, err = s.ListSecrets(ctx, userID)
	return out, rev, err
}

// scanWith is r, scanning first into lead and then into what its caller
// asks for.
func scanWith(r rowScanner, lead ...any) rowScanner {
	return scanFn(func(dest ...any) error { return r.Scan(append(lead, dest...)...) })
}

// scanFn is a rowScanner of its own.
type scanFn func(dest ...any) error

func (f scanFn) Scan(dest ...any) error { return f(dest...) }

// writeErr turns a unique-index violation on secrets into the
// *store.ConflictError the index stands for, and wraps any other error with
// what was being done. The conflict check under the user's lock finds
// clashes first; the indexes are the last word.
func writeErr(doing string, err error, sec store.Secret) error {
	code, constraint := sqlState(err)
	if code != codeUnique {
		return fmt.Errorf("pgstore: %s: %w", doing, err)
	}
	switch constraint {
	case "secrets_name":
		return &store.ConflictError{Field: "name", Message: fmt.Sprintf("a secret named %q already exists", sec.Name)}
	case "secrets_env":
		return &store.ConflictError{Field: "env_name", Message: fmt.Sprintf("env name %s is already used by another secret", sec.EnvName)}
	case "secrets_file":
		return &store.ConflictError{Field: "file_path", Message: fmt.Sprintf("file path %s is already used by another secret", sec.FilePath)}
	}
	return fmt.Errorf("pgstore: %s: %w", doing, err)
}

// ListSecrets implements store.Store.
func (s *Store) ListSecrets(ctx context.Context, userID string) ([]store.Secret, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storable(userID) {
		return nil, nil
	}
	return listSecrets(ctx, s.pool, userID)
}

// GetSecret implements store.Store.
func (s *Store) GetSecret(ctx context.Context, userID, name string) (store.Secret, error) {
	if err := s.check(); err != nil {
		return store.Secret{}, err
	}
	if !storable(userID, name) {
		return store.Secret{}, store.ErrNotFound
	}
	return scanSecret(s.pool.QueryRow(ctx, `SELECT `+secretCols+` FROM secrets WHERE user_id = $1 AND name = $2`, userID, name))
}

// CreateSecrets implements store.Store. The user's row lock (writeSecrets)
// is held from before the set is read until the commit, so check sees
// every secret committed by any replica and no other writer of this user
// commits in between. Two round trips: the lock with the read, then the
// inserts with the audit records and the commit.
func (s *Store) CreateSecrets(ctx context.Context, userID string, secs []store.Secret, check store.CheckFunc) error {
	if !storable(userID) {
		return fmt.Errorf("pgstore: user %q: %w", userID, store.ErrNotFound)
	}
	for _, sec := range secs {
		if !storable(sec.ID, sec.Name, sec.Description, sec.EnvName, sec.FilePath) {
			return ErrText
		}
	}
	var before []store.Secret
	return s.writeSecrets(ctx, userID, func(_ *secretTx, b *pgx.Batch) {
		queueList(b, userID, &before)
	}, func(t *secretTx) error {
		after := before
		for _, sec := range secs {
			sec.UserID = userID
			if err := store.SecretConflict(after, sec); err != nil {
				return err
			}
			after = append(after, sec)
		}
		if check != nil {
			if err := check(after); err != nil {
				return err
			}
		}
		b := &pgx.Batch{}
		for _, sec := range secs {
			value := sec.Value
			if value == nil {
				value = []byte{}
			}
			b.Queue(`INSERT INTO secrets(`+secretCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				sec.ID, userID, sec.Name, sec.Description, sec.EnvName, sec.FilePath, value, int16(sec.Format), sec.Enabled,
				nanos(sec.CreatedAt), nanos(sec.UpdatedAt), store.EncodeScope(sec.Workspaces))
		}
		return t.finish(b, func(br pgx.BatchResults) error {
			for _, sec := range secs {
				if _, err := br.Exec(); err != nil {
					return writeErr("insert secret", err, sec)
				}
			}
			return nil
		})
	})
}

// queueList queues the read of userID's secrets into *out.
func queueList(b *pgx.Batch, userID string, out *[]store.Secret) {
	b.Queue(`SELECT `+secretCols+` FROM secrets WHERE user_id = $1 ORDER BY name`, userID).Query(func(rows pgx.Rows) error {
		var err error
		*out, err = collect(rows, nil, scanSecret)
		return err
	})
}

// UpdateSecret implements store.Store, under the user's row lock like
// CreateSecrets, in as many round trips.
func (s *Store) UpdateSecret(ctx context.Context, userID, name string, u store.SecretUpdate, check store.CheckFunc) (store.Secret, error) {
	if !storable(userID, name) {
		return store.Secret{}, store.ErrNotFound
	}
	for _, p := range []*string{u.Description, u.EnvName, u.FilePath} {
		if p != nil && !storable(*p) {
			return store.Secret{}, ErrText
		}
	}
	var (
		updated store.Secret
		after   []store.Secret
	)
	err := s.writeSecrets(ctx, userID, func(_ *secretTx, b *pgx.Batch) {
		queueList(b, userID, &after)
	}, func(t *secretTx) error {
		idx := -1
		for i, sec := range after {
			if sec.Name == name {
				idx = i
			}
		}
		if idx < 0 {
			return store.ErrNotFound
		}
		sec := u.Apply(after[idx])
		if err := store.SecretConflict(after, sec); err != nil {
			return err
		}
		store.NoteSecretDiff(ctx, after[idx], sec)
		after[idx] = sec
		if check != nil {
			if err := check(after); err != nil {
				return err
			}
		}
		value := sec.Value
		if value == nil {
			value = []byte{}
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE secrets SET description = $1, env_name = $2, file_path = $3, value = $4,
			value_format = $5, enabled = $6, updated_at = $7, workspaces = $8 WHERE id = $9`,
			sec.Description, sec.EnvName, sec.FilePath, value, int16(sec.Format), sec.Enabled, nanos(sec.UpdatedAt),
			store.EncodeScope(sec.Workspaces), sec.ID)
		if err := t.finish(b, func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return writeErr("update secret", err, sec)
			}
			return nil
		}); err != nil {
			return err
		}
		updated = sec
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Secret{}, store.ErrNotFound
	}
	return updated, err
}

// DeleteSecret implements store.Store in one round trip: the lock, the
// delete, the audit records and the commit. Nothing to delete fails on the
// server (courier_found) and so rolls it all back.
func (s *Store) DeleteSecret(ctx context.Context, userID, name string) error {
	if !storable(userID, name) {
		return store.ErrNotFound
	}
	err := s.writeSecrets(ctx, userID, func(t *secretTx, b *pgx.Batch) {
		b.Queue(`WITH d AS (DELETE FROM secrets WHERE user_id = $1 AND name = $2 RETURNING 1)
			SELECT courier_found(count(*)) FROM d`, userID, name)
		// The store changes nothing in a delete's records, so they are
		// final now.
		t.queueAudit(b)
	}, nil)
	if errors.Is(err, store.ErrNotFound) {
		return store.ErrNotFound
	}
	return err
}

// SecretsRevision implements store.Store.
func (s *Store) SecretsRevision(ctx context.Context, userID string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if !storable(userID) {
		return 0, store.ErrNotFound
	}
	var rev int64
	err := s.pool.QueryRow(ctx, `SELECT secrets_revision FROM users WHERE id = $1`, userID).Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrNotFound
	}
	return rev, err
}

// ScanSecrets implements store.Store. IDs compare bytewise (COLLATE "C").
func (s *Store) ScanSecrets(ctx context.Context, afterID string, limit int) ([]store.Secret, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storable(afterID) {
		return nil, fmt.Errorf("pgstore: scan secrets: %w", ErrText)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+secretCols+` FROM secrets WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	out, err := collect(rows, err, scanSecret)
	if err != nil {
		return nil, fmt.Errorf("pgstore: scan secrets: %w", err)
	}
	return out, nil
}

// SwapSecretValue implements store.Store. It takes the owner's row lock, so
// it cannot interleave with an UpdateSecret that read the value before the
// swap and would write it back after.
func (s *Store) SwapSecretValue(ctx context.Context, id string, old, value []byte, format store.ValueFormat) (bool, error) {
	if old == nil {
		old = []byte{}
	}
	if value == nil {
		value = []byte{}
	}
	if !storable(id) {
		return false, nil
	}
	var swapped bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		swapped = false
		var userID string
		err := tx.QueryRow(ctx, `SELECT user_id FROM secrets WHERE id = $1`, id).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := lockUser(ctx, tx, userID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE secrets SET value = $1, value_format = $2 WHERE id = $3 AND value = $4`,
			value, int16(format), id, old)
		if err != nil {
			return fmt.Errorf("pgstore: swap secret value: %w", err)
		}
		swapped = tag.RowsAffected() == 1
		return nil
	})
	return swapped, err
}

// CountSecretsByFormat implements store.Store.
func (s *Store) CountSecretsByFormat(ctx context.Context) (map[store.ValueFormat]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT value_format, count(*) FROM secrets GROUP BY value_format`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: count secrets by format: %w", err)
	}
	defer rows.Close()
	out := map[store.ValueFormat]int{}
	for rows.Next() {
		var f int16
		var n int64
		if err := rows.Scan(&f, &n); err != nil {
			return nil, err
		}
		out[store.ValueFormat(f)] = int(n)
	}
	return out, rows.Err()
}
