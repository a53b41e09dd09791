package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// lockActiveAdmins locks the rows of the admins that are not suspended and
// returns how many there are. Two replicas demoting the last two admins
// at once are serialized on these row locks: the second re-reads the rows
// after the first commits, and sees one admin fewer.
func lockActiveAdmins(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM users WHERE role = 'admin' AND suspended_at = 0 FOR UPDATE`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

func activeAdmin(u store.User) bool { return u.IsAdmin() && !u.Suspended() }

// UpdateUser implements store.Store.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*store.User) error) (store.User, error) {
	if !storable(id) {
		return store.User{}, store.ErrNotFound
	}
	var out store.User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// Admin rows first, then the user's: one lock order for everyone.
		admins, err := lockActiveAdmins(ctx, tx)
		if err != nil {
			return err
		}
		before, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		after := before
		after.PasswordHash = append([]byte(nil), before.PasswordHash...)
		if err := fn(&after); err != nil {
			return err
		}
		after.ID, after.Username, after.CreatedAt = before.ID, before.Username, before.CreatedAt
		after.Role = store.RoleOf(after)
		if !after.Role.Valid() {
			return fmt.Errorf("pgstore: invalid role %q", after.Role)
		}
		if !storable(after.Email, after.OIDCIssuer, after.OIDCSubject) {
			return ErrText
		}
		if activeAdmin(before) && !activeAdmin(after) && admins <= 1 {
			return store.ErrLastAdmin
		}
		hash := after.PasswordHash
		if hash == nil {
			hash = []byte{}
		}
		_, err = tx.Exec(ctx, `UPDATE users SET role = $1, admin = $2, suspended_at = $3, password_hash = $4, email = $5,
			oidc_issuer = $6, oidc_subject = $7 WHERE id = $8`,
			string(after.Role), after.IsAdmin(), nanos(after.SuspendedAt), hash, after.Email,
			after.OIDCIssuer, after.OIDCSubject, id)
		switch code, constraint := sqlState(err); {
		case code == codeUnique && constraint == "users_email":
			return &store.ConflictError{Field: "email", Message: fmt.Sprintf("email %q is taken", after.Email)}
		case code == codeUnique && constraint == "users_oidc":
			return &store.ConflictError{Field: "oidc_subject", Message: "that OpenID Connect identity is linked to another user"}
		case err != nil:
			return fmt.Errorf("pgstore: update user: %w", err)
		}
		out = after
		return nil
	})
	if err != nil {
		return store.User{}, err
	}
	return out, nil
}

// DeleteUser implements store.Store; the foreign keys cascade to the
// user's secrets, workspaces, agent status, sessions and API tokens.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if !storable(id) {
		return store.ErrNotFound
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		admins, err := lockActiveAdmins(ctx, tx)
		if err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if activeAdmin(u) && admins <= 1 {
			return store.ErrLastAdmin
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		return err
	})
}

// UserByOIDC implements store.Store.
func (s *Store) UserByOIDC(ctx context.Context, issuer, subject string) (store.User, error) {
	if err := s.check(); err != nil {
		return store.User{}, err
	}
	if subject == "" || !storable(issuer, subject) {
		return store.User{}, store.ErrNotFound
	}
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2`, issuer, subject))
}

// DeleteUserSessions implements store.Store.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if !storable(userID) {
		return 0, nil
	}
	if keep == nil {
		keep = []byte{}
	}
	tag, err := s.exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND token_hash != $2`, userID, keep)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

const apiTokenCols = `id, user_id, name, token_hash, scope, created_at, expires_at, last_used_at, last_used_addr`

func scanAPIToken(row rowScanner) (store.APIToken, error) {
	var t store.APIToken
	var scope string
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, &scope, &created, &expires, &used, &t.LastUsedAddr); err != nil {
		return store.APIToken{}, notFound(err)
	}
	t.Scope = store.TokenScope(scope)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
	return t, nil
}

// CreateAPIToken implements store.Store.
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(t.ID, t.UserID, t.Name, string(t.Scope), t.LastUsedAddr) {
		return ErrText
	}
	_, err := s.exec(ctx, `INSERT INTO api_tokens(`+apiTokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.UserID, t.Name, t.TokenHash, string(t.Scope), nanos(t.CreatedAt), nanos(t.ExpiresAt),
		nanos(t.LastUsedAt), t.LastUsedAddr)
	switch code, constraint := sqlState(err); {
	case code == codeUnique && constraint == "api_tokens_name":
		return &store.ConflictError{Field: "name", Message: fmt.Sprintf("a token named %q already exists", t.Name)}
	case err != nil:
		return fmt.Errorf("pgstore: insert API token: %w", err)
	}
	return nil
}

// APITokenByHash implements store.Store.
func (s *Store) APITokenByHash(ctx context.Context, tokenHash []byte, now time.Time) (store.APIToken, error) {
	if err := s.check(); err != nil {
		return store.APIToken{}, err
	}
	t, err := scanAPIToken(s.pool.QueryRow(ctx, `SELECT `+apiTokenCols+` FROM api_tokens WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return store.APIToken{}, err
	}
	if !now.Before(t.ExpiresAt) {
		return store.APIToken{}, store.ErrNotFound
	}
	return t, nil
}

// ListAPITokens implements store.Store.
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]store.APIToken, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storable(userID) {
		return nil, nil
	}
	q, args := `SELECT `+apiTokenCols+` FROM api_tokens ORDER BY user_id, name`, []any{}
	if userID != "" {
		q, args = `SELECT `+apiTokenCols+` FROM api_tokens WHERE user_id = $1 ORDER BY name`, []any{userID}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteAPIToken implements store.Store.
func (s *Store) DeleteAPIToken(ctx context.Context, userID, name string) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(userID, name) {
		return store.ErrNotFound
	}
	tag, err := s.exec(ctx, `DELETE FROM api_tokens WHERE user_id = $1 AND name = $2`, userID, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// TouchAPITokens implements store.Store. A use with a FirstUse record
// first tries the update that only a never-used token matches: under READ
// COMMITTED a second replica's same update waits for the first's row lock
// and then finds last_used_at no longer zero, so only one transaction
// stages the record. The uses are applied in ID order, so that two
// replicas' batches lock rows in one order.
func (s *Store) TouchAPITokens(ctx context.Context, uses []store.APITokenUse) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(uses) == 0 {
		return nil
	}
	uses = slices.Clone(uses)
	slices.SortStableFunc(uses, func(a, b store.APITokenUse) int { return strings.Compare(a.ID, b.ID) })
	var staged bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		staged = false
		b := &pgx.Batch{}
		var firsts []*audit.Record // per queued statement: the record its match would record
		for _, u := range uses {
			addr := u.Addr
			if !storable(u.ID, addr) {
				continue
			}
			if u.FirstUse != nil {
				b.Queue(`UPDATE api_tokens SET last_used_at = $1, last_used_addr = $2 WHERE id = $3 AND last_used_at = 0`,
					nanos(u.At), addr, u.ID)
				firsts = append(firsts, u.FirstUse)
			}
			b.Queue(`UPDATE api_tokens SET last_used_at = $1, last_used_addr = $2 WHERE id = $3 AND last_used_at < $1`,
				nanos(u.At), addr, u.ID)
			firsts = append(firsts, nil)
		}
		br := tx.SendBatch(ctx, b)
		var recs []audit.Record
		for _, first := range firsts {
			tag, err := br.Exec()
			if err != nil {
				_ = br.Close()
				return err
			}
			if first != nil && tag.RowsAffected() == 1 {
				recs = append(recs, *first)
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		staged = true
		return stage(ctx, tx, recs)
	})
	if err != nil || !staged {
		return err
	}
	return s.chainPending(ctx)
}

// DeleteWorkspace implements store.Store; the agent status goes with it.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(id) {
		return store.ErrNotFound
	}
	tag, err := s.exec(ctx, `DELETE FROM workspaces WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// RotateAgentToken implements store.Store.
func (s *Store) RotateAgentToken(ctx context.Context, id string, tokenHash []byte, expiresAt time.Time) (store.Workspace, error) {
	if err := s.check(); err != nil {
		return store.Workspace{}, err
	}
	if !storable(id) {
		return store.Workspace{}, store.ErrNotFound
	}
	w, err := scanWorkspace(s.pool.QueryRow(ctx, `UPDATE workspaces SET agent_token_hash = $1, agent_token_expires_at = $2
		WHERE id = $3 RETURNING `+workspaceCols, tokenHash, nanos(expiresAt), id))
	if errors.Is(err, store.ErrNotFound) {
		return store.Workspace{}, store.ErrNotFound
	}
	if err != nil {
		return store.Workspace{}, fmt.Errorf("pgstore: rotate agent token: %w", err)
	}
	return w, nil
}
