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
	// status writes the agents' connects, disconnects and apply reports
	// in batches (see statuswriter.go).
	status *statusWriter
	// streams and streamSrv serve the protocol's routes on every
	// session's streams (see streams.go).
	streams   *streams
	streamSrv *http.Server
	// startOnce starts keepalive and streamSrv with the first session.
	startOnce sync.Once

	// rechecks numbers the RecheckTokens calls begun and remembers whom
	// the last ones named (revoke.go, rechecklog.go).
	rechecks recheckLog
	// dbDown is set while agent requests fail for an unavailable
	// database: the first failure of an episode is logged, and its end.
	dbDown atomic.Bool

	// mu guards the fields that follow.
	mu       sync.Mutex
	sessions map[string]*session // by workspace ID
	closed   bool
	wg       sync.WaitGroup
}

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
	s.status = newStatusWriter(cfg.Store, cfg.Logger)
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
			if s.dbUnavailable(w, err) {
				return
			}
			s.log.Error("looking up agent token", zap.Error(err))
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeError(w, http.StatusUnauthorized, msgTokenInvalid)
		return
	}
	s.dbAvailable()
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

// StatusBacklog reports the agents' status changes (connects,
// disconnects, apply reports) waiting to be written to the store, which
// grows while the database is unavailable, and how many were dropped
// since the start because too many were waiting.
func (s *Server) StatusBacklog() (pending int, dropped uint64) {
	return s.status.backlog()
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
	// Every session has ended and queued its disconnection: write them.
	s.status.close()
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
