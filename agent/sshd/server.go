// Package sshd is the agent's SSH server: it serves the SSH connections the
// control plane tunnels to the agent (and any listener it is given), and
// runs every shell and command through the agent's spawner, so SSH sessions
// get the same secret env as every other workspace process.
//
// Authentication: the server accepts every client without a password or
// key. Connections reach it only through the agent's authenticated control
// plane connection, and the control plane has already authenticated the
// person and checked that they own the workspace; a second check here would
// need keys the agent does not have. Serve on a listener reachable by others
// only if that listener is protected the same way.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	gliderssh "github.com/gliderlabs/ssh"
	"go.uber.org/zap"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/spawn"
)

// Errors returned by this package, wrapped with %w.
var (
	// ErrInvalidConfig is returned by Config.Validate and New.
	ErrInvalidConfig = errors.New("sshd: invalid config")
	// ErrHostKey is returned by LoadOrCreateHostKey.
	ErrHostKey = errors.New("sshd: host key")
	// ErrServerClosed is returned by Serve and HandleConn after Close.
	ErrServerClosed = errors.New("sshd: server closed")
)

// Config configures a Server.
type Config struct {
	// Spawner builds every process of every session. Required.
	Spawner *spawn.Spawner
	// HostKey is the server's host key (see LoadOrCreateHostKey). Required.
	HostKey gossh.Signer
	// Logger records sessions (never env or output). nil means a no-op
	// logger.
	Logger *zap.Logger
	// AcceptEnv lists the client-sent variables a session takes, like
	// OpenSSH's AcceptEnv; a trailing '*' matches a prefix. nil means
	// DefaultAcceptEnv. Accepted variables never override a secret.
	AcceptEnv []string
	// SFTPCommand is the argv of a program that speaks SFTP on its stdin
	// and stdout (see ServeSFTP); every "sftp" subsystem request runs it
	// through the Spawner, so it gets a session's env and starts in the
	// home directory. The agent passes its own executable. nil means no
	// sftp subsystem.
	SFTPCommand []string
	// Policy is the forwarding policy until SetPolicy changes it. The zero
	// value allows forwarding, with remote forwards bound to loopback.
	Policy Policy
	// Metrics counts sessions and forwarded connections. nil means
	// counters registered nowhere.
	Metrics *Metrics
	// OnEvent, if set, is told of each forward opened (ssh -L at its first
	// connection to each target in an SSH connection, ssh -R when its
	// listener is bound, ssh -A when a session asks for it) and each sftp
	// session started, for the audit log (events.go). Refusals are not
	// reported. It is called on the SSH server's goroutines and must not
	// block.
	OnEvent func(proto.SSHEvent)
}

// Policy is what a connection may do besides sessions.
type Policy struct {
	// DisableForwarding refuses local and remote port forwarding,
	// Unix-socket forwarding and agent forwarding, like OpenSSH's
	// DisableForwarding. Sessions and sftp are unaffected.
	DisableForwarding bool
	// GatewayPorts lets a remote forward (ssh -R) bind the address the
	// client names, like OpenSSH's "GatewayPorts clientspecified"; false
	// binds every remote forward to 127.0.0.1.
	GatewayPorts bool
}

// DefaultAcceptEnv is the locale and terminal variables OpenSSH
// distributions accept by default.
var DefaultAcceptEnv = []string{"LANG", "LANGUAGE", "LC_*", "COLORTERM", "TZ"}

// DefaultConfig returns a Config with the optional fields set; Spawner and
// HostKey are left for the caller.
func DefaultConfig() Config {
	return Config{Logger: zap.NewNop(), AcceptEnv: append([]string(nil), DefaultAcceptEnv...)}
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.AcceptEnv == nil {
		c.AcceptEnv = append([]string(nil), DefaultAcceptEnv...)
	}
	if c.Metrics == nil {
		c.Metrics, _ = NewMetrics(nil) // cannot fail without a registerer
	}
	return c
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Spawner == nil {
		return fmt.Errorf("%w: no spawner", ErrInvalidConfig)
	}
	if c.HostKey == nil {
		return fmt.Errorf("%w: no host key", ErrInvalidConfig)
	}
	if c.SFTPCommand != nil && (len(c.SFTPCommand) == 0 || c.SFTPCommand[0] == "") {
		return fmt.Errorf("%w: empty sftp command", ErrInvalidConfig)
	}
	return nil
}

// Server is an SSH server. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *zap.Logger
	srv *gliderssh.Server

	metrics *Metrics

	// sessions counts running session handlers and forwarding goroutines;
	// Close waits for them.
	sessions sync.WaitGroup

	// mu guards the fields that follow.
	mu     sync.Mutex
	closed bool
	policy Policy
}

// New returns a Server for cfg. It starts no goroutines.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, policy: cfg.Policy}
	fwd := newRemoteForwards(s)
	subsystems := map[string]gliderssh.SubsystemHandler{}
	if cfg.SFTPCommand != nil {
		subsystems["sftp"] = s.handleSFTP
	}
	s.srv = &gliderssh.Server{
		HostSigners: []gliderssh.Signer{cfg.HostKey},
		Handler:     s.handle,
		Version:     "Courier",
		// No PasswordHandler/PublicKeyHandler: every client is accepted
		// (see the package doc). Forwarding is ours (forward.go,
		// remote.go), not the library's, for the policy, the loopback
		// rewrite of remote forwards, half-close, logs and counters.
		// The maps are set here because the library fills its defaults in
		// Serve only, not in HandleConn.
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"session":                        s.sessionHandler,
			"direct-tcpip":                   s.handleDirectTCPIP,
			"direct-streamlocal@openssh.com": s.handleDirectStreamlocal,
		},
		RequestHandlers: map[string]gliderssh.RequestHandler{
			"tcpip-forward":                          fwd.handle,
			"cancel-tcpip-forward":                   fwd.handle,
			"streamlocal-forward@openssh.com":        fwd.handle,
			"cancel-streamlocal-forward@openssh.com": fwd.handle,
			noMoreSessionsRequest:                    noMoreSessions,
		},
		SubsystemHandlers: subsystems,
		ConnectionFailedCallback: func(c net.Conn, err error) {
			s.log.Debug("ssh handshake failed", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
		},
	}
	return s, nil
}

// HandleConn serves one SSH connection (the control plane's tunnelled
// stream, its kind byte already read) until the client disconnects, ctx
// ends or the server closes. It closes conn.
func (s *Server) HandleConn(ctx context.Context, conn net.Conn) error {
	if s.isClosed() {
		conn.Close()
		return ErrServerClosed
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	s.srv.HandleConn(conn)
	return nil
}

// Serve accepts connections on ln until Close; it returns ErrServerClosed
// then, or ln's Accept error.
func (s *Server) Serve(ln net.Listener) error {
	if s.isClosed() {
		ln.Close()
		return ErrServerClosed
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, gliderssh.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Close closes every listener and connection, which ends every session's
// processes (SIGTERM to their process groups), and waits for the session
// handlers to return. It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	var err error
	if !already {
		err = s.srv.Close()
		// Close closed every tracked connection; Shutdown now only waits
		// for their goroutines to return.
		_ = s.srv.Shutdown(context.Background())
	}
	s.sessions.Wait()
	return err
}

// SetPolicy sets the forwarding policy for requests from now on (the
// agent calls it at every apply). Forwards already open stay open.
func (s *Server) SetPolicy(p Policy) {
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
}

func (s *Server) currentPolicy() Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}

// enter counts a session handler, unless the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions.Add(1)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
