package sshd

import (
	"time"

	gliderssh "github.com/gliderlabs/ssh"

	"github.com/courierhq/courier/agent/proto"
)

// Audit events (issue 20): the server tells Config.OnEvent about each
// forward it opened and each sftp session it started, so the agent can
// report them to the control plane, which sees only encrypted bytes.

// seenTargetsKey is the connection context key of the local-forward
// targets already reported on that connection.
type seenTargetsKey struct{}

// seenTargets is the set behind seenTargetsKey; guarded by Server.mu.
type seenTargets map[string]bool

// event reports ev (filled with the connection's client and user) to
// Config.OnEvent, if set.
func (s *Server) event(ctx gliderssh.Context, kind, target string) {
	if s.cfg.OnEvent == nil {
		return
	}
	ev := proto.SSHEvent{At: time.Now().UTC(), Kind: kind, Target: sanitizeTarget(target), User: ctx.User()}
	if a := ctx.RemoteAddr(); a != nil {
		ev.Client = a.String()
	}
	s.cfg.OnEvent(ev)
}

// firstTarget reports whether this is the first local forward to target
// on ctx's connection: a browser through ssh -L opens many connections,
// and one record per forward target is what the audit log wants.
func (s *Server) firstTarget(ctx gliderssh.Context, kind, target string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, _ := ctx.Value(seenTargetsKey{}).(seenTargets)
	if seen == nil {
		seen = seenTargets{}
		ctx.SetValue(seenTargetsKey{}, seen)
	}
	key := kind + " " + target
	if seen[key] {
		return false
	}
	seen[key] = true
	return true
}
