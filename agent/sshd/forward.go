package sshd

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"go.uber.org/zap"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/agent/proto"
)

// dialTimeout bounds the dial of a local forward (ssh -L) to its target.
const dialTimeout = 30 * time.Second

// msgForwardingOff is what a client is told when the template turned
// forwarding off.
const msgForwardingOff = "forwarding is turned off for this workspace"

// directTCPIPData is the extra data of a "direct-tcpip" channel (RFC 4254
// §7.2).
type directTCPIPData struct {
	DestAddr   string
	DestPort   uint32
	OriginAddr string
	OriginPort uint32
}

// directStreamlocalData is the extra data of a
// "direct-streamlocal@openssh.com" channel (OpenSSH PROTOCOL §2.4).
type directStreamlocalData struct {
	SocketPath string
	Reserved0  string
	Reserved1  uint32
}

// handleDirectTCPIP serves ssh -L: a connection from the workspace to the
// host and port the client names.
func (s *Server) handleDirectTCPIP(_ *gliderssh.Server, _ *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
	var d directTCPIPData
	if err := gossh.Unmarshal(nc.ExtraData(), &d); err != nil || d.DestPort > 65535 {
		_ = nc.Reject(gossh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	target := net.JoinHostPort(d.DestAddr, strconv.FormatUint(uint64(d.DestPort), 10))
	s.openDirect(ctx, nc, kindDirectTCPIP, "tcp", target, proto.SSHForwardLocal)
}

// handleDirectStreamlocal serves ssh -L to a Unix socket in the workspace.
func (s *Server) handleDirectStreamlocal(_ *gliderssh.Server, _ *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
	var d directStreamlocalData
	if err := gossh.Unmarshal(nc.ExtraData(), &d); err != nil || d.SocketPath == "" {
		_ = nc.Reject(gossh.ConnectionFailed, "malformed direct-streamlocal request")
		return
	}
	s.openDirect(ctx, nc, kindDirectStreamlocal, "unix", s.socketPath(d.SocketPath), proto.SSHForwardUnixLocal)
}

// openDirect dials target and bridges it with the channel until either
// side ends or the connection does. event is the proto.SSHEvent kind
// reported at the first connection to target.
func (s *Server) openDirect(ctx gliderssh.Context, nc gossh.NewChannel, kind, network, target, event string) {
	log := s.log.With(zap.String("kind", kind), zap.String("target", sanitizeTarget(target)),
		zap.String("remote", ctx.RemoteAddr().String()))
	if s.currentPolicy().DisableForwarding {
		s.metrics.inc(kind, resultRefused)
		log.Debug("ssh forwarding refused: turned off for this workspace")
		_ = nc.Reject(gossh.Prohibited, msgForwardingOff)
		return
	}
	if !s.enter() {
		_ = nc.Reject(gossh.ConnectionFailed, "server closing")
		return
	}
	defer s.sessions.Done()
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	var d net.Dialer
	conn, err := d.DialContext(dctx, network, target)
	cancel()
	if err != nil {
		s.metrics.inc(kind, resultFailed)
		log.Debug("ssh forward could not connect", zap.Error(err))
		_ = nc.Reject(gossh.ConnectionFailed, "connect to "+sanitizeTarget(target)+" failed")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = conn.Close()
		return
	}
	s.metrics.inc(kind, resultOK)
	log.Debug("ssh forward opened")
	if s.firstTarget(ctx, event, target) {
		s.event(ctx, event, target)
	}
	s.bridge(ctx, ch, reqs, conn)
	log.Debug("ssh forward closed")
}

// bridge copies between an SSH channel and a connection until both
// directions are done, the connection fails or ctx ends; then it closes
// both. EOF on one side becomes a half-close on the other, as OpenSSH does,
// so protocols that shut down writing first keep working. The caller holds
// an s.enter.
func (s *Server) bridge(ctx context.Context, ch gossh.Channel, reqs <-chan *gossh.Request, conn net.Conn) {
	closeBoth := func() { _ = ch.Close(); _ = conn.Close() }
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	done := make(chan struct{})
	go func() {
		// Channel requests on a forwarded channel mean nothing; the loop
		// ends when the channel closes.
		gossh.DiscardRequests(reqs)
	}()
	go func() {
		defer close(done)
		if _, err := io.Copy(conn, ch); err != nil {
			closeBoth()
			return
		}
		closeWrite(conn)
	}()
	if _, err := io.Copy(ch, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		closeBoth()
	} else {
		_ = ch.CloseWrite()
	}
	<-done
	closeBoth()
}

// closeWrite half-closes conn when it can, else closes it.
func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = conn.Close()
}

// sanitizeTarget bounds a client-chosen address or socket path before it
// is logged or sent back.
func sanitizeTarget(s string) string {
	if len(s) > 256 {
		s = s[:256]
	}
	return strings.ToValidUTF8(s, "?")
}
