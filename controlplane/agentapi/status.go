package agentapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// recordTimeout bounds a status write made outside a request (at connect,
// disconnect and replacement), which may run while the server shuts down.
const recordTimeout = 5 * time.Second

// agentVersion returns the release the agent sent, cut to printable ASCII
// of at most proto.MaxAgentVersionBytes: it is shown to operators as is.
func agentVersion(r *http.Request) string {
	v := r.Header.Get(proto.HeaderAgentVersion)
	v = strings.Map(func(c rune) rune {
		if c < 0x21 || c > 0x7e {
			return -1
		}
		return c
	}, v)
	if len(v) > proto.MaxAgentVersionBytes {
		v = v[:proto.MaxAgentVersionBytes]
	}
	return v
}

// recordConnected records sess as its workspace's connected agent before
// the session is registered and serves its first request, as a single
// write did before the writes were batched: an agent that applied is
// never shown as not connected. The store's error is logged, unless it is
// the database's unavailability, which the status writer logs once.
func (s *Server) recordConnected(sess *session) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	err := s.status.wait(ctx, store.AgentEvent{Kind: store.AgentEventConnected, WorkspaceID: sess.ws.ID, Conn: s.connection(sess)})
	if err != nil && store.Unavailable(err) == nil && !errors.Is(err, ErrClosed) {
		s.log.Error("could not record the agent connection", zap.String("workspace_id", sess.ws.ID), zap.Error(err))
	}
}

func (s *Server) connection(sess *session) store.AgentConnection {
	return store.AgentConnection{ID: sess.id, RemoteAddr: sess.remote, AgentVersion: sess.version,
		At: sess.connectedAt(), ReplicaID: s.cfg.ReplicaID}
}

// RecordConnections records every session of this server as connected
// again, as it did at connect. A replica whose registration another
// replica removed (its heartbeat was late, so its agents were marked
// disconnected) calls it once it registered again. The sessions go in
// batches of statusBatch, one store call each: a replica holding 10,000
// agents does in tens of calls what took 10,000 commits, which did not fit
// the heartbeat's time bound. A session that ends meanwhile is recorded
// disconnected afterwards, so none is left "connected" by the race. A
// workspace deleted meanwhile is no error: its session is being closed.
func (s *Server) RecordConnections(ctx context.Context) error {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	var errs []error
	for len(sessions) > 0 {
		chunk := sessions[:min(len(sessions), statusBatch)]
		sessions = sessions[len(chunk):]
		evs := make([]store.AgentEvent, len(chunk))
		for i, sess := range chunk {
			evs[i] = store.AgentEvent{Kind: store.AgentEventConnected, WorkspaceID: sess.ws.ID, Conn: s.connection(sess)}
		}
		if _, err := s.cfg.Store.RecordAgentEvents(ctx, evs); err != nil {
			errs = append(errs, err)
			continue
		}
		var ended []store.AgentEvent
		now := s.cfg.Now().UTC()
		s.mu.Lock()
		for _, sess := range chunk {
			if s.sessions[sess.ws.ID] != sess {
				ended = append(ended, store.AgentEvent{Kind: store.AgentEventDisconnected, WorkspaceID: sess.ws.ID, ConnID: sess.id, At: now})
			}
		}
		s.mu.Unlock()
		if len(ended) > 0 {
			if _, err := s.cfg.Store.RecordAgentEvents(ctx, ended); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// recordDisconnected queues the end of sess's connection; nothing waits
// for it.
func (s *Server) recordDisconnected(sess *session) {
	s.status.add(store.AgentEvent{Kind: store.AgentEventDisconnected, WorkspaceID: sess.ws.ID, ConnID: sess.id,
		At: s.cfg.Now().UTC()})
}

// replaced closes old, which newer has replaced, with proto.CloseReplaced,
// warns the operator naming both peers and records it in the workspace's
// agent status. Two agents running with one workspace's token show up
// here, once per takeover.
func (s *Server) replaced(old, newer *session) {
	now := s.cfg.Now().UTC()
	note := fmt.Sprintf("another agent connected with this workspace's token from %s at %s and replaced the connection from %s (newest wins); "+
		"if this repeats, two agents are running with the same token", newer.remote, now.Format(time.RFC3339), old.remote)
	s.log.Warn("agent connection replaced by a newer one with the same workspace token",
		zap.String("workspace", newer.ws.Name), zap.String("workspace_id", newer.ws.ID),
		zap.String("old_remote", old.remote), zap.String("new_remote", newer.remote))
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	err := s.status.wait(ctx, store.AgentEvent{Kind: store.AgentEventReplaced, WorkspaceID: newer.ws.ID, At: now, Note: note})
	if err != nil && store.Unavailable(err) == nil && !errors.Is(err, ErrClosed) {
		s.log.Error("could not record the agent replacement", zap.String("workspace_id", newer.ws.ID), zap.Error(err))
	}
	// The close handshake waits for the old agent's answer (at most a few
	// seconds); the new connection does not wait for it. ServeHTTP of the
	// new connection holds a wg count, so adding here is safe against Close.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = old.conn.Close(websocket.StatusCode(proto.CloseReplaced), proto.CloseReplacedReason)
		_ = old.mux.Close()
	}()
}

// SessionEvent is an agent session starting (Up) or ending, as
// Config.OnSession hears of it.
type SessionEvent struct {
	// Workspace is the agent's workspace as looked up at connect, without
	// its template; at the end of a session only what the session keeps
	// is set (ID, Name, OwnerID and the agent token's hash and expiry).
	Workspace store.Workspace
	// Remote is the peer's address, Version the agent's release.
	Remote, Version string
	Up              bool
	// Duration is how long an ended session lasted.
	Duration time.Duration
}
