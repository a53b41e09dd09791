package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// upsertStatus runs an INSERT ... ON CONFLICT statement on agent_status: a
// missing workspace breaks the foreign key and is store.ErrNotFound.
func (s *Store) upsertStatus(ctx context.Context, q string, workspaceID string, args ...any) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(workspaceID) {
		return store.ErrNotFound
	}
	args = append([]any{workspaceID}, args...)
	_, err := s.pool.Exec(ctx, q, args...)
	if code, _ := sqlState(err); code == codeForeignKey {
		return store.ErrNotFound
	}
	return err
}

// AgentConnected implements store.Store.
func (s *Store) AgentConnected(ctx context.Context, workspaceID string, c store.AgentConnection) error {
	return s.upsertStatus(ctx, `INSERT INTO agent_status(workspace_id, connected, conn_id, remote_addr, agent_version, connected_at)
		VALUES ($1, true, $2, $3, $4, $5)
		ON CONFLICT (workspace_id) DO UPDATE SET connected = true, conn_id = excluded.conn_id,
			remote_addr = excluded.remote_addr, agent_version = excluded.agent_version, connected_at = excluded.connected_at`,
		workspaceID, shown(c.ID), shown(c.RemoteAddr), shown(c.AgentVersion), nanos(c.At))
}

// AgentDisconnected implements store.Store.
func (s *Store) AgentDisconnected(ctx context.Context, workspaceID, connID string, at time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(workspaceID) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE agent_status SET connected = false, disconnected_at = $1
		WHERE workspace_id = $2 AND conn_id = $3`, nanos(at), workspaceID, shown(connID))
	return err
}

// AgentReplaced implements store.Store.
func (s *Store) AgentReplaced(ctx context.Context, workspaceID string, at time.Time, note string) error {
	return s.upsertStatus(ctx, `INSERT INTO agent_status(workspace_id, replaced_at, replaced_note) VALUES ($1, $2, $3)
		ON CONFLICT (workspace_id) DO UPDATE SET replaced_at = excluded.replaced_at, replaced_note = excluded.replaced_note`,
		workspaceID, nanos(at), shown(note))
}

// SetAgentApply implements store.Store.
func (s *Store) SetAgentApply(ctx context.Context, workspaceID string, rep proto.ApplyReport) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("pgstore: encode apply report: %w", err)
	}
	return s.upsertStatus(ctx, `INSERT INTO agent_status(workspace_id, last_apply) VALUES ($1, $2)
		ON CONFLICT (workspace_id) DO UPDATE SET last_apply = excluded.last_apply`,
		workspaceID, json.RawMessage(b))
}

// AgentStatus implements store.Store. The outer join tells a workspace
// whose agent never connected (no status row) from a missing workspace.
func (s *Store) AgentStatus(ctx context.Context, workspaceID string) (store.AgentStatus, error) {
	if err := s.check(); err != nil {
		return store.AgentStatus{}, err
	}
	if !storable(workspaceID) {
		return store.AgentStatus{}, store.ErrNotFound
	}
	var (
		st                             store.AgentStatus
		connectedAt, disconnAt, replAt int64
		lastApply                      []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT w.id, coalesce(a.connected, false), coalesce(a.conn_id, ''),
			coalesce(a.remote_addr, ''), coalesce(a.agent_version, ''), coalesce(a.connected_at, 0),
			coalesce(a.disconnected_at, 0), coalesce(a.replaced_at, 0), coalesce(a.replaced_note, ''), a.last_apply
		FROM workspaces w LEFT JOIN agent_status a ON a.workspace_id = w.id WHERE w.id = $1`, workspaceID).
		Scan(&st.WorkspaceID, &st.Connected, &st.ConnID, &st.RemoteAddr, &st.AgentVersion, &connectedAt,
			&disconnAt, &replAt, &st.ReplacedNote, &lastApply)
	if err != nil {
		return store.AgentStatus{}, notFound(err)
	}
	st.ConnectedAt, st.DisconnectedAt, st.ReplacedAt = fromNanos(connectedAt), fromNanos(disconnAt), fromNanos(replAt)
	if lastApply != nil {
		var rep proto.ApplyReport
		if err := json.Unmarshal(lastApply, &rep); err != nil {
			return store.AgentStatus{}, fmt.Errorf("pgstore: workspace %s: apply report: %w", workspaceID, err)
		}
		st.LastApply = &rep
	}
	return st, nil
}

// DisconnectAllAgents implements store.Store. With several replicas on one
// database this marks the other replicas' agents disconnected too, until
// they next report; a per-replica record is the cure (see store.Store).
func (s *Store) DisconnectAllAgents(ctx context.Context, at time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `UPDATE agent_status SET connected = false, disconnected_at = $1 WHERE connected`, nanos(at))
	return err
}
