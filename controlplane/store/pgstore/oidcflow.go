package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store"
)

// CreateOIDCFlow implements store.Store.
func (s *Store) CreateOIDCFlow(ctx context.Context, f store.OIDCFlow) error {
	if !storable(f.Kind) {
		return ErrText
	}
	data := f.Data
	if data == nil {
		data = []byte{}
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM oidc_flows WHERE expires_at <= $1`, nanos(f.CreatedAt)); err != nil {
			return fmt.Errorf("pgstore: prune sign-in flows: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO oidc_flows(key_hash, kind, data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			f.KeyHash, f.Kind, data, nanos(f.CreatedAt), nanos(f.ExpiresAt))
		switch code, _ := sqlState(err); {
		case code == codeUnique:
			return &store.ConflictError{Field: "oidc_flow"}
		case err != nil:
			return fmt.Errorf("pgstore: create sign-in flow: %w", err)
		}
		return nil
	})
}

// ConsumeOIDCFlow implements store.Store. One DELETE … RETURNING: of two
// replicas consuming one flow, exactly one gets the row.
func (s *Store) ConsumeOIDCFlow(ctx context.Context, kind string, keyHash []byte, now time.Time) (store.OIDCFlow, error) {
	if err := s.check(); err != nil {
		return store.OIDCFlow{}, err
	}
	if !storable(kind) {
		return store.OIDCFlow{}, store.ErrNotFound
	}
	var f store.OIDCFlow
	var created, expires int64
	err := s.pool.QueryRow(ctx, `DELETE FROM oidc_flows WHERE key_hash = $1 AND kind = $2
		RETURNING key_hash, kind, data, created_at, expires_at`, keyHash, kind).
		Scan(&f.KeyHash, &f.Kind, &f.Data, &created, &expires)
	if err != nil {
		return store.OIDCFlow{}, notFound(err)
	}
	f.CreatedAt, f.ExpiresAt = fromNanos(created), fromNanos(expires)
	if !now.Before(f.ExpiresAt) {
		return store.OIDCFlow{}, store.ErrNotFound
	}
	return f, nil
}
