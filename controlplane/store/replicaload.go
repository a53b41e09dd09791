package store

import (
	"context"
	"time"
)

// ConnectedAgentsByReplica implements Store.
func (s *SQLite) ConnectedAgentsByReplica(ctx context.Context, liveSince time.Time) (map[string]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r.id, (SELECT count(*) FROM agent_status a WHERE a.connected = 1 AND a.replica_id = r.id)
		FROM replicas r WHERE r.heartbeat_at >= ?`, nanos(liveSince))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
