package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store"
)

const userCols = `id, username, email, password_hash, admin, created_at, role, suspended_at, oidc_issuer, oidc_subject`

func scanUser(row rowScanner) (store.User, error) {
	var u store.User
	var created int64
	var admin bool
	var role string
	var suspended int64
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &admin, &created, &role, &suspended, &u.OIDCIssuer, &u.OIDCSubject); err != nil {
		return store.User{}, notFound(err)
	}
	u.CreatedAt, u.Role = fromNanos(created), store.Role(role)
	u.SuspendedAt = fromNanos(suspended)
	return u, nil
}

// CreateFirstUser implements store.Store. The table lock makes the
// emptiness check and the insert one step across replicas; it is taken
// only while the table looks empty, so calls after set-up (anyone may
// make them) never lock out other writers.
func (s *Store) CreateFirstUser(ctx context.Context, u store.User) error {
	taken := &store.ConflictError{Field: "user", Message: "the first user already exists"}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return taken
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE users IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return taken
		}
		return insertUser(ctx, tx, u)
	})
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return s.tx(ctx, func(tx pgx.Tx) error { return insertUser(ctx, tx, u) })
}

// insertUser inserts u; the unique indexes on lower(username) and
// lower(email) refuse a taken one, across replicas.
func insertUser(ctx context.Context, tx pgx.Tx, u store.User) error {
	if !storable(u.ID, u.Username, u.Email) {
		return ErrText
	}
	hash := u.PasswordHash
	if hash == nil {
		hash = []byte{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO users(`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		u.ID, u.Username, u.Email, hash, u.IsAdmin(), nanos(u.CreatedAt), string(store.RoleOf(u)), nanos(u.SuspendedAt), u.OIDCIssuer, u.OIDCSubject)
	switch code, constraint := sqlState(err); {
	case code == codeUnique && constraint == "users_username":
		return &store.ConflictError{Field: "username", Message: fmt.Sprintf("username %q is taken", u.Username)}
	case code == codeUnique && constraint == "users_email":
		return &store.ConflictError{Field: "email", Message: fmt.Sprintf("email %q is taken", u.Email)}
	case err != nil:
		return fmt.Errorf("pgstore: insert user: %w", err)
	}
	return nil
}

func (s *Store) userWhere(ctx context.Context, where string, arg string) (store.User, error) {
	if err := s.check(); err != nil {
		return store.User{}, err
	}
	if !storable(arg) {
		return store.User{}, store.ErrNotFound
	}
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE `+where, arg))
}

// UserByID implements store.Store.
func (s *Store) UserByID(ctx context.Context, id string) (store.User, error) {
	return s.userWhere(ctx, `id = $1`, id)
}

// UserByUsername implements store.Store.
func (s *Store) UserByUsername(ctx context.Context, username string) (store.User, error) {
	return s.userWhere(ctx, `lower(username) = lower($1)`, username)
}

// UserByEmail implements store.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (store.User, error) {
	return s.userWhere(ctx, `lower(email) = lower($1)`, email)
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY lower(username) COLLATE "C"`)
	return collect(rows, err, scanUser)
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(sess.UserID) {
		return ErrText
	}
	_, err := s.exec(ctx, `INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		sess.TokenHash, sess.UserID, nanos(sess.CreatedAt), nanos(sess.ExpiresAt))
	if err != nil {
		return fmt.Errorf("pgstore: create session: %w", err)
	}
	return nil
}

// SessionByHash implements store.Store.
func (s *Store) SessionByHash(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	if err := s.check(); err != nil {
		return store.Session{}, err
	}
	var sess store.Session
	var created, expires int64
	err := s.pool.QueryRow(ctx, `SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = $1`, tokenHash).
		Scan(&sess.TokenHash, &sess.UserID, &created, &expires)
	if err != nil {
		return store.Session{}, notFound(err)
	}
	sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
	if !sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt) {
		return store.Session{}, store.ErrNotFound
	}
	return sess, nil
}

// sessionUserCols are userCols qualified with u., for the join with
// sessions (both tables have created_at).
var sessionUserCols = "u." + strings.ReplaceAll(userCols, ", ", ", u.")

// SessionUser implements store.Store: one round trip where SessionByHash
// and UserByID take two.
func (s *Store) SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, store.User, error) {
	if err := s.check(); err != nil {
		return store.Session{}, store.User{}, err
	}
	var sess store.Session
	var created, expires int64
	row := s.pool.QueryRow(ctx, `SELECT s.token_hash, s.user_id, s.created_at, s.expires_at, `+sessionUserCols+`
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1`, tokenHash)
	u, err := scanUser(scanFunc(func(dest ...any) error {
		return row.Scan(append([]any{&sess.TokenHash, &sess.UserID, &created, &expires}, dest...)...)
	}))
	if err != nil {
		return store.Session{}, store.User{}, err
	}
	sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
	if !sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt) {
		return store.Session{}, store.User{}, store.ErrNotFound
	}
	return sess, u, nil
}

// scanFunc is a Scan method of its own.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return err
}
