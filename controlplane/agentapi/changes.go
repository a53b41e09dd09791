package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/notify"
)

// changeTimeout bounds telling one agent that its secrets changed: opening
// the stream and writing the message.
const changeTimeout = 10 * time.Second

// WatchSecrets tells connected agents when their owner's secrets change,
// reading changes from sub until ctx ends (nil) or sub closes
// (notify.ErrClosed). A Resync batch tells every connected agent the
// current revision; agents ignore a revision they already applied. Before
// that, each batch re-checks the agent tokens of the owners it names
// (RecheckTokens): a notification also follows a workspace delete, a token
// rotation and a user's change or deletion.
func (s *Server) WatchSecrets(ctx context.Context, sub notify.Subscription) error {
	for {
		b, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.RecheckTokens(ctx, b)
		s.SecretsChanged(ctx, b)
	}
}

// SecretsChanged tells each connected agent whose owner is named in b (every
// agent when b.Resync) the owner's current secrets revision, on a new
// proto.StreamSecretsChanged stream. It reads one revision per owner and
// returns once the messages are on their way; each is sent in its own
// goroutine, which Close waits for.
func (s *Server) SecretsChanged(ctx context.Context, b notify.Batch) {
	users := map[string]bool{}
	for _, u := range b.Users {
		users[u] = true
	}
	s.mu.Lock()
	var targets []*session
	for _, sess := range s.sessions {
		if (b.Resync || users[sess.ws.OwnerID]) && !sess.revoked.Load() {
			targets = append(targets, sess)
		}
	}
	s.mu.Unlock()
	revs := map[string]int64{}
	for _, sess := range targets {
		owner := sess.ws.OwnerID
		rev, ok := revs[owner]
		if !ok {
			var err error
			if rev, err = s.cfg.Store.SecretsRevision(ctx, owner); err != nil {
				s.log.Error("could not read a secrets revision; the owner's agents learn of the change at their next connect",
					zap.String("owner_id", owner), zap.Error(err))
				revs[owner] = -1
				continue
			}
			revs[owner] = rev
		}
		if rev < 0 {
			continue
		}
		if !s.goTracked(func() { s.tellChanged(sess, rev) }) {
			return
		}
	}
}

// goTracked runs fn in a goroutine Close waits for, unless the server is
// closed (false).
func (s *Server) goTracked(fn func()) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// tellChanged writes one SecretsChanged message to sess's agent. A failure
// is logged: the agent applies the change at its next connect anyway.
func (s *Server) tellChanged(sess *session, rev int64) {
	msg, _ := json.Marshal(proto.SecretsChanged{Revision: rev})
	err := s.writeStream(sess, append([]byte{proto.StreamSecretsChanged}, msg...))
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("could not tell an agent that its secrets changed; it applies them at its next connect",
				zap.String("workspace", sess.ws.Name), zap.String("workspace_id", sess.ws.ID), zap.Error(err))
		}
		return
	}
	s.log.Debug("told an agent that its secrets changed", zap.String("workspace_id", sess.ws.ID), zap.Int64("revision", rev))
}

// writeStream opens a stream to sess's agent, writes b and closes it, all
// within changeTimeout; shutting down cancels it.
func (s *Server) writeStream(sess *session, b []byte) error {
	ctx, cancel := context.WithTimeout(s.base, changeTimeout)
	defer cancel()
	type result struct {
		st  *yamux.Stream
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := sess.mux.OpenStream()
		ch <- result{st, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.st != nil {
				_ = r.st.Close()
			}
		}()
		return ctx.Err()
	case r = <-ch:
	}
	if r.err != nil {
		return r.err
	}
	defer r.st.Close()
	_ = r.st.SetWriteDeadline(time.Now().Add(changeTimeout))
	_, err := r.st.Write(b)
	return err
}
