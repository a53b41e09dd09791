package agentapi

import (
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"
)

// pingWorkers bounds the pings in flight. On a LAN a ping takes a
// millisecond or less; at 100 ms round trips 256 workers still ping 15,000
// agents in about 6 s, within the default 15 s interval.
const pingWorkers = 256

// keepalive pings every session once per KeepaliveInterval and closes a
// session whose agent does not answer within WriteTimeout: what yamux's
// keepalive does, but from one loop and a pool of workers instead of a
// goroutine (and a timer each interval) per connection, which at 15,000
// agents is 15,000 goroutine stacks. It runs until the Server closes.
func (s *Server) keepalive() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.KeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		all := make([]*session, 0, len(s.sessions))
		for _, sess := range s.sessions {
			all = append(all, sess)
		}
		s.mu.Unlock()
		s.pingAll(all)
	}
}

// pingAll pings the sessions through at most pingWorkers goroutines and
// returns when every ping is answered or has failed, or the Server closes.
// The workers live for the round only: between rounds, every few seconds
// of a 15 s interval, the server keeps none of their stacks.
func (s *Server) pingAll(all []*session) {
	work := make(chan *session)
	var wg sync.WaitGroup
	for range min(pingWorkers, len(all)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sess := range work {
				if _, err := sess.mux.Ping(); err != nil && !errors.Is(err, yamux.ErrSessionShutdown) {
					s.log.Info("agent did not answer a keepalive ping; closing its session",
						zap.String("workspace_id", sess.ws.ID), zap.Error(err))
					_ = sess.mux.Close()
				}
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for _, sess := range all {
		select {
		case work <- sess:
		case <-s.base.Done():
			return
		}
	}
}
