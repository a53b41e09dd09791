package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/courierhq/courier/agent/proto"
)

const agentStatusCols = `workspace_id, connected, conn_id, remote_addr, agent_version, connected_at,
	disconnected_at, replaced_at, replaced_note, last_apply`

// ensureAgentStatus creates the workspace's status row if it is missing;
// ErrNotFound when the workspace does not exist.
func ensureAgentStatus(ctx context.Context, tx *sql.Tx, workspaceID string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM workspaces WHERE id = ?`, workspaceID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO agent_status(workspace_id) VALUES (?)`, workspaceID)
	return err
}

// AgentConnected implements Store.
func (s *SQLite) AgentConnected(ctx context.Context, workspaceID string, c AgentConnection) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := ensureAgentStatus(ctx, tx, workspaceID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE agent_status SET connected = 1, conn_id = ?, remote_addr = ?,
			agent_version = ?, connected_at = ? WHERE workspace_id = ?`,
			c.ID, c.RemoteAddr, c.AgentVersion, nanos(c.At), workspaceID)
		return err
	})
}

// AgentDisconnected implements Store.
func (s *SQLite) AgentDisconnected(ctx context.Context, workspaceID, connID string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE agent_status SET connected = 0, disconnected_at = ?
			WHERE workspace_id = ? AND conn_id = ?`, nanos(at), workspaceID, connID)
		return err
	})
}

// AgentReplaced implements Store.
func (s *SQLite) AgentReplaced(ctx context.Context, workspaceID string, at time.Time, note string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := ensureAgentStatus(ctx, tx, workspaceID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE agent_status SET replaced_at = ?, replaced_note = ? WHERE workspace_id = ?`,
			nanos(at), note, workspaceID)
		return err
	})
}

// SetAgentApply implements Store.
func (s *SQLite) SetAgentApply(ctx context.Context, workspaceID string, rep proto.ApplyReport) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("store: encode apply report: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := ensureAgentStatus(ctx, tx, workspaceID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE agent_status SET last_apply = ? WHERE workspace_id = ?`, string(b), workspaceID)
		return err
	})
}

// AgentStatus implements Store.
func (s *SQLite) AgentStatus(ctx context.Context, workspaceID string) (AgentStatus, error) {
	if err := s.check(); err != nil {
		return AgentStatus{}, err
	}
	var (
		st                             AgentStatus
		connectedAt, disconnAt, replAt int64
		lastApply                      string
	)
	err := s.db.QueryRowContext(ctx, `SELECT `+agentStatusCols+` FROM agent_status WHERE workspace_id = ?`, workspaceID).
		Scan(&st.WorkspaceID, &st.Connected, &st.ConnID, &st.RemoteAddr, &st.AgentVersion, &connectedAt,
			&disconnAt, &replAt, &st.ReplacedNote, &lastApply)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.WorkspaceByID(ctx, workspaceID); err != nil {
			return AgentStatus{}, err
		}
		return AgentStatus{WorkspaceID: workspaceID}, nil
	}
	if err != nil {
		return AgentStatus{}, err
	}
	st.ConnectedAt, st.DisconnectedAt, st.ReplacedAt = fromNanos(connectedAt), fromNanos(disconnAt), fromNanos(replAt)
	if lastApply != "" {
		var rep proto.ApplyReport
		if err := json.Unmarshal([]byte(lastApply), &rep); err != nil {
			return AgentStatus{}, fmt.Errorf("store: workspace %s: apply report: %w", workspaceID, err)
		}
		st.LastApply = &rep
	}
	return st, nil
}

// DisconnectAllAgents implements Store.
func (s *SQLite) DisconnectAllAgents(ctx context.Context, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE agent_status SET connected = 0, disconnected_at = ? WHERE connected = 1`, nanos(at))
		return err
	})
}
