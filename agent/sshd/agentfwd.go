package sshd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	gliderssh "github.com/gliderlabs/ssh"
	"go.uber.org/zap"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/agent/proto"
)

// agentChannelType is the channel OpenSSH clients open to their agent for
// ssh -A.
const agentChannelType = "auth-agent@openssh.com"

// forwardAgent serves ssh -A for one session: a Unix socket, alone in a new
// directory of mode 0700 (so only the workspace user can reach it), whose
// connections become channels to the client's agent. It returns the
// socket's path, for SSH_AUTH_SOCK, and a stop function that closes the
// socket and removes the directory; the caller calls it when the session
// ends.
func (s *Server) forwardAgent(sess gliderssh.Session, log *zap.Logger) (string, func(), error) {
	conn, ok := sess.Context().Value(gliderssh.ContextKeyConn).(gossh.Conn)
	if !ok {
		return "", nil, fmt.Errorf("agent forwarding: no connection")
	}
	dir, err := os.MkdirTemp("", "courier-ssh-agent-")
	if err != nil {
		return "", nil, fmt.Errorf("agent forwarding: %w", err)
	}
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err == nil {
		if err = os.Chmod(path, 0o600); err != nil {
			_ = ln.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("agent forwarding: %w", err)
	}
	if !s.enter() {
		_ = ln.Close()
		_ = os.RemoveAll(dir)
		return "", nil, ErrServerClosed
	}
	accepted := make(chan struct{})
	go func() {
		defer s.sessions.Done()
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !s.enter() {
				_ = c.Close()
				continue
			}
			go func() {
				defer s.sessions.Done()
				ch, reqs, err := conn.OpenChannel(agentChannelType, nil)
				if err != nil {
					s.metrics.inc(kindAgent, resultFailed)
					log.Debug("ssh client refused an agent connection", zap.Error(err))
					_ = c.Close()
					return
				}
				s.metrics.inc(kindAgent, resultOK)
				log.Debug("ssh forward opened", zap.String("kind", kindAgent))
				s.bridge(sess.Context(), ch, reqs, c)
			}()
		}
	}()
	s.event(sess.Context(), proto.SSHAgentForward, "")
	stop := func() {
		_ = ln.Close()
		<-accepted
		_ = os.RemoveAll(dir)
	}
	return path, stop, nil
}

// agentRequestType is the session request of ssh -A.
const agentRequestType = "auth-agent-req@openssh.com"

// sessionHandler is gliderlabs' session handler with ssh -A's request
// answered here first. gliderlabs answers yes to every such request; with
// forwarding turned off for the workspace, the client is told no, so it
// knows (OpenSSH then says "agent forwarding request failed" rather than
// leaving the user with an SSH_AUTH_SOCK that never comes).
func (s *Server) sessionHandler(srv *gliderssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx gliderssh.Context) {
	if ctx.Value(noMoreSessionsKey{}) != nil {
		// As sshd: the client promised to open no more sessions, so one
		// that arrives anyway is someone else's (a hijacked connection).
		s.log.Warn("ssh session refused: the client sent no-more-sessions@openssh.com before")
		_ = newChan.Reject(gossh.Prohibited, "no more sessions")
		return
	}
	gliderssh.DefaultSessionHandler(srv, conn, agentGate{NewChannel: newChan, s: s, done: ctx.Done()}, ctx)
}

// noMoreSessionsRequest is the global request by which OpenSSH's client
// promises to open no more session channels on the connection.
const noMoreSessionsRequest = "no-more-sessions@openssh.com"

// noMoreSessionsKey marks, in a connection's context, that the client sent
// noMoreSessionsRequest.
type noMoreSessionsKey struct{}

// noMoreSessions records the client's promise; sessionHandler refuses
// every session channel after it. It carries no reply (want_reply is
// false), as sshd's.
func noMoreSessions(ctx gliderssh.Context, _ *gliderssh.Server, _ *gossh.Request) (bool, []byte) {
	ctx.SetValue(noMoreSessionsKey{}, true)
	return true, nil
}

// acceptsEnv reports whether an "env" request's payload names a variable
// AcceptEnv allows (its value is checked when the session starts).
func (s *Server) acceptsEnv(payload []byte) bool {
	var kv struct{ Name, Value string }
	if gossh.Unmarshal(payload, &kv) != nil {
		return false
	}
	return kv.Name != "" && accepted(s.cfg.AcceptEnv, kv.Name)
}

// servesSubsystem reports whether a "subsystem" request's payload names a
// subsystem this server has.
func (s *Server) servesSubsystem(payload []byte) bool {
	var p struct{ Name string }
	if gossh.Unmarshal(payload, &p) != nil {
		return false
	}
	return p.Name == "sftp" && s.cfg.SFTPCommand != nil
}

// agentGate is a session channel whose requests pass through a filter that
// refuses agent forwarding when the policy turns forwarding off.
type agentGate struct {
	gossh.NewChannel
	s    *Server
	done <-chan struct{} // the connection's end
}

// Accept accepts the channel and filters its requests until they end.
func (g agentGate) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := g.NewChannel.Accept()
	if err != nil || !g.s.enter() {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer g.s.sessions.Done()
		defer close(out)
		for r := range reqs {
			if r.Type == "env" && !g.s.acceptsEnv(r.Payload) {
				// sshd answers no to a name AcceptEnv does not allow (the
				// library would say yes and drop it later).
				_ = r.Reply(false, nil)
				continue
			}
			if r.Type == "subsystem" && !g.s.servesSubsystem(r.Payload) {
				// The library would refuse it silently; operators need to
				// know why scp or sftp failed.
				var p struct{ Name string }
				_ = gossh.Unmarshal(r.Payload, &p)
				g.s.log.Warn("ssh subsystem refused: this agent does not serve it",
					zap.String("subsystem", sanitizeName(p.Name)),
					zap.String("hint", "sftp and scp need the agent's SFTP server (courier-agent finds its own executable; see its log at start)"))
				_ = r.Reply(false, nil)
				continue
			}
			if r.Type == agentRequestType && g.s.currentPolicy().DisableForwarding {
				g.s.metrics.inc(kindAgent, resultRefused)
				g.s.log.Debug("ssh forwarding refused: turned off for this workspace", zap.String("kind", kindAgent))
				_ = r.Reply(false, nil)
				continue
			}
			select {
			case out <- r:
			case <-g.done:
				_ = r.Reply(false, nil)
			}
		}
	}()
	return ch, out, nil
}
