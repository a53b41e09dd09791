package dashboard

import (
	"fmt"
	"net/http"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/web"
)

// workspaces: GET /workspaces, the caller's workspaces (an admin sees all)
// with their agent's state.
func (d *Dashboard) workspaces(w http.ResponseWriter, r *http.Request) {
	me := d.b.Caller(r)
	owner := me.ID
	if me.IsAdmin() {
		owner = ""
	}
	wss, err := d.cfg.Store.ListWorkspaces(r.Context(), owner)
	if err != nil {
		d.Error(w, r, fmt.Errorf("list workspaces: %w", err))
		return
	}
	body := &web.Workspaces{ShowOwner: me.IsAdmin()}
	names := map[string]string{me.ID: me.Username}
	for _, ws := range wss {
		name, ok := names[ws.OwnerID]
		if !ok {
			u, err := d.cfg.Store.UserByID(r.Context(), ws.OwnerID)
			if err != nil {
				d.Error(w, r, fmt.Errorf("look up workspace owner: %w", err))
				return
			}
			name, names[ws.OwnerID] = u.Username, u.Username
		}
		body.Rows = append(body.Rows, web.WorkspaceRow{ID: ws.ID, Name: ws.Name, Owner: name,
			State: ws.State, Since: ws.StateAt})
	}
	d.Render(w, r, http.StatusOK, "workspaces", &web.Page{Title: "Workspaces", Nav: "workspaces", Body: body})
}

// workspace: GET /workspaces/{workspace}, one workspace and its last
// apply. Another user's workspace is a 404, as in the REST API.
func (d *Dashboard) workspace(w http.ResponseWriter, r *http.Request) {
	ws, err := d.b.Workspace(r)
	var st client.AgentStatus
	if err == nil {
		st, err = d.b.AgentStatus(r.Context(), ws)
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	me := d.b.Caller(r)
	body := &web.Workspace{ID: ws.ID, CanManage: ws.OwnerID == me.ID || me.IsAdmin(),
		TokenExpiresAt: ws.AgentTokenExpiresAt, TokenExpired: !ws.AgentTokenExpiresAt.IsZero() && !d.cfg.Now().Before(ws.AgentTokenExpiresAt),
		Name: ws.Name, Owner: st.OwnerName, State: st.State, Since: st.StateAt,
		Connected: st.Connected, AgentVersion: st.AgentVersion, AgentWarnings: st.Warnings, ChangesPending: st.ChangesPending}
	if st.ConnectedSince != nil {
		body.ConnectedSince = *st.ConnectedSince
	}
	if st.DisconnectedAt != nil {
		body.DisconnectedAt = *st.DisconnectedAt
	}
	body.Required = requirements(st.SecretRequirements, ws.OwnerID == me.ID)
	if ap := st.LastApply; ap != nil {
		body.Applied, body.AppliedAt, body.LeftFiles, body.Warnings = true, ap.At, ap.LeftBehind, ap.Warnings
		body.LiveFiles = ap.LiveFiles
		for _, o := range ap.Outcomes {
			text, bad := outcomeText(o)
			// The path as the owner wrote it, and what it resolved to
			// when that differs (older agents report only the latter).
			file, resolved := o.FilePath, o.Path
			if file == "" || file == resolved {
				file, resolved = o.Path, ""
			}
			body.Outcomes = append(body.Outcomes, web.Outcome{Secret: o.Secret, Outcome: text,
				Env: o.EnvName, File: file, Resolved: resolved, Bad: bad})
		}
	}
	if body.Logs, err = d.cfg.Logs.Dash(r.Context(), ws); err != nil {
		d.Error(w, r, fmt.Errorf("read startup logs: %w", err))
		return
	}
	d.Render(w, r, http.StatusOK, "workspace", &web.Page{Title: "Workspace " + ws.Name, Nav: "workspaces", Body: body})
}

// outcomeText says in words what an apply did with one secret; bad marks
// the outcomes an operator should look at.
func outcomeText(o client.Outcome) (text string, bad bool) {
	switch o.Outcome {
	case proto.OutcomeWritten:
		return "written", false
	case proto.OutcomeUnchanged:
		return "unchanged", false
	case proto.OutcomeEnvOnly:
		return "set in the environment", false
	case proto.OutcomeNotInjected:
		return "not injected: no env or file target", false
	case proto.OutcomeCollision:
		return "lost a collision to " + o.Winner + " (same file)", true
	case proto.OutcomeFailed:
		return "failed: " + o.Error, true
	case proto.OutcomeFileDisabled:
		return "file delivery disabled on this deployment", true
	case proto.OutcomeDisabled:
		return "disabled: paused, not delivered", false
	case proto.OutcomeNotInScope:
		return "not in scope: scoped to other workspaces, treated as deleted here", false
	}
	return o.Outcome, false
}
