package pgstore

import (
	"context"
	"time"
)

// ConnectedAgentsByReplica implements store.Store.
func (s *Store) ConnectedAgentsByReplica(ctx context.Context, liveSince time.Time) (map[string]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT r.id, (SELECT count(*) FROM agent_status a WHERE a.connected AND a.replica_id = r.id)
		FROM replicas r WHERE r.heartbeat_at >= $1`, nanos(liveSince))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = int(n)
	}
	return out, rows.Err()
}
