package controlplane

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

// replicaTimeout bounds one registration or sweep.
const replicaTimeout = 10 * time.Second

// registerReplica records this replica (ID, advertised URL, heartbeat) and
// marks disconnected the agents this replica, no replica or a dead one
// holds. Agents of live replicas are left alone.
func (s *Server) registerReplica(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	now := s.cfg.now().UTC()
	if _, err := s.store.RegisterReplica(ctx, store.Replica{ID: s.replicaID, RelayURL: s.cfg.AdvertiseURL, HeartbeatAt: now}); err != nil {
		s.log.Error("could not register this replica", zap.Error(err))
	}
	n, err := s.store.DisconnectStaleAgents(ctx, s.replicaID, now.Add(-s.cfg.ReplicaTTL), now)
	if err != nil {
		s.log.Error("could not reset the agents' connection status", zap.Error(err))
		return
	}
	s.log.Info("registered replica", zap.String("replica_id", s.replicaID),
		zap.String("advertise_url", s.cfg.AdvertiseURL), zap.Int("agents_reset", n))
}

// heartbeat refreshes the registration every HeartbeatInterval and resets
// the agents of replicas whose heartbeat stopped, until ctx ends. When
// another replica removed this one's registration (a heartbeat came too
// late, say the database was out of reach), the agents it holds were
// marked disconnected: it records them connected again.
func (s *Server) heartbeat(ctx context.Context) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, replicaTimeout)
		now := s.cfg.now().UTC()
		existed, err := s.store.RegisterReplica(bctx, store.Replica{ID: s.replicaID, RelayURL: s.cfg.AdvertiseURL, HeartbeatAt: now})
		if err == nil && !existed {
			s.log.Warn("this replica's registration had expired; recording its agents connected again")
			err = s.agents.RecordConnections(bctx)
		}
		if err == nil {
			// "" names no replica of ours: only agents without a live
			// holder are reset.
			var n int
			if n, err = s.store.DisconnectStaleAgents(bctx, "", now.Add(-s.cfg.ReplicaTTL), now); err == nil && n > 0 {
				s.log.Info("marked the agents of stopped replicas disconnected", zap.Int("agents", n))
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("replica heartbeat failed", zap.Error(err))
		}
	}
}

// unregisterReplica removes this replica's registration at a clean stop.
func (s *Server) unregisterReplica() {
	ctx, cancel := context.WithTimeout(context.Background(), replicaTimeout)
	defer cancel()
	if err := s.store.RemoveReplica(ctx, s.replicaID); err != nil {
		s.log.Warn("could not unregister this replica", zap.Error(err))
	}
}
