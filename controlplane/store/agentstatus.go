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

const agentStatusCols = `workspace_id, connected, conn_id, replica_id, remote_addr, agent_version, connected_at,
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
	return s.agentEvent(ctx, AgentEvent{Kind: AgentEventConnected, WorkspaceID: workspaceID, Conn: c})
}

// AgentDisconnected implements Store.
func (s *SQLite) AgentDisconnected(ctx context.Context, workspaceID, connID string, at time.Time) error {
	return s.agentEvent(ctx, AgentEvent{Kind: AgentEventDisconnected, WorkspaceID: workspaceID, ConnID: connID, At: at})
}

// AgentReplaced implements Store.
func (s *SQLite) AgentReplaced(ctx context.Context, workspaceID string, at time.Time, note string) error {
	return s.agentEvent(ctx, AgentEvent{Kind: AgentEventReplaced, WorkspaceID: workspaceID, At: at, Note: note})
}

// SetAgentApply implements Store.
func (s *SQLite) SetAgentApply(ctx context.Context, workspaceID string, rep proto.ApplyReport) error {
	return s.agentEvent(ctx, AgentEvent{Kind: AgentEventApplied, WorkspaceID: workspaceID, Apply: rep})
}

// agentEvent applies one event in a write of its own (an error, the
// report's encoding included, rolls back this write alone: each runs in
// a savepoint of the group commit).
func (s *SQLite) agentEvent(ctx context.Context, ev AgentEvent) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return applyAgentEvent(ctx, tx, ev)
	})
}

// RecordAgentEvents implements Store: one write of the group commit.
func (s *SQLite) RecordAgentEvents(ctx context.Context, evs []AgentEvent) ([]int, error) {
	var missing []int
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		missing = missing[:0] // a write may run its function again
		for i, ev := range evs {
			err := applyAgentEvent(ctx, tx, ev)
			if errors.Is(err, ErrNotFound) {
				missing = append(missing, i)
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return missing, nil
}

// applyAgentEvent applies ev in tx: ErrNotFound, having changed nothing,
// when its workspace does not exist (never for a Disconnected event).
func applyAgentEvent(ctx context.Context, tx *sql.Tx, ev AgentEvent) error {
	if ev.Kind == AgentEventDisconnected {
		_, err := tx.ExecContext(ctx, `UPDATE agent_status SET connected = 0, replica_id = '', disconnected_at = ?
			WHERE workspace_id = ? AND conn_id = ?`, nanos(ev.At), ev.WorkspaceID, ev.ConnID)
		return err
	}
	var (
		q    string
		args []any
	)
	switch ev.Kind {
	case AgentEventConnected:
		c := ev.Conn
		q = `UPDATE agent_status SET connected = 1, conn_id = ?, replica_id = ?, remote_addr = ?,
			agent_version = ?, connected_at = ? WHERE workspace_id = ?`
		args = []any{c.ID, c.ReplicaID, c.RemoteAddr, c.AgentVersion, nanos(c.At), ev.WorkspaceID}
	case AgentEventReplaced:
		q = `UPDATE agent_status SET replaced_at = ?, replaced_note = ? WHERE workspace_id = ?`
		args = []any{nanos(ev.At), ev.Note, ev.WorkspaceID}
	case AgentEventApplied:
		b, err := json.Marshal(ev.Apply)
		if err != nil {
			return fmt.Errorf("store: encode apply report: %w", err)
		}
		q = `UPDATE agent_status SET last_apply = ? WHERE workspace_id = ?`
		args = []any{string(b), ev.WorkspaceID}
	default:
		return fmt.Errorf("store: unknown agent event kind %d", ev.Kind)
	}
	if err := ensureAgentStatus(ctx, tx, ev.WorkspaceID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, q, args...)
	return err
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
		Scan(&st.WorkspaceID, &st.Connected, &st.ConnID, &st.ReplicaID, &st.RemoteAddr, &st.AgentVersion, &connectedAt,
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

// DisconnectStaleAgents implements Store.
func (s *SQLite) DisconnectStaleAgents(ctx context.Context, replicaID string, staleBefore, at time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE heartbeat_at < ? AND id <> ?`, nanos(staleBefore), replicaID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE agent_status SET connected = 0, replica_id = '', disconnected_at = ?
			WHERE connected = 1 AND (replica_id = ? OR replica_id NOT IN (SELECT id FROM replicas))`, nanos(at), replicaID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// RegisterReplica implements Store.
func (s *SQLite) RegisterReplica(ctx context.Context, r Replica) (bool, error) {
	var existed bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE replicas SET relay_url = ?, heartbeat_at = ? WHERE id = ?`,
			r.RelayURL, nanos(r.HeartbeatAt), r.ID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n > 0 {
			existed = n > 0
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO replicas(id, relay_url, heartbeat_at) VALUES (?, ?, ?)`,
			r.ID, r.RelayURL, nanos(r.HeartbeatAt))
		return err
	})
	return existed, err
}

// Replica implements Store.
func (s *SQLite) Replica(ctx context.Context, id string) (Replica, error) {
	if err := s.check(); err != nil {
		return Replica{}, err
	}
	r := Replica{ID: id}
	var hb int64
	err := s.db.QueryRowContext(ctx, `SELECT relay_url, heartbeat_at FROM replicas WHERE id = ?`, id).Scan(&r.RelayURL, &hb)
	if errors.Is(err, sql.ErrNoRows) {
		return Replica{}, ErrNotFound
	}
	r.HeartbeatAt = fromNanos(hb)
	return r, err
}

// RemoveReplica implements Store.
func (s *SQLite) RemoveReplica(ctx context.Context, id string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE id = ?`, id)
		return err
	})
}
