package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	return s.upsertStatus(ctx, `INSERT INTO agent_status(workspace_id, connected, conn_id, remote_addr, agent_version, connected_at, replica_id)
		VALUES ($1, true, $2, $3, $4, $5, $6)
		ON CONFLICT (workspace_id) DO UPDATE SET connected = true, conn_id = excluded.conn_id, replica_id = excluded.replica_id,
			remote_addr = excluded.remote_addr, agent_version = excluded.agent_version, connected_at = excluded.connected_at`,
		workspaceID, shown(c.ID), shown(c.RemoteAddr), shown(c.AgentVersion), nanos(c.At), shown(c.ReplicaID))
}

// AgentDisconnected implements store.Store.
func (s *Store) AgentDisconnected(ctx context.Context, workspaceID, connID string, at time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(workspaceID) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE agent_status SET connected = false, replica_id = '', disconnected_at = $1
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
	err := s.pool.QueryRow(ctx, `SELECT w.id, coalesce(a.connected, false), coalesce(a.conn_id, ''), coalesce(a.replica_id, ''),
			coalesce(a.remote_addr, ''), coalesce(a.agent_version, ''), coalesce(a.connected_at, 0),
			coalesce(a.disconnected_at, 0), coalesce(a.replaced_at, 0), coalesce(a.replaced_note, ''), a.last_apply
		FROM workspaces w LEFT JOIN agent_status a ON a.workspace_id = w.id WHERE w.id = $1`, workspaceID).
		Scan(&st.WorkspaceID, &st.Connected, &st.ConnID, &st.ReplicaID, &st.RemoteAddr, &st.AgentVersion, &connectedAt,
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

// DisconnectStaleAgents implements store.Store. Agents of replicas whose
// heartbeat is fresh are left alone, so a replica starting beside others
// does not mark their agents disconnected. Stale replicas are deleted
// first: a heartbeat committed meanwhile makes the DELETE skip that row
// (READ COMMITTED re-checks it), and the UPDATE, a later statement, sees
// the row and spares its agents.
func (s *Store) DisconnectStaleAgents(ctx context.Context, replicaID string, staleBefore, at time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM replicas WHERE heartbeat_at < $1 AND id <> $2`,
			nanos(staleBefore), shown(replicaID)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE agent_status SET connected = false, replica_id = '', disconnected_at = $1
			WHERE connected AND (replica_id = $2 OR replica_id NOT IN (SELECT id FROM replicas))`, nanos(at), shown(replicaID))
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// RegisterReplica implements store.Store. The UPDATE waits for a
// concurrent DisconnectStaleAgents that removed the row; finding none, it
// inserts and reports false, after that sweep committed.
func (s *Store) RegisterReplica(ctx context.Context, r store.Replica) (bool, error) {
	if !storable(r.ID, r.RelayURL) {
		return false, ErrText
	}
	var existed bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE replicas SET relay_url = $1, heartbeat_at = $2 WHERE id = $3`,
			r.RelayURL, nanos(r.HeartbeatAt), r.ID)
		if err != nil {
			return err
		}
		if existed = tag.RowsAffected() > 0; existed {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO replicas(id, relay_url, heartbeat_at) VALUES ($1, $2, $3)`,
			r.ID, r.RelayURL, nanos(r.HeartbeatAt))
		return err
	})
	return existed, err
}

// Replica implements store.Store.
func (s *Store) Replica(ctx context.Context, id string) (store.Replica, error) {
	if err := s.check(); err != nil {
		return store.Replica{}, err
	}
	if !storable(id) {
		return store.Replica{}, store.ErrNotFound
	}
	r := store.Replica{ID: id}
	var hb int64
	if err := s.pool.QueryRow(ctx, `SELECT relay_url, heartbeat_at FROM replicas WHERE id = $1`, id).Scan(&r.RelayURL, &hb); err != nil {
		return store.Replica{}, notFound(err)
	}
	r.HeartbeatAt = fromNanos(hb)
	return r, nil
}

// RemoveReplica implements store.Store.
func (s *Store) RemoveReplica(ctx context.Context, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(id) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, id)
	return err
}
