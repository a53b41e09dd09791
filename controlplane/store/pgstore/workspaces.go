package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

const workspaceCols = `id, name, owner_id, template, agent_token_hash, created_at, state, state_at, agent_token_expires_at`

func scanWorkspace(row rowScanner) (store.Workspace, error) {
	var w store.Workspace
	var tmpl []byte
	var created, stateAt, expires int64
	if err := row.Scan(&w.ID, &w.Name, &w.OwnerID, &tmpl, &w.AgentTokenHash, &created, &w.State, &stateAt, &expires); err != nil {
		return store.Workspace{}, notFound(err)
	}
	if err := json.Unmarshal(tmpl, &w.Template); err != nil {
		return store.Workspace{}, fmt.Errorf("pgstore: workspace %s: template: %w", w.ID, err)
	}
	w.CreatedAt, w.StateAt, w.AgentTokenExpiresAt = fromNanos(created), fromNanos(stateAt), fromNanos(expires)
	return w, nil
}

// CreateWorkspace implements store.Store.
func (s *Store) CreateWorkspace(ctx context.Context, w store.Workspace) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(w.ID, w.Name, w.OwnerID) {
		return ErrText
	}
	tmpl, err := json.Marshal(w.Template)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO workspaces(`+workspaceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		w.ID, w.Name, w.OwnerID, json.RawMessage(tmpl), w.AgentTokenHash, nanos(w.CreatedAt), shown(w.State), nanos(w.StateAt), nanos(w.AgentTokenExpiresAt))
	switch code, constraint := sqlState(err); {
	case code == codeUnique && constraint == "workspaces_owner_name":
		return &store.ConflictError{Field: "name", Message: fmt.Sprintf("the owner already has a workspace named %q", w.Name)}
	case code == codeUnique && constraint == "workspaces_agent_token":
		return &store.ConflictError{Field: "agent_token", Message: "the agent token is already in use"}
	case err != nil:
		return fmt.Errorf("pgstore: insert workspace: %w", err)
	}
	return nil
}

func (s *Store) workspaceWhere(ctx context.Context, where string, args ...any) (store.Workspace, error) {
	if err := s.check(); err != nil {
		return store.Workspace{}, err
	}
	for _, a := range args {
		if text, ok := a.(string); ok && !storable(text) {
			return store.Workspace{}, store.ErrNotFound
		}
	}
	return scanWorkspace(s.pool.QueryRow(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE `+where, args...))
}

// WorkspaceByID implements store.Store.
func (s *Store) WorkspaceByID(ctx context.Context, id string) (store.Workspace, error) {
	return s.workspaceWhere(ctx, `id = $1`, id)
}

// WorkspaceByName implements store.Store.
func (s *Store) WorkspaceByName(ctx context.Context, ownerID, name string) (store.Workspace, error) {
	return s.workspaceWhere(ctx, `owner_id = $1 AND name = $2`, ownerID, name)
}

// agentLookupCols are workspaceCols qualified with w., then the owner's
// userCols qualified with u. (both tables have created_at).
var agentLookupCols = "w." + strings.ReplaceAll(workspaceCols, ", ", ", w.") + ", " + sessionUserCols

// WorkspaceByAgentTokenHash implements store.Store: one round trip where
// WorkspaceByID and UserByID take two.
func (s *Store) WorkspaceByAgentTokenHash(ctx context.Context, tokenHash []byte) (store.Workspace, store.User, error) {
	if err := s.check(); err != nil {
		return store.Workspace{}, store.User{}, err
	}
	row := s.pool.QueryRow(ctx, `SELECT `+agentLookupCols+`
		FROM workspaces w JOIN users u ON u.id = w.owner_id WHERE w.agent_token_hash = $1`, tokenHash)
	var owner store.User
	ws, err := scanWorkspace(scanFunc(func(wdest ...any) (err error) {
		owner, err = scanUser(scanFunc(func(udest ...any) error {
			return row.Scan(append(wdest, udest...)...)
		}))
		return err
	}))
	if err != nil {
		return store.Workspace{}, store.User{}, err
	}
	return ws, owner, nil
}

// ListWorkspaces implements store.Store.
func (s *Store) ListWorkspaces(ctx context.Context, ownerID string) ([]store.Workspace, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storable(ownerID) {
		return nil, nil
	}
	q, args := `SELECT `+workspaceCols+` FROM workspaces ORDER BY name, owner_id`, []any{}
	if ownerID != "" {
		q, args = `SELECT `+workspaceCols+` FROM workspaces WHERE owner_id = $1 ORDER BY name`, []any{ownerID}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	return collect(rows, err, scanWorkspace)
}

// SetWorkspaceState implements store.Store.
func (s *Store) SetWorkspaceState(ctx context.Context, id, state string, at time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(id) {
		return store.ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, `UPDATE workspaces SET state = $1, state_at = $2 WHERE id = $3`, shown(state), nanos(at), id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}
