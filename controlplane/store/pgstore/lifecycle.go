package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// errTODO marks the lifecycle methods not implemented yet (issue 19).
var errTODO = errors.New("store: not implemented yet")

// UpdateUser implements store.Store.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*store.User) error) (store.User, error) {
	return store.User{}, errTODO
}

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(ctx context.Context, id string) error { return errTODO }

// UserByOIDC implements store.Store.
func (s *Store) UserByOIDC(ctx context.Context, issuer, subject string) (store.User, error) {
	return store.User{}, errTODO
}

// DeleteUserSessions implements store.Store.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int, error) {
	return 0, errTODO
}

// CreateAPIToken implements store.Store.
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) error { return errTODO }

// APITokenByHash implements store.Store.
func (s *Store) APITokenByHash(ctx context.Context, tokenHash []byte, now time.Time) (store.APIToken, error) {
	return store.APIToken{}, store.ErrNotFound
}

// ListAPITokens implements store.Store.
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]store.APIToken, error) {
	return nil, errTODO
}

// DeleteAPIToken implements store.Store.
func (s *Store) DeleteAPIToken(ctx context.Context, userID, name string) error { return errTODO }

// TouchAPITokens implements store.Store.
func (s *Store) TouchAPITokens(ctx context.Context, uses []store.APITokenUse) error { return errTODO }

// DeleteWorkspace implements store.Store.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error { return errTODO }

// RotateAgentToken implements store.Store.
func (s *Store) RotateAgentToken(ctx context.Context, id string, tokenHash []byte, expiresAt time.Time) (store.Workspace, error) {
	return store.Workspace{}, errTODO
}
