package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/store"
)

// The response types of GET /api/v2/workspaces/{workspace}/agent are
// declared once, in package client, which the CLI and this server share, so
// a field added on one side cannot be forgotten on the other.
type (
	// AgentStatusResponse is what the control plane knows of a workspace's
	// agent: names, paths, env names and outcomes, never a value.
	AgentStatusResponse = client.AgentStatus
	// ApplyResponse is one apply of an agent.
	ApplyResponse = client.Apply
	// OutcomeResponse is what one apply did with one secret.
	OutcomeResponse = client.Outcome
)

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
	rev, err := a.store.SecretsRevision(ctx, ws.OwnerID)
	if err != nil {
		return AgentStatusResponse{}, fmt.Errorf("read the owner's secrets revision: %w", err)
	}
	out := AgentStatusResponse{WorkspaceID: ws.ID, Workspace: ws.Name, OwnerName: owner.Username,
		State: ws.State, StateAt: ws.StateAt.UTC(), Connected: st.Connected,
		ConnectedSince: timePtr(st.ConnectedAt), DisconnectedAt: timePtr(st.DisconnectedAt),
		AgentVersion: st.AgentVersion, RemoteAddr: st.RemoteAddr, ReplacedAt: timePtr(st.ReplacedAt),
		AgentTokenExpiresAt: timePtr(ws.AgentTokenExpiresAt),
		Warnings:            []string{}, SecretsRevision: rev}
	if st.ReplacedNote != "" {
		out.Warnings = append(out.Warnings, st.ReplacedNote)
	}
	if out.SecretRequirements, err = a.requirementStatus(ctx, ws.OwnerID, ws.Name, ws.Template); err != nil {
		return AgentStatusResponse{}, err
	}
	if rep := st.LastApply; rep != nil {
		out.LastApply = applyResponse(*rep)
		out.ChangesPending = rev > rep.SecretsRevision
	}
	return out, nil
}

// applyResponse is the one place where the agent protocol's apply report
// (proto.ApplyReport) becomes the REST API's (client.Apply): a field added
// to one must be added here (TestApplyResponseCarriesEveryField fails until
// it is).
func applyResponse(rep proto.ApplyReport) *ApplyResponse {
	ar := &ApplyResponse{At: rep.At.UTC(), Outcomes: make([]OutcomeResponse, 0, len(rep.Outcomes)),
		Warnings: orEmpty(rep.Warnings), LeftBehind: orEmpty(rep.LeftBehind), SecretsRevision: rep.SecretsRevision,
		LiveFiles: rep.LiveFiles}
	for _, o := range rep.Outcomes {
		ar.Outcomes = append(ar.Outcomes, outcomeResponse(o))
	}
	return ar
}

// outcomeResponse is the one place where the agent protocol's outcome
// (proto.Outcome) becomes the REST API's (client.Outcome): a field added
// to one must be added here (TestOutcomeResponseCarriesEveryField fails
// until it is).
func outcomeResponse(o proto.Outcome) OutcomeResponse {
	return OutcomeResponse{Secret: o.Secret, Outcome: o.Outcome, Path: o.Path, FilePath: o.Target,
		EnvName: o.EnvName, Error: o.Error, Winner: o.Winner, InPlace: o.InPlace}
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
