// Package agentapi is the control plane's end of the agent protocol: it
// authenticates agents on the websocket endpoint, runs the server side of a
// yamux session over each connection, serves the protocol's HTTP routes on
// that session, opens SSH streams to connected agents, and tells them when
// their owner's secrets changed (changes.go).
package agentapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/startlogs"
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
	// OnApply, if set, is called with each apply report (for metrics and
	// the audit log) and the workspace's identity as the session holds it
	// (ID, name, owner, token hash), so that it reads nothing from the
	// store: a reconnect storm sends one report per agent.
	OnApply func(ws store.Workspace, rep proto.ApplyReport)
	// OnSession, if set, is called when an agent's session starts and
	// when it ends (for the audit log).
	OnSession func(ev SessionEvent)
	// ClientAddr, if set, gives an agent's address from its upgrade
	// request (the control plane honours --trusted-proxies there); the
	// address its status and SessionEvent show. Default r.RemoteAddr.
	ClientAddr func(r *http.Request) string
	// OnSSHEvent, if set, is called with each SSH event an agent reports
	// (forwards opened, sftp started; strings clipped), for the audit log.
	// Only then is proto.FeatureSSHEvents announced to agents.
	OnSSHEvent func(ws store.Workspace, ev proto.SSHEvent)
	// KeepaliveInterval and WriteTimeout tune dead-connection detection.
	// Defaults proto.DefaultKeepaliveInterval and proto.DefaultWriteTimeout.
	KeepaliveInterval, WriteTimeout time.Duration
	// Logs stores the output and runs of workspaces' scripts and apps
	// (issue 21). Default: startlogs over Store with its defaults.
	Logs *startlogs.Logs
	// ReplicaID names this control-plane replica in the agents'
	// connection records, so other replicas can relay SSH to it. Default
	// "".
	ReplicaID string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxConnecting bounds the agents between their websocket upgrade and
	// their first apply report (or AdmitTimeout): the connect, fetch and
	// apply that a restart makes every agent do at once. An agent over the
	// bound waits in line (MaxWaiting, AdmitWait) or gets 503 with a
	// Retry-After that grows with the crowd (see admission). Default 512;
	// negative means no bound.
	MaxConnecting int
	// AdmitTimeout is how long an admitted agent may take to report its
	// first apply before its place goes to another. Default 15s.
	AdmitTimeout time.Duration
	// MaxWaiting agents over MaxConnecting wait in line, each at most
	// AdmitWait, before they are answered 503. Defaults 16384 and 20s; a
	// negative MaxWaiting means no line. AdmitWait stays well under the
	// agents' handshake timeout (proto.DefaultRequestTimeout, 30s): with
	// the two equal, an agent that waited the whole line gave up just as
	// it would have been let in or answered, and counted a timeout instead
	// of getting a Retry-After.
	MaxWaiting int
	AdmitWait  time.Duration
	// RecheckInterval is how often every connected agent's token is
	// re-checked against the store even without a notification (one
	// ListUsers and one ListWorkspaces): the bound on how long a revoked
	// token stays connected if the notification of its revocation was
	// lost. Default 5m; negative turns it off.
	RecheckInterval time.Duration
}

// DefaultConfig returns a Config with every default but Store and Open.
func DefaultConfig() Config {
	return Config{Logger: zap.NewNop(), Now: time.Now,
		KeepaliveInterval: proto.DefaultKeepaliveInterval, WriteTimeout: proto.DefaultWriteTimeout,
		MaxConnecting: 512, AdmitTimeout: 15 * time.Second, MaxWaiting: 16384, AdmitWait: proto.DefaultRequestTimeout * 2 / 3,
		RecheckInterval: 5 * time.Minute}
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrConfig)
	case c.Open == nil:
		return fmt.Errorf("%w: Open is required", ErrConfig)
	case c.AdmitTimeout < 0 || c.AdmitWait < 0:
		return fmt.Errorf("%w: AdmitTimeout or AdmitWait is negative", ErrConfig)
	}
	return nil
}

// Server serves agents. It is an http.Handler for proto.ConnectPath.
//
// Each accepted connection's goroutines are tracked; Close ends every session
// and waits for them, which http.Server.Shutdown cannot do for hijacked
// websocket connections (call Close from RegisterOnShutdown).
type Server struct {
	cfg     Config
	log     *zap.Logger
	base    context.Context
	stop    context.CancelFunc
	handler http.Handler // routes, shared by every session
	// ycfg is every session's yamux configuration (see yamuxConfig).
	ycfg    *yamux.Config
	admit   *admission
	httpLog *log.Logger // ErrorLog of every session's http.Server
	// streams and streamSrv serve the protocol's routes on every
	// session's streams (see streams.go).
	streams   *streams
	streamSrv *http.Server
	// startOnce starts keepalive and streamSrv with the first session.
	startOnce sync.Once

	// rechecks numbers the RecheckTokens calls begun and remembers whom
	// the last ones named (revoke.go, rechecklog.go).
	rechecks recheckLog

	// mu guards the fields that follow.
	mu       sync.Mutex
	sessions map[string]*session // by workspace ID
	closed   bool
	wg       sync.WaitGroup
}

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

// New validates cfg and returns a Server. It starts nothing.
func New(cfg Config) (*Server, error) {
	d := DefaultConfig()
	if cfg.Logger == nil {
		cfg.Logger = d.Logger
	}
	if cfg.Logs == nil && cfg.Store != nil {
		l, err := startlogs.New(startlogs.Config{Store: cfg.Store})
		if err != nil {
			return nil, err
		}
		cfg.Logs = l
	}
	if cfg.Now == nil {
		cfg.Now = d.Now
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = d.KeepaliveInterval
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = d.WriteTimeout
	}
	if cfg.MaxConnecting == 0 {
		cfg.MaxConnecting = d.MaxConnecting
	}
	if cfg.AdmitTimeout == 0 {
		cfg.AdmitTimeout = d.AdmitTimeout
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = d.MaxWaiting
	}
	if cfg.AdmitWait == 0 {
		cfg.AdmitWait = d.AdmitWait
	}
	if cfg.RecheckInterval == 0 {
		cfg.RecheckInterval = d.RecheckInterval
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, base: base, stop: stop, admit: newAdmission(cfg.MaxConnecting, cfg.MaxWaiting, cfg.AdmitWait, cfg.Now),
		httpLog:  zap.NewStdLog(cfg.Logger.Named("agent-http")),
		sessions: map[string]*session{}}
	s.handler = s.routes()
	s.ycfg = yamuxConfig(cfg.KeepaliveInterval, cfg.WriteTimeout)
	s.streams, s.streamSrv = newStreams(), s.newStreamServer()
	return s, nil
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
	// Waiting in line ends with the request or the Server.
	release, retryAfter := s.admit.acquire(r.Context(), s.base.Done())
	if release == nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeError(w, http.StatusServiceUnavailable, "too many agents are connecting at once; retry later")
		return
	}
	admitted := false
	defer func() {
		if !admitted {
			release()
		}
	}()
	token := agentToken(r)
	if token == "" {
		writeError(w, http.StatusUnauthorized, "an agent token is required ("+proto.HeaderToken+" header)")
		return
	}
	sum := sha256.Sum256([]byte(token))
	// A recheck that starts from here on may have missed this session
	// (it is registered below); see recheckIfMissed.
	rechecks := s.rechecks.last()
	ws, owner, err := s.cfg.Store.WorkspaceByAgentTokenHash(r.Context(), sum[:])
	if err != nil || subtle.ConstantTimeCompare(ws.AgentTokenHash, sum[:]) != 1 {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("looking up agent token", zap.Error(err))
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeError(w, http.StatusUnauthorized, msgTokenInvalid)
		return
	}
	if refused := s.admitToken(ws, owner); refused != nil {
		writeError(w, refused.status, refused.message)
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

	features := proto.FeatureStartupLogs
	if s.cfg.OnSSHEvent != nil {
		features += "," + proto.FeatureSSHEvents
	}
	w.Header().Set(proto.HeaderControlFeatures, features)
	c, err := websocket.Accept(smallBuffers{ResponseWriter: w, read: wsReadBuffer, write: wsWriteBuffer}, r, nil)
	if err != nil {
		s.wg.Done()
		s.log.Warn("agent websocket upgrade failed", zap.String("workspace", ws.Name), zap.Error(err))
		return
	}
	c.SetReadLimit(proto.MaxMessageBytes)
	s.startOnce.Do(func() {
		s.wg.Add(3)
		go s.keepalive()
		go s.sweep()
		go func() {
			defer s.wg.Done()
			_ = s.streamSrv.Serve(s.streams) // until Close
		}()
	})
	// The session keeps the workspace's identity and token, not its
	// template, which the manifest reads from the store on each request:
	// a template's scripts and env would otherwise stay in memory for
	// every connected agent. The rows just read answer the manifest the
	// agent asks for first (see session.first).
	first := newConnectRead(ws, owner)
	ws.Template = store.Template{}
	sess := &session{srv: s, id: uuid.NewString(), ws: keepWorkspace(ws), remote: s.clientAddr(r), conn: c,
		version: agentVersion(r), at: s.cfg.Now().UnixNano(),
		sshPeer:     proto.HasFeature(r.Header.Get(proto.HeaderAgentFeatures), proto.FeatureSSHPeer),
		startupLogs: proto.HasFeature(r.Header.Get(proto.HeaderAgentFeatures), proto.FeatureStartupLogs)}
	// This setup holds a token of each until it is done (see setupDone).
	sess.pending.Store(1)
	sess.endTokens.Store(2)
	conn := newWSConn(c, sess)
	mux, err := yamux.Server(conn, s.ycfg)
	if err != nil {
		s.wg.Done()
		_ = conn.Close()
		return
	}
	sess.mux = mux
	sess.first.Store(first)
	sess.admitRelease = release
	sess.admitTimer.Store(time.AfterFunc(s.cfg.AdmitTimeout, sess.admitted))
	if sess.admitDone.Load() { // the timer fired already: drop it
		sess.admitTimer.Store(nil)
	}
	admitted = true
	s.log.Info("agent connected", zap.String("workspace", ws.Name), zap.String("workspace_id", ws.ID),
		zap.String("remote", sess.remote), zap.String("agent_version", sess.version))
	s.recordConnected(sess)
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(SessionEvent{Workspace: ws, Remote: sess.remote, Version: sess.version, Up: true})
	}
	s.register(sess)
	sess.stopExpiry = s.watchExpiry(sess)
	s.recheckIfMissed(sess, rechecks)
	// The handler returns, so the upgrade request and the deep stack of
	// its goroutine are freed. No goroutine waits for the session: one
	// accepts streams while the agent is opening some (streamOpening), and
	// one forgets the session when its connection closes (connClosed).
	sess.setupDone()
}

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

// Dial opens an SSH stream to the workspace's agent: a yamux stream whose
// first byte is proto.StreamSSHPeer followed by peer, for an agent that
// announced proto.FeatureSSHPeer, else proto.StreamSSH.
func (s *Server) Dial(ctx context.Context, workspaceID string, peer proto.SSHPeer) (net.Conn, error) {
	s.mu.Lock()
	sess, closed := s.sessions[workspaceID], s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if sess == nil || sess.revoked.Load() {
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
		var err error
		if sess.sshPeer {
			var b bytes.Buffer
			b.WriteByte(proto.StreamSSHPeer)
			if err = proto.WriteSSHPeer(&b, peer); err == nil {
				_, err = r.st.Write(b.Bytes())
			}
		} else {
			_, err = r.st.Write([]byte{proto.StreamSSH})
		}
		if err != nil {
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
	_ = s.streams.Close()
	_ = s.streamSrv.Close() // and every stream it serves
	for _, sess := range sessions {
		_ = sess.mux.Close()
	}
	s.wg.Wait()
	return nil
}

// Yamux settings of the server's sessions, beyond proto.YamuxConfig.
const (
	// acceptBacklog bounds the streams an agent has opened that are not
	// yet accepted (yamux resets those over it) and the server's own opens
	// that the agent has not yet acknowledged (those wait). The agent
	// opens a stream per request, a few at a time, and each is accepted
	// within moments (acceptStreams): 16 leaves room for bursts, and the
	// accept queue, allocated per session, is 224 bytes instead of 384 at
	// 32 or 2 KiB at yamux's default of 256.
	acceptBacklog = 16
)

// yamuxConfig returns the configuration every session shares: yamux keeps
// a pointer to it, so one copy serves all, and one logger (yamux's own
// logging is discarded; sessions log their ends with zap) rather than a
// log.Logger that yamux would make per session from LogOutput.
func yamuxConfig(keepalive, writeTimeout time.Duration) *yamux.Config {
	c := proto.YamuxConfig(keepalive, writeTimeout)
	c.AcceptBacklog = acceptBacklog
	// One loop pings every session (see keepalive), not a goroutine each.
	c.EnableKeepAlive = false
	c.LogOutput, c.Logger = nil, discardLogger
	return c
}

var discardLogger = log.New(io.Discard, "", 0)

// clientAddr is r's client address as Config.ClientAddr says.
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.ClientAddr != nil {
		return s.cfg.ClientAddr(r)
	}
	return r.RemoteAddr
}
