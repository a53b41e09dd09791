package controlplane

// TEMPORARY: an in-memory stand-in for the API token methods of the store
// until the lead's implementation lands on main; deleted then.

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

type memTokens struct {
	store.Store
	mu   sync.Mutex
	toks []store.APIToken
}

func wrapTokenStore(srv *Server) { srv.api.store = &memTokens{Store: srv.api.store} }

func (m *memTokens) CreateAPIToken(_ context.Context, t store.APIToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.toks {
		if x.UserID == t.UserID && x.Name == t.Name {
			return &store.ConflictError{Field: "name", Message: "name taken"}
		}
	}
	m.toks = append(m.toks, t)
	return nil
}

func (m *memTokens) APITokenByHash(_ context.Context, h []byte, now time.Time) (store.APIToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.toks {
		if bytes.Equal(x.TokenHash, h) && x.ExpiresAt.After(now) {
			return x, nil
		}
	}
	return store.APIToken{}, store.ErrNotFound
}

func (m *memTokens) ListAPITokens(_ context.Context, userID string) ([]store.APIToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.APIToken
	for _, x := range m.toks {
		if userID == "" || x.UserID == userID {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].UserID != out[j].UserID {
			return out[i].UserID < out[j].UserID
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (m *memTokens) DeleteAPIToken(_ context.Context, userID, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.toks {
		if x.UserID == userID && x.Name == name {
			m.toks = append(m.toks[:i], m.toks[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

func (m *memTokens) TouchAPITokens(_ context.Context, uses []store.APITokenUse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range uses {
		for i := range m.toks {
			if m.toks[i].ID == u.ID && u.At.After(m.toks[i].LastUsedAt) {
				m.toks[i].LastUsedAt, m.toks[i].LastUsedAddr = u.At, u.Addr
			}
		}
	}
	return nil
}
