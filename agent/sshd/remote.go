package sshd

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	gliderssh "github.com/gliderlabs/ssh"
	"go.uber.org/zap"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/agent/proto"
)

// Global request and channel payloads of remote forwarding (RFC 4254 §7.1
// and OpenSSH PROTOCOL §2.4).
type (
	tcpipForwardRequest struct {
		BindAddr string
		BindPort uint32
	}
	tcpipForwardReply struct {
		BindPort uint32
	}
	forwardedTCPIPData struct {
		DestAddr   string
		DestPort   uint32
		OriginAddr string
		OriginPort uint32
	}
	streamlocalForwardRequest struct {
		SocketPath string
	}
	forwardedStreamlocalData struct {
		SocketPath string
		Reserved   string
	}
)

// remoteForwards serves ssh -R: listeners in the workspace whose
// connections become channels to the client. Each SSH connection's
// listeners close when it ends.
type remoteForwards struct {
	s *Server

	// mu guards byConn: per connection, its listeners keyed by what the
	// client will name in a cancel request (one forward may hold two: see
	// listenLoopback).
	mu     sync.Mutex
	byConn map[*gossh.ServerConn]map[string]io.Closer
}

func newRemoteForwards(s *Server) *remoteForwards {
	return &remoteForwards{s: s, byConn: map[*gossh.ServerConn]map[string]io.Closer{}}
}

// listeners closes several listeners as one.
type listeners []net.Listener

// Close closes them all.
func (ls listeners) Close() error {
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// listenLoopback listens on port (0: any free one) on 127.0.0.1 and, where
// the workspace has IPv6, on ::1 at the same port, as OpenSSH's sshd binds
// a remote forward without GatewayPorts: programs that connect to
// "localhost" may try ::1 first. No IPv6, or ::1's port taken by something
// else, leaves the IPv4 listener alone, as sshd does.
func listenLoopback(port uint32) (listeners, error) {
	v4, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.FormatUint(uint64(port), 10)))
	if err != nil {
		return nil, err
	}
	p := v4.Addr().(*net.TCPAddr).Port
	v6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(p)))
	if err != nil {
		return listeners{v4}, nil
	}
	return listeners{v4, v6}, nil
}

// handle is the gliderlabs request handler for the four remote forwarding
// requests.
func (f *remoteForwards) handle(ctx gliderssh.Context, _ *gliderssh.Server, req *gossh.Request) (bool, []byte) {
	conn, ok := ctx.Value(gliderssh.ContextKeyConn).(*gossh.ServerConn)
	if !ok {
		return false, nil
	}
	switch req.Type {
	case "tcpip-forward":
		var r tcpipForwardRequest
		if err := gossh.Unmarshal(req.Payload, &r); err != nil || r.BindPort > 65535 {
			return false, nil
		}
		return f.listenTCP(ctx, conn, r)
	case "cancel-tcpip-forward":
		var r tcpipForwardRequest
		if err := gossh.Unmarshal(req.Payload, &r); err != nil {
			return false, nil
		}
		return f.cancel(conn, tcpKey(r.BindAddr, r.BindPort)), nil
	case "streamlocal-forward@openssh.com":
		var r streamlocalForwardRequest
		if err := gossh.Unmarshal(req.Payload, &r); err != nil || r.SocketPath == "" {
			return false, nil
		}
		return f.listenUnix(ctx, conn, r.SocketPath), nil
	case "cancel-streamlocal-forward@openssh.com":
		var r streamlocalForwardRequest
		if err := gossh.Unmarshal(req.Payload, &r); err != nil {
			return false, nil
		}
		return f.cancel(conn, "unix "+r.SocketPath), nil
	}
	return false, nil
}

func tcpKey(addr string, port uint32) string {
	return "tcp " + net.JoinHostPort(addr, strconv.FormatUint(uint64(port), 10))
}

// listenTCP binds a remote forward: on loopback (127.0.0.1 and ::1) unless
// the policy allows the client's address (GatewayPorts). The forwarded
// channels name the address the client asked for, which is how OpenSSH
// matches them.
func (f *remoteForwards) listenTCP(ctx gliderssh.Context, conn *gossh.ServerConn, r tcpipForwardRequest) (bool, []byte) {
	p := f.s.currentPolicy()
	host := "127.0.0.1"
	if p.GatewayPorts {
		switch r.BindAddr {
		case "", "*":
			host = ""
		case "localhost":
		default:
			host = r.BindAddr
		}
	}
	bind := net.JoinHostPort(host, strconv.FormatUint(uint64(r.BindPort), 10))
	log := f.s.log.With(zap.String("kind", kindTCPIPForward), zap.String("target", sanitizeTarget(bind)),
		zap.String("remote", ctx.RemoteAddr().String()))
	if p.DisableForwarding {
		f.s.metrics.inc(kindTCPIPForward, resultRefused)
		log.Debug("ssh forwarding refused: turned off for this workspace")
		return false, nil
	}
	var lns listeners
	var err error
	if host == "127.0.0.1" {
		lns, err = listenLoopback(r.BindPort)
	} else {
		var ln net.Listener
		if ln, err = net.Listen("tcp", bind); err == nil {
			lns = listeners{ln}
		}
	}
	if err != nil {
		f.s.metrics.inc(kindTCPIPForward, resultFailed)
		log.Debug("ssh remote forward could not listen", zap.Error(err))
		return false, nil
	}
	port := uint32(lns[0].Addr().(*net.TCPAddr).Port)
	if !f.add(ctx, conn, tcpKey(r.BindAddr, port), lns) {
		return false, nil
	}
	f.s.metrics.inc(kindTCPIPForward, resultOK)
	f.s.event(ctx, proto.SSHForwardRemote, lns[0].Addr().String())
	for _, ln := range lns {
		log.Debug("ssh remote forward listening", zap.Stringer("address", ln.Addr()))
		f.serve(ctx, conn, ln, kindForwardedTCPIP, func(c net.Conn) []byte {
			oh, op := hostPort(c.RemoteAddr())
			opn, _ := strconv.ParseUint(op, 10, 16)
			return gossh.Marshal(&forwardedTCPIPData{DestAddr: r.BindAddr, DestPort: port, OriginAddr: oh, OriginPort: uint32(opn)})
		})
	}
	return true, gossh.Marshal(&tcpipForwardReply{BindPort: port})
}

// listenUnix binds a remote forward on a Unix socket (relative paths are
// under the home directory), readable by the workspace user only. An
// existing file is not replaced (OpenSSH's StreamLocalBindUnlink no).
func (f *remoteForwards) listenUnix(ctx gliderssh.Context, conn *gossh.ServerConn, path string) bool {
	full := f.s.socketPath(path)
	log := f.s.log.With(zap.String("kind", kindStreamlocalForward), zap.String("target", sanitizeTarget(full)),
		zap.String("remote", ctx.RemoteAddr().String()))
	if f.s.currentPolicy().DisableForwarding {
		f.s.metrics.inc(kindStreamlocalForward, resultRefused)
		log.Debug("ssh forwarding refused: turned off for this workspace")
		return false
	}
	ln, err := net.Listen("unix", full)
	if err == nil {
		if err = os.Chmod(full, 0o600); err != nil {
			_ = ln.Close()
		}
	}
	if err != nil {
		f.s.metrics.inc(kindStreamlocalForward, resultFailed)
		log.Debug("ssh remote forward could not listen", zap.Error(err))
		return false
	}
	if !f.add(ctx, conn, "unix "+path, ln) {
		return false
	}
	f.s.metrics.inc(kindStreamlocalForward, resultOK)
	f.s.event(ctx, proto.SSHForwardUnixRemote, full)
	log.Debug("ssh remote forward listening")
	f.serve(ctx, conn, ln, kindForwardedStreamlocal, func(net.Conn) []byte {
		return gossh.Marshal(&forwardedStreamlocalData{SocketPath: path})
	})
	return true
}

// add records ln for conn under key; the first listener of a connection
// arranges for all of them to close when it ends. It closes ln and reports
// false when the key is taken or the server is closing.
func (f *remoteForwards) add(ctx context.Context, conn *gossh.ServerConn, key string, ln io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.byConn[conn]
	if !ok {
		m = map[string]io.Closer{}
		f.byConn[conn] = m
		context.AfterFunc(ctx, func() {
			f.mu.Lock()
			lns := f.byConn[conn]
			delete(f.byConn, conn)
			f.mu.Unlock()
			for _, l := range lns {
				_ = l.Close()
			}
		})
	}
	if _, taken := m[key]; taken || f.s.isClosed() {
		_ = ln.Close()
		return false
	}
	m[key] = ln
	return true
}

// cancel closes the listener conn opened under key.
func (f *remoteForwards) cancel(conn *gossh.ServerConn, key string) bool {
	f.mu.Lock()
	ln, ok := f.byConn[conn][key]
	delete(f.byConn[conn], key)
	f.mu.Unlock()
	if ok {
		_ = ln.Close()
	}
	return ok
}

// serve accepts on ln until it closes, opening a channel of kind for each
// connection.
func (f *remoteForwards) serve(ctx gliderssh.Context, conn *gossh.ServerConn, ln net.Listener, kind string, payload func(net.Conn) []byte) {
	if !f.s.enter() {
		_ = ln.Close()
		return
	}
	channelType := kind
	if kind == kindForwardedStreamlocal {
		channelType = "forwarded-streamlocal@openssh.com"
	}
	go func() {
		defer f.s.sessions.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !f.s.enter() {
				_ = c.Close()
				continue
			}
			go func() {
				defer f.s.sessions.Done()
				log := f.s.log.With(zap.String("kind", kind), zap.String("target", sanitizeTarget(ln.Addr().String())))
				ch, reqs, err := conn.OpenChannel(channelType, payload(c))
				if err != nil {
					f.s.metrics.inc(kind, resultFailed)
					log.Debug("ssh client refused a forwarded connection", zap.Error(err))
					_ = c.Close()
					return
				}
				f.s.metrics.inc(kind, resultOK)
				log.Debug("ssh forward opened")
				f.s.bridge(ctx, ch, reqs, c)
				log.Debug("ssh forward closed")
			}()
		}
	}()
}

// socketPath resolves a Unix socket path a client sent: relative paths are
// under the home directory.
func (s *Server) socketPath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(s.cfg.Spawner.Home(), p)
}
