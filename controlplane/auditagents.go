package controlplane

import (
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// The agents' part of the audit log: connected, disconnected, refused and
// apply reported. Each changes nothing a person asked for, so each goes
// through the batcher.

// hostOf is the address of a host:port (or the input when it has no
// port).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func agentActor(ws store.Workspace) audit.Actor {
	return audit.Actor{Kind: audit.ActorAgent, ID: ws.ID, Name: ws.Name}
}

// agentSession records an agent session starting or ending.
func (rt *auditRuntime) agentSession(now func() time.Time) func(ev agentapi.SessionEvent) {
	return func(ev agentapi.SessionEvent) {
		rec := audit.Record{Time: now(), Actor: agentActor(ev.Workspace), Source: hostOf(ev.Remote),
			Target: workspaceTarget(ev.Workspace), Outcome: audit.Success, Replica: rt.aud.replica}
		if ev.Up {
			rec.Action = actAgentConnect
			rec.Details = audit.Details(map[string]any{"agent_version": ev.Version})
		} else {
			rec.Action = actAgentDrop
			rec.Details = audit.Details(map[string]any{"duration_seconds": int64(ev.Duration / time.Second)})
		}
		rt.aud.add(rec)
	}
}

// agentApply records an apply report: how many secrets ended in each
// outcome, never paths' contents or values.
func (rt *auditRuntime) agentApply(now func() time.Time) func(store.Workspace, proto.ApplyReport) {
	return func(ws store.Workspace, rep proto.ApplyReport) {
		counts := map[string]any{}
		for _, o := range rep.Outcomes {
			n, _ := counts[o.Outcome].(int)
			counts[o.Outcome] = n + 1
		}
		rec := audit.Record{Time: now(), Action: actAgentApply, Outcome: audit.Success, Replica: rt.aud.replica,
			Actor: agentActor(ws), Target: workspaceTarget(ws),
			Details: audit.Details(map[string]any{"outcomes": counts, "warnings": len(rep.Warnings)})}
		rt.aud.add(rec)
	}
}

// auditAgentRefusals wraps the agents' endpoint: a refused connection
// (no, a bad or a revoked token, a suspended owner, a protocol version
// mismatch) is counted into its source's agent.refused record of the
// current minute (audit.Tally, as session.refused is): an agent retrying
// with a rotated token, or a flood of garbage tokens, costs a map update
// per attempt and a record per address and reason per minute. 503s (too
// many agents connecting at once, or shutting down) are load shedding, not
// access decisions, and are not recorded.
func (a *api) auditAgentRefusals(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &auditWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		if sw.status < 400 || sw.status == http.StatusServiceUnavailable || a.audit == nil || a.audit.off.Load() {
			return
		}
		var details json.RawMessage
		reason := http.StatusText(sw.status)
		switch sw.status {
		case http.StatusUnauthorized:
			reason = "missing, unknown, expired or rotated agent token"
		case proto.StatusVersionMismatch:
			reason = "agent protocol version mismatch"
			details = audit.Details(map[string]any{"agent_protocol": truncate(r.Header.Get(proto.HeaderVersion), 32)})
		}
		var source string
		if ip, _ := a.cfg.LoginThrottle.ClientIP(r); ip.IsValid() {
			source = ip.String()
		}
		a.audit.refusals.Add(audit.TallyKey{Source: source, Action: actAgentRefused, Reason: reason}, a.cfg.stamp(), func() audit.Record {
			rec := a.origin(r, actAgentRefused, requestID(r))
			rec.Actor = audit.Actor{Kind: audit.ActorAgent}
			rec.Target = audit.Target{Kind: targetWorkspace}
			rec.Outcome = audit.Denied
			rec.Details = details
			return rec
		})
	})
}

// sshEvent records a forward opened or an sftp session started inside an
// SSH connection, as the workspace's agent reported it (the control plane
// relays SSH encrypted and cannot see inside). The actor is the agent: the
// user and client in the details are its word, not an authenticated fact.
func (rt *auditRuntime) sshEvent(now func() time.Time) func(store.Workspace, proto.SSHEvent) {
	return func(ws store.Workspace, ev proto.SSHEvent) {
		action := actSSHForward
		if ev.Kind == proto.SSHSFTP {
			action = actSSHSFTP
		}
		details := map[string]any{"kind": ev.Kind, "client": ev.Client, "user": ev.User}
		if ev.Target != "" {
			details["target"] = ev.Target
		}
		if !ev.At.IsZero() {
			details["agent_time"] = ev.At.UTC().Format(time.RFC3339Nano)
		}
		rt.aud.add(audit.Record{Time: now(), Actor: agentActor(ws), Source: hostOf(ev.Client), Action: action,
			Target: workspaceTarget(ws), Outcome: audit.Success, Replica: rt.aud.replica, Details: audit.Details(details)})
	}
}
