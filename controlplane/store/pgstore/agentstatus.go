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

// AgentConnected implements store.Store.
func (s *Store) AgentConnected(ctx context.Context, workspaceID string, c store.AgentConnection) error {
	return s.agentEvent(ctx, store.AgentEvent{Kind: store.AgentEventConnected, WorkspaceID: workspaceID, Conn: c})
}

// AgentDisconnected implements store.Store.
func (s *Store) AgentDisconnected(ctx context.Context, workspaceID, connID string, at time.Time) error {
	return s.agentEvent(ctx, store.AgentEvent{Kind: store.AgentEventDisconnected, WorkspaceID: workspaceID, ConnID: connID, At: at})
}

// AgentReplaced implements store.Store.
func (s *Store) AgentReplaced(ctx context.Context, workspaceID string, at time.Time, note string) error {
	return s.agentEvent(ctx, store.AgentEvent{Kind: store.AgentEventReplaced, WorkspaceID: workspaceID, At: at, Note: note})
}

// SetAgentApply implements store.Store.
func (s *Store) SetAgentApply(ctx context.Context, workspaceID string, rep proto.ApplyReport) error {
	return s.agentEvent(ctx, store.AgentEvent{Kind: store.AgentEventApplied, WorkspaceID: workspaceID, Apply: rep})
}

// agentEvent records one event: ErrNotFound when its workspace does not
// exist.
func (s *Store) agentEvent(ctx context.Context, ev store.AgentEvent) error {
	missing, err := s.RecordAgentEvents(ctx, []store.AgentEvent{ev})
	if err == nil && len(missing) > 0 {
		return store.ErrNotFound
	}
	return err
}

// RecordAgentEvents implements store.Store: one transaction whose
// statements go in one round trip (a pipeline). The upserts are guarded
// by the workspace's existence instead of failing on the foreign key,
// which would abort the whole transaction for one deleted workspace; an
// upsert that touched no row is a missing workspace.
func (s *Store) RecordAgentEvents(ctx context.Context, evs []store.AgentEvent) ([]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	type stmt struct {
		sql  string
		args []any
	}
	var (
		stmts   = make([]stmt, 0, len(evs))
		queued  = make([]int, 0, len(evs)) // the event of each statement
		missing []int
	)
	for i, ev := range evs {
		if !storable(ev.WorkspaceID) {
			if ev.Kind != store.AgentEventDisconnected {
				missing = append(missing, i)
			}
			continue
		}
		switch ev.Kind {
		case store.AgentEventConnected:
			c := ev.Conn
			stmts = append(stmts, stmt{`INSERT INTO agent_status(workspace_id, connected, conn_id, remote_addr, agent_version, connected_at, replica_id)
				SELECT $1::text, true, $2::text, $3::text, $4::text, $5::bigint, $6::text WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)
				ON CONFLICT (workspace_id) DO UPDATE SET connected = true, conn_id = excluded.conn_id, replica_id = excluded.replica_id,
					remote_addr = excluded.remote_addr, agent_version = excluded.agent_version, connected_at = excluded.connected_at`,
				[]any{ev.WorkspaceID, shown(c.ID), shown(c.RemoteAddr), shown(c.AgentVersion), nanos(c.At), shown(c.ReplicaID)}})
		case store.AgentEventDisconnected:
			stmts = append(stmts, stmt{`UPDATE agent_status SET connected = false, replica_id = '', disconnected_at = $1
				WHERE workspace_id = $2 AND conn_id = $3`, []any{nanos(ev.At), ev.WorkspaceID, shown(ev.ConnID)}})
		case store.AgentEventReplaced:
			stmts = append(stmts, stmt{`INSERT INTO agent_status(workspace_id, replaced_at, replaced_note)
				SELECT $1::text, $2::bigint, $3::text WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)
				ON CONFLICT (workspace_id) DO UPDATE SET replaced_at = excluded.replaced_at, replaced_note = excluded.replaced_note`,
				[]any{ev.WorkspaceID, nanos(ev.At), shown(ev.Note)}})
		case store.AgentEventApplied:
			rep, err := json.Marshal(ev.Apply)
			if err != nil {
				return nil, fmt.Errorf("pgstore: encode apply report: %w", err)
			}
			stmts = append(stmts, stmt{`INSERT INTO agent_status(workspace_id, last_apply)
				SELECT $1::text, $2::json WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)
				ON CONFLICT (workspace_id) DO UPDATE SET last_apply = excluded.last_apply`,
				[]any{ev.WorkspaceID, json.RawMessage(rep)}})
		default:
			return nil, fmt.Errorf("pgstore: unknown agent event kind %d", ev.Kind)
		}
		queued = append(queued, i)
	}
	if len(queued) == 0 {
		return missing, nil
	}
	// One round trip and one implicit transaction: a batch sent outside a
	// transaction ends in a single Sync, so PostgreSQL runs it as one
	// unit, without a BEGIN and a COMMIT of their own. A batch is sent
	// once, so each attempt builds its own.
	var (
		notFound []int
		err      error
	)
	for attempt := 1; ; attempt++ {
		b := &pgx.Batch{}
		for _, st := range stmts {
			b.Queue(st.sql, st.args...)
		}
		notFound, err = sendAgentEvents(s.pool.SendBatch(ctx, b), evs, queued)
		if attempt < maxAttempts && retryable(err) {
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	return mergeSorted(missing, notFound), nil
}

// sendAgentEvents reads the results of a batch of RecordAgentEvents: the
// indexes of the upserts that touched no row, whose workspace is missing.
func sendAgentEvents(br pgx.BatchResults, evs []store.AgentEvent, queued []int) ([]int, error) {
	var notFound []int
	for _, i := range queued {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return nil, err
		}
		if tag.RowsAffected() == 0 && evs[i].Kind != store.AgentEventDisconnected {
			notFound = append(notFound, i)
		}
	}
	return notFound, br.Close()
}

// mergeSorted merges two ascending lists of indexes.
func mergeSorted(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
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
