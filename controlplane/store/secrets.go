package store

import (
	"context"
	"database/sql"
	"fmt"
)

const secretCols = `id, user_id, name, description, env_name, file_path, value, value_format, enabled, created_at, updated_at, workspaces`

func scanSecret(row interface{ Scan(...any) error }) (Secret, error) {
	var sec Secret
	var created, updated int64
	var scope string
	if err := row.Scan(&sec.ID, &sec.UserID, &sec.Name, &sec.Description, &sec.EnvName, &sec.FilePath,
		&sec.Value, &sec.Format, &sec.Enabled, &created, &updated, &scope); err != nil {
		return Secret{}, notFound(err)
	}
	var err error
	if sec.Workspaces, err = DecodeScope(scope); err != nil {
		return Secret{}, err
	}
	sec.CreatedAt, sec.UpdatedAt = fromNanos(created), fromNanos(updated)
	return sec, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func listSecrets(ctx context.Context, q querier, userID string) ([]Secret, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+secretCols+` FROM secrets WHERE user_id = ? ORDER BY name`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, rows.Err()
}

// ListSecrets implements Store.
func (s *SQLite) ListSecrets(ctx context.Context, userID string) ([]Secret, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return listSecrets(ctx, s.db, userID)
}

// GetSecret implements Store.
func (s *SQLite) GetSecret(ctx context.Context, userID, name string) (Secret, error) {
	if err := s.check(); err != nil {
		return Secret{}, err
	}
	return scanSecret(s.db.QueryRowContext(ctx, `SELECT `+secretCols+` FROM secrets WHERE user_id = ? AND name = ?`, userID, name))
}

// CreateSecrets implements Store.
func (s *SQLite) CreateSecrets(ctx context.Context, userID string, secs []Secret, check CheckFunc) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		after, err := listSecrets(ctx, tx, userID)
		if err != nil {
			return err
		}
		for _, sec := range secs {
			sec.UserID = userID
			if err := SecretConflict(after, sec); err != nil {
				return err
			}
			after = append(after, sec)
		}
		if check != nil {
			if err := check(after); err != nil {
				return err
			}
		}
		for _, sec := range secs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO secrets(`+secretCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				sec.ID, userID, sec.Name, sec.Description, sec.EnvName, sec.FilePath, sec.Value, sec.Format, sec.Enabled,
				nanos(sec.CreatedAt), nanos(sec.UpdatedAt), EncodeScope(sec.Workspaces)); err != nil {
				return fmt.Errorf("store: insert secret: %w", err)
			}
		}
		return bumpRevision(ctx, tx, userID)
	})
}

// UpdateSecret implements Store.
func (s *SQLite) UpdateSecret(ctx context.Context, userID, name string, u SecretUpdate, check CheckFunc) (Secret, error) {
	var updated Secret
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		after, err := listSecrets(ctx, tx, userID)
		if err != nil {
			return err
		}
		idx := -1
		for i, sec := range after {
			if sec.Name == name {
				idx = i
			}
		}
		if idx < 0 {
			return ErrNotFound
		}
		sec := u.Apply(after[idx])
		if err := SecretConflict(after, sec); err != nil {
			return err
		}
		NoteSecretDiff(ctx, after[idx], sec)
		after[idx] = sec
		if check != nil {
			if err := check(after); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE secrets SET description = ?, env_name = ?, file_path = ?, value = ?, value_format = ?, enabled = ?, updated_at = ?,
			workspaces = ? WHERE id = ?`, sec.Description, sec.EnvName, sec.FilePath, sec.Value, sec.Format, sec.Enabled, nanos(sec.UpdatedAt),
			EncodeScope(sec.Workspaces), sec.ID); err != nil {
			return fmt.Errorf("store: update secret: %w", err)
		}
		updated = sec
		return bumpRevision(ctx, tx, userID)
	})
	return updated, err
}

// DeleteSecret implements Store.
func (s *SQLite) DeleteSecret(ctx context.Context, userID, name string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE user_id = ? AND name = ?`, userID, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return bumpRevision(ctx, tx, userID)
	})
}

// bumpRevision raises userID's secrets revision inside a write of its
// secrets.
func bumpRevision(ctx context.Context, tx *sql.Tx, userID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE users SET secrets_revision = secrets_revision + 1 WHERE id = ?`, userID); err != nil {
		return fmt.Errorf("store: raise secrets revision: %w", err)
	}
	return nil
}

// SecretsRevision implements Store.
func (s *SQLite) SecretsRevision(ctx context.Context, userID string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var rev int64
	err := s.db.QueryRowContext(ctx, `SELECT secrets_revision FROM users WHERE id = ?`, userID).Scan(&rev)
	return rev, notFound(err)
}

// secretsAtRevisionSQL selects the revision beside each secret, in one
// statement and so from one snapshot; $1 is the user's ID.
const secretsAtRevisionSQL = `SELECT (SELECT secrets_revision FROM users WHERE id = ?1), ` + secretCols +
	` FROM secrets WHERE user_id = ?1 ORDER BY name`

// SecretsAtRevision implements Store.
func (s *SQLite) SecretsAtRevision(ctx context.Context, userID string) ([]Secret, int64, error) {
	if err := s.check(); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, secretsAtRevisionSQL, userID)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var (
		out []Secret
		rev int64
	)
	withRev := scanFunc(func(dest ...any) error { return rows.Scan(append([]any{&rev}, dest...)...) })
	for rows.Next() {
		sec, err := scanSecret(withRev)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil || len(out) > 0 {
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

// ScanSecrets implements Store.
func (s *SQLite) ScanSecrets(ctx context.Context, afterID string, limit int) ([]Secret, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+secretCols+` FROM secrets WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: scan secrets: %w", err)
	}
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, rows.Err()
}

// SwapSecretValue implements Store.
func (s *SQLite) SwapSecretValue(ctx context.Context, id string, old, value []byte, format ValueFormat) (bool, error) {
	if old == nil {
		old = []byte{} // an empty value is an empty BLOB, never NULL
	}
	var swapped bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE secrets SET value = ?, value_format = ? WHERE id = ? AND value = ?`,
			value, format, id, old)
		if err != nil {
			return fmt.Errorf("store: swap secret value: %w", err)
		}
		n, _ := res.RowsAffected()
		swapped = n == 1
		return nil
	})
	return swapped, err
}

// CountSecretsByFormat implements Store.
func (s *SQLite) CountSecretsByFormat(ctx context.Context) (map[ValueFormat]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT value_format, count(*) FROM secrets GROUP BY value_format`)
	if err != nil {
		return nil, fmt.Errorf("store: count secrets by format: %w", err)
	}
	defer rows.Close()
	out := map[ValueFormat]int{}
	for rows.Next() {
		var f ValueFormat
		var n int
		if err := rows.Scan(&f, &n); err != nil {
			return nil, err
		}
		out[f] = n
	}
	return out, rows.Err()
}
