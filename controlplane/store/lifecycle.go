package store

import (
	"context"
	"errors"
	"time"
)

// errTODO marks the lifecycle methods not implemented yet (issue 19).
var errTODO = errors.New("store: not implemented yet")

// UpdateUser implements Store.
func (s *SQLite) UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error) {
	return User{}, errTODO
}

// DeleteUser implements Store.
func (s *SQLite) DeleteUser(ctx context.Context, id string) error { return errTODO }

// UserByOIDC implements Store.
func (s *SQLite) UserByOIDC(ctx context.Context, issuer, subject string) (User, error) {
	return User{}, errTODO
}

// DeleteUserSessions implements Store.
func (s *SQLite) DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int, error) {
	return 0, errTODO
}

// CreateAPIToken implements Store.
func (s *SQLite) CreateAPIToken(ctx context.Context, t APIToken) error { return errTODO }

// APITokenByHash implements Store.
func (s *SQLite) APITokenByHash(ctx context.Context, tokenHash []byte, now time.Time) (APIToken, error) {
	return APIToken{}, ErrNotFound
}

// ListAPITokens implements Store.
func (s *SQLite) ListAPITokens(ctx context.Context, userID string) ([]APIToken, error) {
	return nil, errTODO
}

// DeleteAPIToken implements Store.
func (s *SQLite) DeleteAPIToken(ctx context.Context, userID, name string) error { return errTODO }

// TouchAPITokens implements Store.
func (s *SQLite) TouchAPITokens(ctx context.Context, uses []APITokenUse) error { return errTODO }

// DeleteWorkspace implements Store.
func (s *SQLite) DeleteWorkspace(ctx context.Context, id string) error { return errTODO }

// RotateAgentToken implements Store.
func (s *SQLite) RotateAgentToken(ctx context.Context, id string, tokenHash []byte, expiresAt time.Time) (Workspace, error) {
	return Workspace{}, errTODO
}
