package controlplane

import (
	"context"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/rebalance"
)

// rebalanceAgents runs the rebalancer (controlplane/rebalance) until ctx
// ends, unless RebalanceInterval is negative. A replica counts as live
// for it while its heartbeat is at most two heartbeat intervals old (one
// killed moments ago leaves the count sooner than ReplicaTTL), and an
// imbalance must last three heartbeat intervals, longer than a killed
// replica counts, before anyone moves.
func (s *Server) rebalanceAgents(ctx context.Context) {
	if s.cfg.RebalanceInterval < 0 {
		return
	}
	r, err := rebalance.New(rebalance.Config{
		Self:     s.replicaID,
		Interval: s.cfg.RebalanceInterval,
		Settle:   3 * s.cfg.HeartbeatInterval,
		Now:      s.cfg.now,
		Loads: func(ctx context.Context) (map[string]int, error) {
			ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
			defer cancel()
			return s.store.ConnectedAgentsByReplica(ctx, s.cfg.now().UTC().Add(-2*s.cfg.HeartbeatInterval))
		},
		Shed:   s.agents.ShedOne,
		Logger: s.log.Named("rebalance"),
	})
	if err != nil {
		s.log.Error("agent rebalancing is off", zap.Error(err))
		return
	}
	_ = r.Run(ctx)
}
