package agentapi

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

// One agent connection: what a session keeps, and its lifecycle from
// ServeHTTP's setup to endSession (its accepting goroutine, its place in
// the admission line, its registration as its workspace's session).

// session is one agent connection.
type session struct {
	id     string // unique per connection, recorded in the store
	ws     sessionWorkspace
	remote string
	// version and at are the agent's release and the connection time, as
	// recorded in the store.
	version string
	// sshPeer: the agent understands proto.StreamSSHPeer.
	sshPeer bool
	// startupLogs: the agent masks its output (proto.FeatureStartupLogs),
	// so its output may be stored.
	startupLogs bool
	at          int64 // Unix nanoseconds, UTC: see connectedAt
	conn        *websocket.Conn
	mux         *yamux.Session
	// served is the owner's secrets revision last sent on this session
	// (GET secrets), recorded with the session's next apply report.
	served atomic.Int64
	// revoked is set once the session's token is found no longer valid
	// (revoke.go): its requests are refused and no SSH stream is opened
	// while it closes.
	revoked atomic.Bool
	// admitRelease gives the session's place among the connecting back
	// (see Config.MaxConnecting); admitted calls it once (admitDone), at
	// the first apply report, at AdmitTimeout (admitTimer) or at the end.
	admitRelease func()
	admitTimer   atomic.Pointer[time.Timer]
	admitDone    atomic.Bool
	// first holds the workspace (with its template) and its owner as the
	// connect read them, for the manifest the agent asks for first, which
	// takes it (manifest): a connect and its manifest then read each row
	// once, not twice. It is dropped once the session is admitted, so an
	// idle session does not keep the template.
	first atomic.Pointer[connectRead]
	// stopExpiry stops the token's expiry timer (watchExpiry).
	stopExpiry func() bool
	srv        *Server
	// pending counts the streams the agent has opened that are not yet
	// accepted; endTokens the two events (setup done, connection closed)
	// after which endSession runs. See streamOpening and connClosed.
	pending, endTokens atomic.Int32
}

// connectedAt is when the session connected. It is kept as an int64, not
// a time.Time, so that a session (one per connected agent) fits the 256-byte
// allocation size.
func (sess *session) connectedAt() time.Time { return time.Unix(0, sess.at).UTC() }

// connectRead is what the manifest needs of what a connect read (see
// session.first): the workspace, and its owner's name and ID only (not
// the rest of the user's row, such as its password hash).
type connectRead struct {
	ws    store.Workspace
	owner store.User
}

// newConnectRead keeps ws and owner's identity.
func newConnectRead(ws store.Workspace, owner store.User) *connectRead {
	return &connectRead{ws: ws, owner: store.User{ID: owner.ID, Username: owner.Username}}
}

// sessionWorkspace is what a session keeps of its workspace: who it is and
// what its token is. The template (the manifest reads it from the store,
// but for the first one: see session.first) and the lifecycle state are
// left out, so the session fits a
// smaller allocation.
type sessionWorkspace struct {
	ID, Name, OwnerID   string
	AgentTokenHash      []byte
	AgentTokenExpiresAt time.Time
}

func keepWorkspace(ws store.Workspace) sessionWorkspace {
	return sessionWorkspace{ID: ws.ID, Name: ws.Name, OwnerID: ws.OwnerID, AgentTokenHash: ws.AgentTokenHash,
		AgentTokenExpiresAt: ws.AgentTokenExpiresAt}
}

// workspace returns the kept fields as a store.Workspace (for the hooks).
func (w sessionWorkspace) workspace() store.Workspace {
	return store.Workspace{ID: w.ID, Name: w.Name, OwnerID: w.OwnerID, AgentTokenHash: w.AgentTokenHash,
		AgentTokenExpiresAt: w.AgentTokenExpiresAt}
}

type sessionKey struct{}

// sessionOf returns the session a protocol request came on.
func sessionOf(r *http.Request) *session { return r.Context().Value(sessionKey{}).(*session) }

// admitted gives the session's place among the connecting back, once; it
// may be called any number of times, from any goroutine. The timer and the
// release are dropped with it, so an idle session keeps neither.
func (sess *session) admitted() {
	if !sess.admitDone.CompareAndSwap(false, true) {
		return
	}
	if t := sess.admitTimer.Swap(nil); t != nil {
		t.Stop()
	}
	sess.first.Store(nil)
	sess.admitRelease()
}

// streamOpening is called (from yamux's receive loop, through wsConn) for
// each stream the agent opens, before yamux queues it for accepting. It
// starts acceptStreams unless one is running: a goroutine runs while
// pending is above zero.
func (sess *session) streamOpening() {
	if sess.pending.Add(1) == 1 {
		sess.srv.goAccept(sess)
	}
}

// connClosed is called once, when the session's connection closes (yamux
// closes it as the session ends, whatever ended it).
func (sess *session) connClosed() {
	if sess.endTokens.Add(-1) == 0 {
		go sess.srv.endSession(sess)
	}
}

// setupDone hands the session over once ServeHTTP has set it up: streams
// the agent opened meanwhile get their accepting goroutine, and a
// connection that closed meanwhile ends the session.
func (sess *session) setupDone() {
	if sess.pending.Add(-1) > 0 {
		sess.srv.goAccept(sess)
	}
	if sess.endTokens.Add(-1) == 0 {
		go sess.srv.endSession(sess)
	}
}

// goAccept starts acceptStreams. The session's wg count, held until
// endSession, which runs after yamux's receive loop (the only caller of
// streamOpening) has returned, makes the Add safe against Close.
func (s *Server) goAccept(sess *session) {
	s.wg.Add(1)
	go s.acceptStreams(sess)
}

// acceptStreams hands the streams the agent opens to the stream server
// until none is on its way, or the session or the Server ends.
func (s *Server) acceptStreams(sess *session) {
	defer s.wg.Done()
	for {
		st, err := sess.mux.AcceptStream()
		if err != nil {
			return // the session ended; endSession forgets it
		}
		if !s.streams.offer(st, sess) {
			_ = st.Close()
			_ = sess.mux.Close() // the Server closed
			return
		}
		if sess.pending.Add(-1) == 0 {
			return
		}
	}
}

// endSession forgets sess once its connection has closed.
func (s *Server) endSession(sess *session) {
	defer s.wg.Done()
	defer sess.admitted()
	defer sess.stopExpiry()
	// Returns once yamux's loops have ended (at once if another call
	// closed the session already and they have).
	_ = sess.mux.Close()
	s.unregister(sess)
	s.recordDisconnected(sess)
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(SessionEvent{Workspace: sess.ws.workspace(), Remote: sess.remote, Version: sess.version,
			Duration: s.cfg.Now().UTC().Sub(sess.connectedAt())})
	}
	s.log.Info("agent disconnected", zap.String("workspace", sess.ws.Name), zap.String("workspace_id", sess.ws.ID),
		zap.String("remote", sess.remote))
}

// register makes sess the workspace's session, replacing an older one:
// newest wins, so a restarted agent takes over from a connection that has
// not noticed yet that it is dead. The replaced agent is told why
// (proto.CloseReplaced), which makes it back off instead of reconnecting at
// once and replacing this one in turn.
//
// A Server that closed after ServeHTTP checked is not left with a session
// it did not see: sess is closed instead.
func (s *Server) register(sess *session) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = sess.mux.Close()
		return
	}
	old := s.sessions[sess.ws.ID]
	s.sessions[sess.ws.ID] = sess
	s.mu.Unlock()
	if old != nil {
		s.replaced(old, sess)
	}
}

func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.ws.ID] == sess {
		delete(s.sessions, sess.ws.ID)
	}
	s.mu.Unlock()
}
