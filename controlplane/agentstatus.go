package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// AgentStatusResponse is GET /api/v2/workspaces/{workspace}/agent: what the
// control plane knows of the workspace's agent. It holds names, paths,
// env names and outcomes, never a value. Every field is always present;
// times that are not known are null.
type AgentStatusResponse struct {
	WorkspaceID string `json:"workspace_id"`
	Workspace   string `json:"workspace"`
	OwnerName   string `json:"owner_name"`
	// State is the last lifecycle state the agent reported ("" if none),
	// StateAt when.
	State   string    `json:"state"`
	StateAt time.Time `json:"state_at"`
	// Connected is true while an agent connection is up; ConnectedSince
	// is when the last one started, DisconnectedAt when the last one
	// ended.
	Connected      bool       `json:"connected"`
	ConnectedSince *time.Time `json:"connected_since"`
	DisconnectedAt *time.Time `json:"disconnected_at"`
	// AgentVersion is the release the agent reported.
	AgentVersion string `json:"agent_version"`
	// RemoteAddr is the address the last connection came from.
	RemoteAddr string `json:"remote_addr"`
	// ReplacedAt is when a newer connection with the same token last
	// replaced an older one (two agents with one token show up here).
	ReplacedAt *time.Time `json:"replaced_at"`
	// Warnings are about the agent's connection (a replacement); the
	// apply's own warnings are in LastApply.
	Warnings []string `json:"warnings"`
	// LastApply is the agent's last apply report, null before the first.
	LastApply *ApplyResponse `json:"last_apply"`
}

// ApplyResponse is one apply of an agent.
type ApplyResponse struct {
	At       time.Time         `json:"at"`
	Outcomes []OutcomeResponse `json:"outcomes"`
	Warnings []string          `json:"warnings"`
	// LeftBehind are files earlier applies wrote that no secret targets
	// any more; Courier never deletes them (R7), an operator may.
	LeftBehind []string `json:"left_behind"`
}

// OutcomeResponse is what one apply did with one secret: outcome is
// written, unchanged, env, not_injected, lost_collision (Winner names the
// secret whose file was kept), failed (Error says why), file_disabled or
// disabled (the secret is paused).
type OutcomeResponse struct {
	Secret  string `json:"secret"`
	Outcome string `json:"outcome"`
	Path    string `json:"path"`
	EnvName string `json:"env_name"`
	Error   string `json:"error"`
	Winner  string `json:"winner"`
	// InPlace, for written, says why the file was rewritten in place
	// rather than replaced atomically; "" when it was replaced.
	InPlace string `json:"in_place"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// agentStatus is the status of ws's agent, for the REST route and the
// dashboard. The caller has checked that the user may see ws.
func (a *api) agentStatus(ctx context.Context, ws store.Workspace) (AgentStatusResponse, error) {
	st, err := a.store.AgentStatus(ctx, ws.ID)
	if err != nil {
		return AgentStatusResponse{}, fmt.Errorf("load agent status: %w", err)
	}
	owner, err := a.store.UserByID(ctx, ws.OwnerID)
	if err != nil {
		return AgentStatusResponse{}, fmt.Errorf("look up workspace owner: %w", err)
	}
	out := AgentStatusResponse{WorkspaceID: ws.ID, Workspace: ws.Name, OwnerName: owner.Username,
		State: ws.State, StateAt: ws.StateAt.UTC(), Connected: st.Connected,
		ConnectedSince: timePtr(st.ConnectedAt), DisconnectedAt: timePtr(st.DisconnectedAt),
		AgentVersion: st.AgentVersion, RemoteAddr: st.RemoteAddr, ReplacedAt: timePtr(st.ReplacedAt),
		Warnings: []string{}}
	if st.ReplacedNote != "" {
		out.Warnings = append(out.Warnings, st.ReplacedNote)
	}
	if rep := st.LastApply; rep != nil {
		ar := &ApplyResponse{At: rep.At.UTC(), Outcomes: make([]OutcomeResponse, 0, len(rep.Outcomes)),
			Warnings: orEmpty(rep.Warnings), LeftBehind: orEmpty(rep.LeftBehind)}
		for _, o := range rep.Outcomes {
			ar.Outcomes = append(ar.Outcomes, OutcomeResponse{Secret: o.Secret, Outcome: o.Outcome, Path: o.Path,
				EnvName: o.EnvName, Error: o.Error, Winner: o.Winner, InPlace: o.InPlace})
		}
		out.LastApply = ar
	}
	return out, nil
}

// getAgentStatus: GET /api/v2/workspaces/{workspace}/agent → 200 status.
// The same access as the workspace: owner and admins; anyone else 404.
func (a *api) getAgentStatus(w http.ResponseWriter, r *http.Request) {
	ws, err := a.resolveWorkspace(r)
	if err == nil {
		var resp AgentStatusResponse
		if resp, err = a.agentStatus(r.Context(), ws); err == nil {
			writeJSON(w, http.StatusOK, resp)
			return
		}
	}
	a.writeError(w, r, err)
}
