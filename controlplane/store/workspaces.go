package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

const workspaceCols = `id, name, owner_id, template, agent_token_hash, created_at, state, state_at, agent_token_expires_at`

func scanWorkspace(row interface{ Scan(...any) error }) (Workspace, error) {
	var w Workspace
	var tmpl string
	var created, stateAt, expires int64
	if err := row.Scan(&w.ID, &w.Name, &w.OwnerID, &tmpl, &w.AgentTokenHash, &created, &w.State, &stateAt, &expires); err != nil {
		return Workspace{}, notFound(err)
	}
	if err := json.Unmarshal([]byte(tmpl), &w.Template); err != nil {
		return Workspace{}, fmt.Errorf("store: workspace %s: template: %w", w.ID, err)
	}
	w.CreatedAt, w.StateAt, w.AgentTokenExpiresAt = fromNanos(created), fromNanos(stateAt), fromNanos(expires)
	return w, nil
}

// CreateWorkspace implements Store.
func (s *SQLite) CreateWorkspace(ctx context.Context, w Workspace) error {
	tmpl, err := json.Marshal(w.Template)
	if err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM workspaces WHERE owner_id = ? AND name = ?`, w.OwnerID, w.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &ConflictError{Field: "name", Message: fmt.Sprintf("the owner already has a workspace named %q", w.Name)}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO workspaces(`+workspaceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.Name, w.OwnerID, string(tmpl), w.AgentTokenHash, nanos(w.CreatedAt), w.State, nanos(w.StateAt), nanos(w.AgentTokenExpiresAt))
		return err
	})
}

func (s *SQLite) workspaceWhere(ctx context.Context, where string, args ...any) (Workspace, error) {
	if err := s.check(); err != nil {
		return Workspace{}, err
	}
	return scanWorkspace(s.db.QueryRowContext(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE `+where, args...))
}

// WorkspaceByID implements Store.
func (s *SQLite) WorkspaceByID(ctx context.Context, id string) (Workspace, error) {
	return s.workspaceWhere(ctx, `id = ?`, id)
}

// WorkspaceByName implements Store.
func (s *SQLite) WorkspaceByName(ctx context.Context, ownerID, name string) (Workspace, error) {
	return s.workspaceWhere(ctx, `owner_id = ? AND name = ?`, ownerID, name)
}

// agentLookupCols are workspaceCols qualified with w., then the owner's
// userCols qualified with u. (both tables have created_at).
var agentLookupCols = "w." + strings.ReplaceAll(workspaceCols, ", ", ", w.") + ", " + sessionUserCols

// WorkspaceByAgentTokenHash implements Store: one read where
// WorkspaceByID and UserByID take two.
func (s *SQLite) WorkspaceByAgentTokenHash(ctx context.Context, tokenHash []byte) (Workspace, User, error) {
	if err := s.check(); err != nil {
		return Workspace{}, User{}, err
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+agentLookupCols+`
		FROM workspaces w JOIN users u ON u.id = w.owner_id WHERE w.agent_token_hash = ?`, tokenHash)
	var owner User
	ws, err := scanWorkspace(scanFunc(func(wdest ...any) (err error) {
		owner, err = scanUser(scanFunc(func(udest ...any) error {
			return row.Scan(append(wdest, udest...)...)
		}))
		return err
	}))
	if err != nil {
		return Workspace{}, User{}, err
	}
	return ws, owner, nil
}

// ListWorkspaces implements Store.
func (s *SQLite) ListWorkspaces(ctx context.Context, ownerID string) ([]Workspace, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	q, args := `SELECT `+workspaceCols+` FROM workspaces ORDER BY name, owner_id`, []any{}
	if ownerID != "" {
		q, args = `SELECT `+workspaceCols+` FROM workspaces WHERE owner_id = ? ORDER BY name`, []any{ownerID}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Workspace
	for rows.Next() {
		w, err := scanWorkspace(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// SetWorkspaceState implements Store.
func (s *SQLite) SetWorkspaceState(ctx context.Context, id, state string, at time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE workspaces SET state = ?, state_at = ? WHERE id = ?`, state, nanos(at), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
