// Package agentapi is the control plane's end of the agent protocol: it
// authenticates agents on the websocket endpoint, runs the server side of a
// yamux session over each connection, serves the protocol's HTTP routes on
// that session, opens SSH streams to connected agents, and tells them when
// their owner's secrets changed (changes.go).
package agentapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

var (
	// ErrAgentNotConnected is returned by Dial when the workspace has no
	// agent session.
	ErrAgentNotConnected = errors.New("the workspace's agent is not connected")
	// ErrClosed is returned by Dial after Close.
	ErrClosed = errors.New("agent server closed")
	// ErrConfig is wrapped by Config.Validate failures.
	ErrConfig = errors.New("invalid agentapi config")
)

// Config configures a Server.
type Config struct {
	// Store holds workspaces, users and secrets. Required.
	Store store.Store
	// Open returns a stored secret's raw value. Required.
	Open func(store.Secret) (string, error)
	// Logger receives connection and report logs. Default nop.
	Logger *zap.Logger
	// FileDeliveryDisabled withholds file targets from agents.
	FileDeliveryDisabled bool
	// OnApply, if set, is called with each apply report (for metrics).
	OnApply func(workspaceID string, rep proto.ApplyReport)
	// KeepaliveInterval and WriteTimeout tune dead-connection detection.
	// Defaults proto.DefaultKeepaliveInterval and proto.DefaultWriteTimeout.
	KeepaliveInterval, WriteTimeout time.Duration
	// LogLines is how many script/app log lines are kept per workspace.
	// Default 1000.
	LogLines int
	// ReplicaID names this control-plane replica in the agents'
	// connection records, so other replicas can relay SSH to it. Default
	// "".
	ReplicaID string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default but Store and Open.
func DefaultConfig() Config {
	return Config{Logger: zap.NewNop(), LogLines: 1000, Now: time.Now,
		KeepaliveInterval: proto.DefaultKeepaliveInterval, WriteTimeout: proto.DefaultWriteTimeout}
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrConfig)
	case c.Open == nil:
		return fmt.Errorf("%w: Open is required", ErrConfig)
	case c.LogLines < 0:
		return fmt.Errorf("%w: LogLines is negative", ErrConfig)
	}
	return nil
}

// Server serves agents. It is an http.Handler for proto.ConnectPath.
//
// Each accepted connection's goroutines are tracked; Close ends every session
// and waits for them, which http.Server.Shutdown cannot do for hijacked
// websocket connections (call Close from RegisterOnShutdown).
type Server struct {
	cfg  Config
	log  *zap.Logger
	base context.Context
	stop context.CancelFunc

	// mu guards the fields that follow.
	mu       sync.Mutex
	sessions map[string]*session // by workspace ID
	closed   bool
	wg       sync.WaitGroup
	state    map[string]*wsState // by workspace ID: recent script and app output
}

// session is one agent connection.
type session struct {
	id     string // unique per connection, recorded in the store
	ws     store.Workspace
	remote string
	// version and at are the agent's release and the connection time, as
	// recorded in the store.
	version string
	at      time.Time
	conn    *websocket.Conn
	mux     *yamux.Session
	// served is the owner's secrets revision last sent on this session
	// (GET secrets), recorded with the session's next apply report.
	served atomic.Int64
}

// New validates cfg and returns a Server. It starts nothing.
func New(cfg Config) (*Server, error) {
	d := DefaultConfig()
	if cfg.Logger == nil {
		cfg.Logger = d.Logger
	}
	if cfg.LogLines == 0 {
		cfg.LogLines = d.LogLines
	}
	if cfg.Now == nil {
		cfg.Now = d.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, stop := context.WithCancel(context.Background())
	return &Server{cfg: cfg, log: cfg.Logger, base: base, stop: stop,
		sessions: map[string]*session{}, state: map[string]*wsState{}}, nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(proto.ErrorResponse{Message: msg})
}

// agentToken returns the token an agent presented, from proto.HeaderToken or
// "Authorization: Bearer".
func agentToken(r *http.Request) string {
	if t := r.Header.Get(proto.HeaderToken); t != "" {
		return t
	}
	if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(a)
	}
	return ""
}

// ServeHTTP authenticates an agent, checks its protocol version, accepts the
// websocket and serves the session until it ends or the Server closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := agentToken(r)
	if token == "" {
		writeError(w, http.StatusUnauthorized, "an agent token is required ("+proto.HeaderToken+" header)")
		return
	}
	sum := sha256.Sum256([]byte(token))
	ws, err := s.cfg.Store.WorkspaceByAgentTokenHash(r.Context(), sum[:])
	if err != nil || subtle.ConstantTimeCompare(ws.AgentTokenHash, sum[:]) != 1 {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("looking up agent token", zap.Error(err))
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeError(w, http.StatusUnauthorized, "the agent token is not valid")
		return
	}
	if v := r.Header.Get(proto.HeaderVersion); v != proto.Version {
		writeError(w, proto.StatusVersionMismatch, fmt.Sprintf(
			"agent protocol version mismatch: the agent speaks %q, this control plane speaks %q", v, proto.Version))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "the control plane is shutting down")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Warn("agent websocket upgrade failed", zap.String("workspace", ws.Name), zap.Error(err))
		return
	}
	conn := websocket.NetConn(s.base, c, websocket.MessageBinary)
	// After NetConn, which turns the read limit off.
	c.SetReadLimit(proto.MaxMessageBytes)
	mux, err := yamux.Server(conn, proto.YamuxConfig(s.cfg.KeepaliveInterval, s.cfg.WriteTimeout))
	if err != nil {
		_ = conn.Close()
		return
	}
	sess := &session{id: uuid.NewString(), ws: ws, remote: r.RemoteAddr, conn: c, mux: mux,
		version: agentVersion(r), at: s.cfg.Now().UTC()}
	s.log.Info("agent connected", zap.String("workspace", ws.Name), zap.String("workspace_id", ws.ID),
		zap.String("remote", r.RemoteAddr), zap.String("agent_version", sess.version))
	s.recordConnected(sess)
	s.register(sess)

	srv := &http.Server{Handler: s.routes(sess), ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: zap.NewStdLog(s.log.Named("agent-http"))}
	_ = srv.Serve(mux) // returns when the session ends
	_ = srv.Close()
	_ = mux.Close()
	_ = conn.Close()
	s.unregister(sess)
	s.recordDisconnected(sess)
	s.log.Info("agent disconnected", zap.String("workspace", ws.Name), zap.String("workspace_id", ws.ID),
		zap.String("remote", sess.remote))
}

// register makes sess the workspace's session, replacing an older one:
// newest wins, so a restarted agent takes over from a connection that has
// not noticed yet that it is dead. The replaced agent is told why
// (proto.CloseReplaced), which makes it back off instead of reconnecting at
// once and replacing this one in turn.
func (s *Server) register(sess *session) {
	s.mu.Lock()
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

// Dial opens an SSH stream to the workspace's agent: a yamux stream whose
// first byte is proto.StreamSSH.
func (s *Server) Dial(ctx context.Context, workspaceID string) (net.Conn, error) {
	s.mu.Lock()
	sess, closed := s.sessions[workspaceID], s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if sess == nil {
		return nil, ErrAgentNotConnected
	}
	type result struct {
		st  *yamux.Stream
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := sess.mux.OpenStream()
		ch <- result{st, err}
	}()
	select {
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.st != nil {
				_ = r.st.Close()
			}
		}()
		return nil, ctx.Err()
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAgentNotConnected, r.err)
		}
		if _, err := r.st.Write([]byte{proto.StreamSSH}); err != nil {
			_ = r.st.Close()
			return nil, err
		}
		return r.st, nil
	}
}

// Connected returns the number of connected agents.
func (s *Server) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every agent session and waits for their goroutines. It is safe
// to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	s.stop()
	for _, sess := range sessions {
		_ = sess.mux.Close()
	}
	s.wg.Wait()
	return nil
}
