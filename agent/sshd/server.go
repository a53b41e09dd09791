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
	return nil
}

// Server is an SSH server. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *zap.Logger
	srv *gliderssh.Server

	// sessions counts running session handlers; Close waits for them.
	sessions sync.WaitGroup

	// mu guards closed.
	mu     sync.Mutex
	closed bool
}

// New returns a Server for cfg. It starts no goroutines.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.srv = &gliderssh.Server{
		HostSigners: []gliderssh.Signer{cfg.HostKey},
		Handler:     s.handle,
		Version:     "Courier",
		// No PasswordHandler/PublicKeyHandler: every client is accepted
		// (see the package doc). Only "session" channels; port forwarding
		// stays denied (nil callbacks) and no subsystem (sftp) is offered.
		// The maps are set here because the library fills its defaults in
		// Serve only, not in HandleConn.
		ChannelHandlers:   map[string]gliderssh.ChannelHandler{"session": gliderssh.DefaultSessionHandler},
		RequestHandlers:   map[string]gliderssh.RequestHandler{},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{},
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
