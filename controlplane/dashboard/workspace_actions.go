package dashboard

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/web"
)

// The workspace actions: rotate the agent token (the new token is shown on
// the answer page, once, never through a redirect or a cookie) and delete
// the workspace (after a confirmation page). Who may: the owner and
// admins, as in the REST API; anyone else is told the workspace does not
// exist.

// maxLifetimeField bounds the lifetime field.
const maxLifetimeField = 32

// rotateAgentToken: POST /workspaces/{workspace}/agent-token, with an
// optional lifetime field.
func (d *Dashboard) rotateAgentToken(w http.ResponseWriter, r *http.Request) {
	ws, err := d.b.ManageableWorkspace(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		d.Error(w, r, refusef(http.StatusBadRequest, "the form could not be read"))
		return
	}
	raw := strings.TrimSpace(r.PostForm.Get("lifetime"))
	if len(raw) > maxLifetimeField {
		d.Error(w, r, refusef(http.StatusBadRequest, "invalid lifetime: nothing was rotated. It is too long to be one; use days (30d) or a duration (12h)"))
		return
	}
	lifetime, err := d.b.AgentTokenLifetime(raw)
	if err != nil {
		d.Error(w, r, refusef(http.StatusBadRequest, "invalid lifetime: nothing was rotated. %s", err.Error()))
		return
	}
	rot, err := d.b.RotateAgentToken(r.Context(), d.b.Caller(r), ws, lifetime)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	owner, err := d.cfg.Store.UserByID(r.Context(), ws.OwnerID)
	if err != nil {
		d.Error(w, r, fmt.Errorf("look up workspace owner: %w", err))
		return
	}
	body := &web.WorkspaceToken{ID: ws.ID, Name: ws.Name, Owner: owner.Username, Token: rot.AgentToken}
	if rot.ExpiresAt != nil {
		body.ExpiresAt = *rot.ExpiresAt
	}
	// The token is on this page only: never stored by a cache.
	w.Header().Set("Cache-Control", "no-store")
	d.Render(w, r, http.StatusOK, "workspace_token", &web.Page{Title: "New agent token for " + ws.Name, Nav: "workspaces", Body: body})
}

// confirmDeleteWorkspace: GET /workspaces/{workspace}/delete.
func (d *Dashboard) confirmDeleteWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := d.b.ManageableWorkspace(r)
	var st client.AgentStatus
	if err == nil {
		st, err = d.b.AgentStatus(r.Context(), ws)
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	d.Render(w, r, http.StatusOK, "workspace_delete", &web.Page{Title: "Delete " + ws.Name, Nav: "workspaces",
		Body: &web.DeleteWorkspace{ID: ws.ID, Name: ws.Name, Owner: st.OwnerName, Connected: st.Connected}})
}

// deleteWorkspace: POST /workspaces/{workspace}/delete.
func (d *Dashboard) deleteWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := d.b.ManageableWorkspace(r)
	if err == nil {
		err = d.b.RemoveWorkspace(r.Context(), d.b.Caller(r), ws)
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	d.redirectNotice(w, r, "/workspaces", fmt.Sprintf("Deleted workspace %q; its agent token no longer works.", ws.Name))
}
