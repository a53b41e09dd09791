package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

const userCols = `id, username, email, password_hash, admin, created_at, role, suspended_at, oidc_issuer, oidc_subject`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	var admin bool
	var role string
	var suspended int64
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &admin, &created, &role, &suspended, &u.OIDCIssuer, &u.OIDCSubject); err != nil {
		return User{}, notFound(err)
	}
	u.CreatedAt, u.Role = fromNanos(created), Role(role)
	u.SuspendedAt = fromNanos(suspended)
	return u, nil
}

// CreateFirstUser implements Store.
func (s *SQLite) CreateFirstUser(ctx context.Context, u User) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &ConflictError{Field: "user", Message: "the first user already exists"}
		}
		return insertUser(ctx, tx, u)
	})
}

// CreateUser implements Store.
func (s *SQLite) CreateUser(ctx context.Context, u User) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return insertUser(ctx, tx, u) })
}

func insertUser(ctx context.Context, tx *sql.Tx, u User) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE lower(username) = lower(?)`, u.Username).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &ConflictError{Field: "username", Message: fmt.Sprintf("username %q is taken", u.Username)}
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE lower(email) = lower(?)`, u.Email).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &ConflictError{Field: "email", Message: fmt.Sprintf("email %q is taken", u.Email)}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO users(`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.Email, append([]byte{}, u.PasswordHash...), u.IsAdmin(), nanos(u.CreatedAt), string(RoleOf(u)), nanos(u.SuspendedAt), u.OIDCIssuer, u.OIDCSubject)
	return err
}

func (s *SQLite) userWhere(ctx context.Context, where string, arg any) (User, error) {
	if err := s.check(); err != nil {
		return User{}, err
	}
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE `+where, arg))
}

// UserByID implements Store.
func (s *SQLite) UserByID(ctx context.Context, id string) (User, error) {
	return s.userWhere(ctx, `id = ?`, id)
}

// UserByUsername implements Store.
func (s *SQLite) UserByUsername(ctx context.Context, username string) (User, error) {
	return s.userWhere(ctx, `lower(username) = lower(?)`, username)
}

// UserByEmail implements Store.
func (s *SQLite) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.userWhere(ctx, `lower(email) = lower(?)`, email)
}

// ListUsers implements Store.
func (s *SQLite) ListUsers(ctx context.Context) ([]User, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY lower(username)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CreateSession implements Store.
func (s *SQLite) CreateSession(ctx context.Context, sess Session) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			sess.TokenHash, sess.UserID, nanos(sess.CreatedAt), nanos(sess.ExpiresAt))
		return err
	})
}

// SessionByHash implements Store.
func (s *SQLite) SessionByHash(ctx context.Context, tokenHash []byte, now time.Time) (Session, error) {
	if err := s.check(); err != nil {
		return Session{}, err
	}
	var sess Session
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = ?`, tokenHash).
		Scan(&sess.TokenHash, &sess.UserID, &created, &expires)
	if err != nil {
		return Session{}, notFound(err)
	}
	sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
	if !sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt) {
		return Session{}, ErrNotFound
	}
	return sess, nil
}

// sessionUserCols are userCols qualified with u., for the join with
// sessions (both tables have created_at).
var sessionUserCols = "u." + strings.ReplaceAll(userCols, ", ", ", u.")

// SessionUser implements Store.
func (s *SQLite) SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (Session, User, error) {
	if err := s.check(); err != nil {
		return Session{}, User{}, err
	}
	var sess Session
	var created, expires int64
	u, err := scanUser(scanFunc(func(dest ...any) error {
		return s.db.QueryRowContext(ctx, `SELECT s.token_hash, s.user_id, s.created_at, s.expires_at, `+sessionUserCols+`
			FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, tokenHash).
			Scan(append([]any{&sess.TokenHash, &sess.UserID, &created, &expires}, dest...)...)
	}))
	if err != nil {
		return Session{}, User{}, err
	}
	sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
	if !sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt) {
		return Session{}, User{}, ErrNotFound
	}
	return sess, u, nil
}

// scanFunc is a Scan method of its own.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// DeleteSession implements Store.
func (s *SQLite) DeleteSession(ctx context.Context, tokenHash []byte) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
		return err
	})
}
