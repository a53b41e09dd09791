package controlplane

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// actSessionExpired is the audit action of a login session that reached
// its end of life without a sign-out.
const actSessionExpired = "session.expired"

// expireBatch bounds one sweep's transaction.
const expireBatch = 500

// expireSessions deletes expired login sessions every
// SessionSweepInterval until ctx ends, recording session.expired for each
// in the deleting transaction. Such a session is already refused at its
// expiry (SessionByHash); the sweep is what makes the expiry an event in
// the audit log and keeps the table from growing with every sign-in.
func (s *Server) expireSessions(ctx context.Context) {
	t := time.NewTicker(s.cfg.SessionSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := s.sweepSessions(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("could not delete expired sessions", zap.Error(err))
				}
				break
			}
			if n < expireBatch {
				break
			}
		}
	}
}

// sweepSessions runs one batch of expireSessions.
func (s *Server) sweepSessions(ctx context.Context) (int, error) {
	now := s.cfg.now().UTC()
	return s.store.ExpireSessions(ctx, now, expireBatch, func(sess store.Session) audit.Record {
		return audit.Record{
			Time:    now,
			Actor:   audit.Actor{Kind: audit.ActorSystem},
			Action:  actSessionExpired,
			Target:  audit.Target{Kind: targetUser, ID: sess.UserID, OwnerID: sess.UserID},
			Outcome: audit.Success,
			Details: audit.Details(map[string]any{"signed_in_at": sess.CreatedAt.UTC(), "expired_at": sess.ExpiresAt.UTC()}),
			Replica: s.replicaID,
		}
	})
}
