package controlplane

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
)

// sshReadLimit bounds one websocket message from the SSH client; SSH packets
// are at most 256 KiB.
const sshReadLimit = 1 << 20

// sshWorkspace: GET /api/v2/workspaces/{workspace}/ssh upgrades to a binary
// websocket carrying raw SSH bytes to the workspace's agent. Only the owner
// may connect: a shell reveals every secret of the workspace, so an admin
// gets 403 on someone else's workspace. 404 for an unknown workspace, 503
// when its agent is not connected (or is connected to another replica that
// cannot be reached). When another replica holds the agent, the stream is
// relayed there (see relay.go).
func (a *api) sshWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := a.resolveWorkspace(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	noteTarget(r.Context(), workspaceTarget(ws))
	if ws.OwnerID != caller(r).ID {
		a.writeError(w, r, errorf(http.StatusForbidden,
			"only the workspace's owner may open a shell in it (a shell can read the owner's secrets)"))
		return
	}
	if readOnlyToken(r) {
		a.writeError(w, r, errorf(http.StatusForbidden,
			"this API token has the read scope: it cannot open a shell, which can change anything in the workspace"))
		return
	}
	// Stop when the request ends or the server shuts down: hijacked
	// connections are not drained by http.Server.Shutdown.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.base, cancel)
	defer stop()

	agentConn, err := a.agents.Dial(ctx, ws.ID, a.sshPeer(r))
	if errors.Is(err, errAgentNotConnected) {
		a.writeError(w, r, errorf(http.StatusServiceUnavailable,
			"the agent of workspace %q is not connected; start the workspace and try again", ws.Name))
		return
	}
	if errors.Is(err, errRelay) {
		a.log.Warn("could not relay ssh to the replica holding the agent", zap.String("workspace_id", ws.ID), zap.Error(err))
		a.writeError(w, r, errorf(http.StatusServiceUnavailable,
			"the agent of workspace %q is connected to another control-plane replica that this one could not reach; try again", ws.Name))
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	defer agentConn.Close()

	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the client
	}
	counted := &countingConn{Conn: websocket.NetConn(ctx, c, websocket.MessageBinary)}
	var clientConn net.Conn = counted
	// After NetConn, which turns the read limit off.
	c.SetReadLimit(sshReadLimit)
	defer clientConn.Close()
	defer a.sshOpened(r)(counted)
	// A suspension or deletion ends the session at once (sshrevoke.go).
	defer a.sshLive.track(&sshProxy{userID: caller(r).ID, workspaceID: ws.ID, end: cancel})()
	a.log.Info("ssh session started", zap.String("workspace_id", ws.ID))
	defer a.metrics.sshStarted()()
	pipe(ctx, clientConn, agentConn)
	a.log.Info("ssh session ended", zap.String("workspace_id", ws.ID))
}

// sshPeer names the SSH client and the address its connection reached, as
// the agent's SSH_CLIENT and SSH_CONNECTION show them (sshd's meaning):
// the client is the TCP peer, or behind a trusted proxy the forwarded
// client, whose port is then unknown and given as 0.
func (a *api) sshPeer(r *http.Request) proto.SSHPeer {
	var p proto.SSHPeer
	if ip, direct := a.cfg.LoginThrottle.ClientIP(r); ip.IsValid() {
		port := "0"
		if direct {
			if _, pt, err := net.SplitHostPort(r.RemoteAddr); err == nil {
				port = pt
			}
		}
		p.Client = net.JoinHostPort(ip.String(), port)
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		p.Server = la.String()
	}
	return p
}

// pipe copies both ways until one side ends or ctx does, then closes both.
func pipe(ctx context.Context, x, y net.Conn) {
	var (
		wg   sync.WaitGroup
		once sync.Once
	)
	closeBoth := func() {
		once.Do(func() {
			_ = x.Close()
			_ = y.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(x, y)
		closeBoth()
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(y, x)
		closeBoth()
	}()
	wg.Wait()
}
