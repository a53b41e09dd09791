package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/startlogs"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// DBFile is the name of the SQLite database inside Config.DataDir.
const DBFile = "courier.db"

// lockFile is the file in the data directory a server on SQLite locks.
const lockFile = "courier.lock"

// ErrDataDirInUse is returned by New when another server holds the SQLite
// data directory.
var ErrDataDirInUse = errors.New("the data directory is in use by another courier server")

// Server is a running control plane. New opens the store and binds the
// listener but starts no goroutine; Run serves until its context ends; Close
// stops Run (gracefully) and releases everything, and may be called twice.
type Server struct {
	cfg      Config
	log      *zap.Logger
	store    store.Store
	agents   agentServer
	sealer   Sealer
	listener net.Listener
	// unlock releases the SQLite data directory's lock (lockDataDir).
	unlock func()
	// tlsCert is --tls-cert and --tls-key, loaded by New; nil serves HTTP.
	tlsCert *tls.Certificate
	handler http.Handler
	api     *api
	metrics *metrics
	// replicaID names this process among the replicas sharing the
	// database (new at every start).
	replicaID string
	// auditRT runs the audit log's batcher, export and retention.
	auditRT *auditRuntime
	// notifier carries "user X's secrets changed" from the write paths to
	// the agent endpoint (one process: notify.Local; on PostgreSQL across
	// replicas: pgnotify).
	notifier notifier

	base       context.Context // cancelled at shutdown; see api.base
	cancelBase context.CancelFunc

	closing   chan struct{} // closed by Close to stop Run
	closeOnce sync.Once
	closeErr  error

	// mu guards the fields that follow.
	mu      sync.Mutex
	running bool
	done    chan struct{} // closed when Run returns; nil before Run
}

// New validates cfg, loads the encryption key (if any), opens the store
// (PostgreSQL at cfg.PostgresURL, else SQLite in cfg.DataDir), builds the agent endpoint and binds cfg.Listen. A nil
// logger logs nothing.
func New(cfg Config, logger *zap.Logger) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	sealer := plainSealer()
	if cfg.EncryptionKeyFile != "" {
		if sealer, err = loadSealer(cfg.EncryptionKeyFile); err != nil {
			return nil, fmt.Errorf("load encryption key: %w", err)
		}
	}
	var replicaSecret []byte
	if cfg.ReplicaSecretFile != "" {
		if replicaSecret, err = loadReplicaSecret(cfg.ReplicaSecretFile, logger); err != nil {
			return nil, err
		}
	}
	// The certificate and the address are checked before the database is
	// opened or migrated: a typo in either stops the start with its own
	// message, not after "listening", and leaves the data untouched.
	var tlsCert *tls.Certificate
	if cfg.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load the TLS certificate and key (--tls-cert, --tls-key): %w", err)
		}
		tlsCert = &c
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	unlock := func() {}
	if cfg.PostgresURL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		if unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				unlock()
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := OpenStore(ctx, cfg, logger.Named("store"))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	if err := checkKey(ctx, st, sealer, logger); err != nil {
		return nil, err
	}
	nt, err := newNotifier(cfg, logger.Named("notify"))
	if err != nil {
		return nil, fmt.Errorf("change notifier: %w", err)
	}
	defer func() {
		if err != nil {
			_ = nt.Close()
		}
	}()
	s := &Server{cfg: cfg, log: logger, store: st, sealer: sealer, closing: make(chan struct{}), notifier: nt}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	m := newMetrics(lazyGauges{s})
	open := func(sec store.Secret) (string, error) {
		b, err := openStored(sealer, sec)
		return string(b), err
	}
	s.replicaID = uuid.NewString()
	// One startlogs service for the agents' reports and the readers, so a
	// follower on this replica wakes at each write (issue 21).
	logs, err := startlogs.New(startlogs.Config{Store: st})
	if err != nil {
		s.cancelBase()
		return nil, err
	}
	if s.auditRT, err = newAuditRuntime(cfg, st, s.replicaID, logger.Named("audit")); err != nil {
		s.cancelBase()
		return nil, err
	}
	auditApply := s.auditRT.agentApply(cfg.stamp)
	onApply := func(ws store.Workspace, rep proto.ApplyReport) {
		m.observeApply(ws.ID, rep)
		auditApply(ws, rep)
	}
	acfg := agentapi.DefaultConfig()
	acfg.ReplicaID = s.replicaID
	acfg.Store = st
	acfg.Open = open
	acfg.Logger = logger.Named("agentapi")
	acfg.FileDeliveryDisabled = cfg.DisableSecretFilePath
	acfg.OnApply = onApply
	acfg.Logs = logs
	acfg.OnSession = s.auditRT.agentSession(cfg.stamp)
	acfg.OnSSHEvent = s.auditRT.sshEvent(cfg.stamp)
	// An agent's address, in its status and the audit log, is the one
	// --trusted-proxies gives, as for every other client.
	acfg.ClientAddr = func(r *http.Request) string {
		if ip, _ := cfg.LoginThrottle.ClientIP(r); ip.IsValid() {
			return ip.String()
		}
		return r.RemoteAddr
	}
	s.agents, err = newAgentServer(acfg)
	if err != nil {
		s.cancelBase()
		return nil, fmt.Errorf("agent endpoint: %w", err)
	}
	pages, err := web.New()
	if err != nil {
		s.cancelBase()
		_ = s.agents.Close()
		return nil, err
	}
	writes := publishingStore{Store: st, notifier: s.notifier, log: logger}
	dialer := relayDialer{local: s.agents, store: st, self: s.replicaID, secret: replicaSecret,
		ttl: cfg.ReplicaTTL, now: cfg.now, log: logger.Named("relay")}
	a := &api{cfg: cfg, log: logger, store: writes, sealer: sealer, agents: dialer, base: s.base, web: pages, metrics: m,
		logs: logs}
	a.uses = identity.NewUseRecorder(identity.UseRecorderConfig{Store: st, Log: logger.Named("tokens")})
	a.audit = s.auditRT.aud
	if a.starts, err = identity.NewStartLimiter(cfg.SignInStarts); err != nil {
		s.cancelBase()
		_ = s.agents.Close()
		return nil, fmt.Errorf("sign-in start limit: %w", err)
	}
	if a.sso, err = newRP(cfg.OIDC); err != nil {
		s.cancelBase()
		_ = s.agents.Close()
		return nil, err
	}
	if a.accounts, err = identity.NewSSOAccounts(identity.SSOAccountsConfig{Store: writes,
		AllowedEmailDomains: cfg.OIDC.AllowedEmailDomains, AdminGroup: cfg.OIDC.AdminGroup, Log: logger,
		Now: cfg.stamp, OnCreate: a.auditSSOUser}); err != nil {
		s.cancelBase()
		_ = s.agents.Close()
		return nil, err
	}
	if a.dash, err = a.newDashboard(); err != nil {
		s.cancelBase()
		_ = s.agents.Close()
		return nil, err
	}
	s.api, s.metrics = a, m
	mux := http.NewServeMux()
	a.routes(mux)
	mux.Handle("GET "+relayPath, relayHandler{local: s.agents, self: s.replicaID, secret: replicaSecret,
		nonces: &relayNonces{}, now: cfg.now, base: s.base, log: logger.Named("relay")})
	mux.Handle(proto.ConnectPath, a.auditAgentRefusals(s.agents))
	mux.Handle("GET /metrics", m.handler())
	s.handler = m.instrument(logger, pageHeaders(mux))

	s.listener, s.tlsCert, s.unlock = ln, tlsCert, unlock
	return s, nil
}

// Addr is the address the server is bound to (useful with port 0).
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// URL is the server's base URL, http or https by configuration.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + s.listener.Addr().String()
}

// Handler is the server's complete HTTP handler (REST API, agent endpoint,
// health, metrics), for tests that want httptest instead of Run.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves until ctx ends or Close is called, then drains in-flight
// requests for at most Config.ShutdownTimeout and closes every agent session
// and SSH proxy (hijacked connections Shutdown does not track). A clean stop
// returns nil. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.isClosing() {
		s.mu.Unlock()
		return ErrClosed
	}
	s.running = true
	s.done = make(chan struct{})
	s.mu.Unlock()
	defer close(s.done)

	// The audit log's batcher, exporter and retention stop last, after the
	// requests drained, so the last records are flushed.
	s.auditRT.start(s.cfg, s.store, s.log.Named("audit"))
	defer s.auditRT.stop()
	// Register this replica, and reset the agents no live replica holds:
	// a status left "connected" by a killed predecessor would be a lie.
	s.registerReplica(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); s.heartbeat(s.base) }()
	rbDone := make(chan struct{})
	go func() { defer close(rbDone); s.rebalanceAgents(s.base) }()
	expDone := make(chan struct{})
	go func() { defer close(expDone); s.expireSessions(s.base) }()
	defer func() { s.cancelBase(); <-hbDone; <-rbDone; <-expDone; s.unregisterReplica() }()
	if !s.sealer.Encrypted() {
		s.log.Warn("no encryption key configured: secret values are stored unencrypted in the database; " +
			"set --encryption-key-file to seal them at rest")
	}
	s.warnValueFormats(ctx)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return s.base },
	}
	srv.RegisterOnShutdown(func() {
		s.cancelBase()
		_ = s.agents.Close()
	})
	// Agents hear of secret changes while the server runs; the watch ends
	// with the base context, at shutdown.
	sub := s.notifier.Subscribe()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		defer sub.Close()
		if err := s.agents.WatchSecrets(s.base, sub); err != nil {
			s.log.Warn("stopped telling agents of secret changes", zap.Error(err))
		}
	}()
	defer func() { s.cancelBase(); sub.Close(); <-watchDone }()
	// The SSH proxies of a suspended or deleted user, or of a deleted
	// workspace, end on the same notifications (sshrevoke.go).
	sshSub := s.notifier.Subscribe()
	sshDone := make(chan struct{})
	go func() { defer close(sshDone); defer sshSub.Close(); s.api.watchSSH(s.base, sshSub) }()
	defer func() { s.cancelBase(); sshSub.Close(); <-sshDone }()
	if s.notifier.run != nil {
		listenDone := make(chan struct{})
		go func() {
			defer close(listenDone)
			if err := s.notifier.run(s.base); err != nil && !errors.Is(err, notify.ErrClosed) {
				s.log.Error("change notifier stopped", zap.Error(err))
			}
		}()
		defer func() { s.cancelBase(); <-listenDone }()
	}
	// API tokens' last uses are written in batches while the server runs,
	// and once more after the last request has drained.
	usesDone := make(chan struct{})
	go func() {
		defer close(usesDone)
		_ = s.api.uses.Run(s.base)
	}()
	defer func() { _ = s.api.uses.Close(); <-usesDone }()
	serveErr := make(chan error, 1)
	go func() {
		if s.tlsCert != nil {
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.tlsCert}}
			serveErr <- srv.ServeTLS(s.listener, "", "")
		} else {
			serveErr <- srv.Serve(s.listener)
		}
	}()
	s.log.Info("control plane listening", zap.String("addr", s.URL()),
		zap.Bool("encrypted_at_rest", s.sealer.Encrypted()),
		zap.Bool("file_delivery_disabled", s.cfg.DisableSecretFilePath))

	select {
	case err := <-serveErr:
		s.cancelBase()
		_ = s.agents.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	case <-s.closing:
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
	}
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if uerr := s.api.uses.Close(); uerr != nil {
		s.log.Warn("record the last use of API tokens at shutdown", zap.Error(uerr))
	}
	s.log.Info("control plane stopped")
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (s *Server) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Close stops Run if it is running and waits for it, then closes the agent
// sessions, the listener and the store. It is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		if done != nil {
			<-done
		}
		s.cancelBase()
		_ = s.api.uses.Close() // without Run: write what was recorded, before the store closes
		s.auditRT.stop()
		errs := []error{s.notifier.Close(), s.agents.Close(), s.store.Close()}
		s.unlock()
		if err := s.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// pageHeaders gives every response outside the REST API the dashboard's
// security headers (CSP, no framing, no sniffing), so that the mux's own
// answers (a plain 404 or 405 for a mistyped or reopened URL) carry them
// as the dashboard's pages do.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			web.SetHeaders(w.Header())
		}
		h.ServeHTTP(w, r)
	})
}
