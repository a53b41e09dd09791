package controlplane

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/courierhq/courier/controlplane/web"
)

// The dashboard's workspace actions: rotate the agent token (the new token
// is shown on the answer page, once, never through a redirect or a
// cookie) and delete the workspace (after a confirmation page). Who may:
// the owner and admins, as in the REST API (workspacelifecycle.go); anyone
// else is told the workspace does not exist.

// maxDashLifetime bounds the lifetime field.
const maxDashLifetime = 32

// dashRotateAgentToken: POST /workspaces/{workspace}/agent-token, with an
// optional lifetime field.
func (a *api) dashRotateAgentToken(w http.ResponseWriter, r *http.Request) {
	ws, err := a.manageableWorkspace(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		a.dashError(w, r, errorf(http.StatusBadRequest, "the form could not be read"))
		return
	}
	raw := strings.TrimSpace(r.PostForm.Get("lifetime"))
	if len(raw) > maxDashLifetime {
		a.dashError(w, r, errorf(http.StatusBadRequest, "invalid lifetime: nothing was rotated. It is too long to be one; use days (30d) or a duration (12h)"))
		return
	}
	lifetime, err := a.agentTokenLifetime(raw)
	if err != nil {
		a.dashError(w, r, errorf(http.StatusBadRequest, "invalid lifetime: nothing was rotated. %s", lifetimeDetail(err)))
		return
	}
	rot, err := a.rotateToken(r.Context(), caller(r), ws, lifetime)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	owner, err := a.store.UserByID(r.Context(), ws.OwnerID)
	if err != nil {
		a.dashError(w, r, fmt.Errorf("look up workspace owner: %w", err))
		return
	}
	body := &web.WorkspaceToken{ID: ws.ID, Name: ws.Name, Owner: owner.Username, Token: rot.AgentToken}
	if rot.ExpiresAt != nil {
		body.ExpiresAt = *rot.ExpiresAt
	}
	// The token is on this page only: never stored by a cache.
	w.Header().Set("Cache-Control", "no-store")
	a.render(w, r, http.StatusOK, "workspace_token", &web.Page{Title: "New agent token for " + ws.Name, Nav: "workspaces", Body: body})
}

// lifetimeDetail is the validation detail of a refused lifetime.
func lifetimeDetail(err error) string {
	if ae, ok := err.(*apiError); ok && len(ae.body.Validations) > 0 {
		return ae.body.Validations[0].Detail
	}
	return err.Error()
}

// dashConfirmDeleteWorkspace: GET /workspaces/{workspace}/delete.
func (a *api) dashConfirmDeleteWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := a.manageableWorkspace(r)
	var st AgentStatusResponse
	if err == nil {
		st, err = a.agentStatus(r.Context(), ws)
	}
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "workspace_delete", &web.Page{Title: "Delete " + ws.Name, Nav: "workspaces",
		Body: &web.DeleteWorkspace{ID: ws.ID, Name: ws.Name, Owner: st.OwnerName, Connected: st.Connected}})
}

// dashDeleteWorkspace: POST /workspaces/{workspace}/delete.
func (a *api) dashDeleteWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := a.manageableWorkspace(r)
	if err == nil {
		err = a.removeWorkspace(r.Context(), caller(r), ws)
	}
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	a.redirectNotice(w, r, "/workspaces", fmt.Sprintf("Deleted workspace %q; its agent token no longer works.", ws.Name))
}
