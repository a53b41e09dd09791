package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// OIDCFlow is one step of a single sign-on in progress: an authorization
// request waiting for its callback, a code the CLI redeems, a device
// authorization being polled. It lives in the database, not in one
// replica's memory, so a step that starts on one replica can finish on
// another and is consumed exactly once.
type OIDCFlow struct {
	// KeyHash is the SHA-256 of the flow's handle (the OAuth state, a
	// one-time code); the handle itself is never stored.
	KeyHash []byte
	// Kind tells the steps apart; a handle of one kind never consumes a
	// flow of another.
	Kind string
	// Data is opaque to the store (the identity package's JSON). It may
	// hold a nonce or a PKCE verifier, which is why flows are short-lived
	// and deleted when used.
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// String never includes the key hash or the data.
func (f OIDCFlow) String() string {
	return fmt.Sprintf("OIDCFlow{kind=%q expires=%s}", f.Kind, f.ExpiresAt.Format(time.RFC3339))
}

// CreateOIDCFlow implements Store.
func (s *SQLite) CreateOIDCFlow(ctx context.Context, f OIDCFlow) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_flows WHERE expires_at <= ?`, nanos(f.CreatedAt)); err != nil {
			return fmt.Errorf("store: prune sign-in flows: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_flows(key_hash, kind, data, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			f.KeyHash, f.Kind, f.Data, nanos(f.CreatedAt), nanos(f.ExpiresAt))
		if err != nil && strings.Contains(err.Error(), "UNIQUE") {
			return &ConflictError{Field: "oidc_flow"}
		}
		if err != nil {
			return fmt.Errorf("store: create sign-in flow: %w", err)
		}
		return nil
	})
}

// ConsumeOIDCFlow implements Store.
func (s *SQLite) ConsumeOIDCFlow(ctx context.Context, kind string, keyHash []byte, now time.Time) (OIDCFlow, error) {
	var f OIDCFlow
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var created, expires int64
		err := tx.QueryRowContext(ctx, `DELETE FROM oidc_flows WHERE key_hash = ? AND kind = ?
			RETURNING key_hash, kind, data, created_at, expires_at`, keyHash, kind).
			Scan(&f.KeyHash, &f.Kind, &f.Data, &created, &expires)
		if err != nil {
			return notFound(err)
		}
		f.CreatedAt, f.ExpiresAt = fromNanos(created), fromNanos(expires)
		return nil
	})
	if err != nil {
		return OIDCFlow{}, err
	}
	if !now.Before(f.ExpiresAt) {
		return OIDCFlow{}, ErrNotFound
	}
	return f, nil
}
