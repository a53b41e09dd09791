package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/courierhq/courier/controlplane/audit"
	"strings"
	"time"
)

// activeAdmins counts the admins that are not suspended.
func activeAdmins(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND suspended_at = 0`).Scan(&n)
	return n, err
}

// activeAdmin reports whether u counts as an active admin.
func activeAdmin(u User) bool { return u.IsAdmin() && !u.Suspended() }

// UpdateUser implements Store. Writes are serialized (one writer), so the
// last-admin check cannot race another change.
func (s *SQLite) UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error) {
	var out User
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		before, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
		if err != nil {
			return err
		}
		after := before
		after.PasswordHash = append([]byte(nil), before.PasswordHash...)
		if err := fn(&after); err != nil {
			return err
		}
		after.ID, after.Username, after.CreatedAt = before.ID, before.Username, before.CreatedAt
		after.Role = RoleOf(after)
		if !after.Role.Valid() {
			return fmt.Errorf("store: invalid role %q", after.Role)
		}
		if activeAdmin(before) && !activeAdmin(after) {
			n, err := activeAdmins(ctx, tx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return ErrLastAdmin
			}
		}
		if !strings.EqualFold(after.Email, before.Email) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE lower(email) = lower(?) AND id != ?`, after.Email, id).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return &ConflictError{Field: "email", Message: fmt.Sprintf("email %q is taken", after.Email)}
			}
		}
		if after.OIDCSubject != "" && (after.OIDCSubject != before.OIDCSubject || after.OIDCIssuer != before.OIDCIssuer) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE oidc_issuer = ? AND oidc_subject = ? AND id != ?`,
				after.OIDCIssuer, after.OIDCSubject, id).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return &ConflictError{Field: "oidc_subject", Message: "that OpenID Connect identity is linked to another user"}
			}
		}
		hash := after.PasswordHash
		if hash == nil {
			hash = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET role = ?, admin = ?, suspended_at = ?, password_hash = ?, email = ?,
			oidc_issuer = ?, oidc_subject = ? WHERE id = ?`,
			string(after.Role), after.IsAdmin(), nanos(after.SuspendedAt), hash, after.Email,
			after.OIDCIssuer, after.OIDCSubject, id); err != nil {
			return err
		}
		out = after
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// DeleteUser implements Store. The foreign keys cascade to the user's
// secrets, workspaces (and their agent status), sessions and API tokens.
func (s *SQLite) DeleteUser(ctx context.Context, id string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
		if err != nil {
			return err
		}
		if activeAdmin(u) {
			n, err := activeAdmins(ctx, tx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return ErrLastAdmin
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		return err
	})
}

// UserByOIDC implements Store.
func (s *SQLite) UserByOIDC(ctx context.Context, issuer, subject string) (User, error) {
	if subject == "" {
		return User{}, ErrNotFound
	}
	if err := s.check(); err != nil {
		return User{}, err
	}
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE oidc_issuer = ? AND oidc_subject = ?`, issuer, subject))
}

// DeleteUserSessions implements Store.
func (s *SQLite) DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if keep == nil {
			keep = []byte{}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND token_hash != ?`, userID, keep)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

const apiTokenCols = `id, user_id, name, token_hash, scope, created_at, expires_at, last_used_at, last_used_addr`

func scanAPIToken(row interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var scope string
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, &scope, &created, &expires, &used, &t.LastUsedAddr); err != nil {
		return APIToken{}, notFound(err)
	}
	t.Scope = TokenScope(scope)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
	return t, nil
}

// CreateAPIToken implements Store.
func (s *SQLite) CreateAPIToken(ctx context.Context, t APIToken) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_tokens WHERE user_id = ? AND name = ?`, t.UserID, t.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &ConflictError{Field: "name", Message: fmt.Sprintf("a token named %q already exists", t.Name)}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens(`+apiTokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.UserID, t.Name, t.TokenHash, string(t.Scope), nanos(t.CreatedAt), nanos(t.ExpiresAt),
			nanos(t.LastUsedAt), t.LastUsedAddr)
		return err
	})
}

// APITokenByHash implements Store.
func (s *SQLite) APITokenByHash(ctx context.Context, tokenHash []byte, now time.Time) (APIToken, error) {
	if err := s.check(); err != nil {
		return APIToken{}, err
	}
	t, err := scanAPIToken(s.db.QueryRowContext(ctx, `SELECT `+apiTokenCols+` FROM api_tokens WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return APIToken{}, err
	}
	if !now.Before(t.ExpiresAt) {
		return APIToken{}, ErrNotFound
	}
	return t, nil
}

// ListAPITokens implements Store.
func (s *SQLite) ListAPITokens(ctx context.Context, userID string) ([]APIToken, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	q, args := `SELECT `+apiTokenCols+` FROM api_tokens ORDER BY user_id, name`, []any{}
	if userID != "" {
		q, args = `SELECT `+apiTokenCols+` FROM api_tokens WHERE user_id = ? ORDER BY name`, []any{userID}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteAPIToken implements Store.
func (s *SQLite) DeleteAPIToken(ctx context.Context, userID, name string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ? AND name = ?`, userID, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrNotFound)
		}
		return nil
	})
}

// TouchAPITokens implements Store. A use with a FirstUse record first
// tries the update that only a never-used token matches; when it matched,
// the record is chained in the same transaction (see appendAudit).
func (s *SQLite) TouchAPITokens(ctx context.Context, uses []APITokenUse) error {
	if len(uses) == 0 {
		return s.check()
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var firsts []audit.Record
		for _, u := range uses {
			if u.FirstUse != nil {
				res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ?, last_used_addr = ? WHERE id = ? AND last_used_at = 0`,
					nanos(u.At), u.Addr, u.ID)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n == 1 {
					firsts = append(firsts, *u.FirstUse)
					continue
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ?, last_used_addr = ? WHERE id = ? AND last_used_at < ?`,
				nanos(u.At), u.Addr, u.ID, nanos(u.At)); err != nil {
				return err
			}
		}
		if len(firsts) == 0 {
			return nil
		}
		return s.appendAudit(ctx, tx, firsts)
	})
}

// DeleteWorkspace implements Store; the agent status goes with it.
func (s *SQLite) DeleteWorkspace(ctx context.Context, id string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM workspaces WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrNotFound)
		}
		return nil
	})
}

// RotateAgentToken implements Store.
func (s *SQLite) RotateAgentToken(ctx context.Context, id string, tokenHash []byte, expiresAt time.Time) (Workspace, error) {
	var out Workspace
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE workspaces SET agent_token_hash = ?, agent_token_expires_at = ? WHERE id = ?`,
			tokenHash, nanos(expiresAt), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, ErrNotFound)
		}
		out, err = scanWorkspace(tx.QueryRowContext(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return Workspace{}, err
	}
	return out, nil
}
