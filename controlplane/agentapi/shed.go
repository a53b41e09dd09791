package agentapi

import (
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
)

// shedReason is the close reason of a session asked to reconnect
// elsewhere.
const shedReason = "rebalancing: reconnect (to another replica)"

// shedMinAge spares sessions younger than this: an agent that just
// connected is still fetching and applying.
const shedMinAge = 10 * time.Second

// ShedOne asks one connected agent to reconnect, so that the load balancer
// may send it to a less loaded replica (controlplane/rebalance): its
// session is closed with StatusGoingAway, which the agent treats as a lost
// connection and answers by reconnecting after a short jittered wait (it
// re-applies then, as at every reconnect, R3). The session is the first
// old enough in map order, which Go randomizes per iteration. It reports
// whether there was one.
func (s *Server) ShedOne() bool {
	now := s.cfg.Now()
	s.mu.Lock()
	var pick *session
	for _, sess := range s.sessions {
		if !sess.revoked.Load() && now.Sub(sess.connectedAt()) >= shedMinAge {
			pick = sess
			break
		}
	}
	s.mu.Unlock()
	if pick == nil {
		return false
	}
	s.log.Debug("asking an agent to reconnect elsewhere", zap.String("workspace_id", pick.ws.ID))
	s.goTracked(func() {
		_ = pick.conn.Close(websocket.StatusGoingAway, shedReason)
		_ = pick.mux.Close()
	})
	return true
}
