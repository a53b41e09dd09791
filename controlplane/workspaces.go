package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
)

// The workspace response types are declared once, in package client.
type (
	// WorkspaceResponse is a workspace as the API lists it.
	WorkspaceResponse = client.Workspace
	// CreatedWorkspaceResponse is the answer to a create: the workspace plus
	// its agent token, which is shown this once and stored only as a hash.
	CreatedWorkspaceResponse = client.CreatedWorkspace
)

type createWorkspaceRequest struct {
	Name     string         `json:"name"`
	Owner    string         `json:"owner"`
	Template store.Template `json:"template"`
	// AllowMissingSecrets creates the workspace even when the owner lacks
	// a secret the template requires.
	AllowMissingSecrets bool `json:"allow_missing_secrets"`
}

// Template bounds: a template is configuration, not a payload.
const (
	maxTemplateEnv     = 256
	maxTemplateScripts = 64
	maxTemplateApps    = 64
)

func (a *api) workspaceResponse(r *http.Request, w store.Workspace, owner *store.User) (WorkspaceResponse, error) {
	if owner == nil {
		u, err := a.store.UserByID(r.Context(), w.OwnerID)
		if err != nil {
			return WorkspaceResponse{}, fmt.Errorf("look up workspace owner: %w", err)
		}
		owner = &u
	}
	reqs, err := a.requirementStatus(r.Context(), w.OwnerID, w.Name, w.Template)
	if err != nil {
		return WorkspaceResponse{}, err
	}
	return WorkspaceResponse{ID: w.ID, Name: w.Name, OwnerID: w.OwnerID, OwnerName: owner.Username,
		State: w.State, StateAt: w.StateAt.UTC(), CreatedAt: w.CreatedAt.UTC(), SecretRequirements: reqs}, nil
}

func validateWorkspace(req createWorkspaceRequest) error {
	var vs []Validation
	if err := inject.ValidateName(req.Name); err != nil {
		vs = append(vs, Validation{Field: "name", Detail: strings.TrimPrefix(err.Error(), "name: ")})
	}
	if req.Owner == "" {
		vs = append(vs, Validation{Field: "owner", Detail: "is required (a user ID or username)"})
	}
	t := req.Template
	if len(t.Env) > maxTemplateEnv {
		vs = append(vs, Validation{Field: "template.env", Detail: fmt.Sprintf("has more than %d entries", maxTemplateEnv)})
	}
	for k, v := range t.Env {
		if !envKeyOK(k) || strings.IndexByte(v, 0) >= 0 {
			vs = append(vs, Validation{Field: "template.env", Detail: fmt.Sprintf("%q is not a valid environment variable", truncate(k, 64))})
		}
	}
	if len(t.Scripts) > maxTemplateScripts || len(t.Apps) > maxTemplateApps {
		vs = append(vs, Validation{Field: "template", Detail: fmt.Sprintf("at most %d scripts and %d apps", maxTemplateScripts, maxTemplateApps)})
	}
	for i, s := range t.Scripts {
		if s.Name == "" || s.Script == "" || s.TimeoutSeconds < 0 {
			vs = append(vs, Validation{Field: fmt.Sprintf("template.scripts[%d]", i), Detail: "needs a name, a script and a timeout_seconds >= 0"})
		}
	}
	for i, ap := range t.Apps {
		if ap.Slug == "" || ap.Command == "" {
			vs = append(vs, Validation{Field: fmt.Sprintf("template.apps[%d]", i), Detail: "needs a slug and a command"})
		}
	}
	vs = append(vs, validateTemplateSecrets(t)...)
	if len(vs) > 0 {
		return &apiError{status: http.StatusBadRequest, body: ErrorResponse{Message: "invalid workspace", Validations: vs}}
	}
	return nil
}

func envKeyOK(k string) bool {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return false
	}
	return true
}

// createWorkspace: POST /api/v2/workspaces (admin) → 201 workspace +
// agent_token.
func (a *api) createWorkspace(w http.ResponseWriter, r *http.Request) {
	if !caller(r).IsAdmin() {
		a.writeError(w, r, errAdminOnly)
		return
	}
	var req createWorkspaceRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := validateWorkspace(req); err != nil {
		a.writeError(w, r, err)
		return
	}
	owner, err := a.userByRef(r, req.Owner)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	tok, hash, err := newToken()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.Template.Env == nil {
		req.Template.Env = map[string]string{}
	}
	if req.Template.Scripts == nil {
		req.Template.Scripts = []proto.Script{}
	}
	if req.Template.Apps == nil {
		req.Template.Apps = []proto.App{}
	}
	ws := store.Workspace{ID: uuid.NewString(), Name: req.Name, OwnerID: owner.ID,
		Template: req.Template, AgentTokenHash: hash, CreatedAt: a.cfg.stamp()}
	if a.cfg.AgentTokenLifetime > 0 {
		ws.AgentTokenExpiresAt = ws.CreatedAt.Add(a.cfg.AgentTokenLifetime)
	}
	if !req.AllowMissingSecrets {
		if err := a.refuseMissingSecrets(r.Context(), owner, ws); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	noteTarget(r.Context(), audit.Target{Kind: targetWorkspace, ID: ws.ID, Name: ws.Name, OwnerID: ws.OwnerID})
	if err := a.store.CreateWorkspace(audit.InTx(r.Context()), ws); err != nil {
		a.writeError(w, r, err)
		return
	}
	resp, _ := a.workspaceResponse(r, ws, &owner)
	writeJSON(w, http.StatusCreated, CreatedWorkspaceResponse{Workspace: resp, AgentToken: tok})
}

// userByRef finds a user by ID or username for an admin request body.
func (a *api) userByRef(r *http.Request, ref string) (store.User, error) {
	var (
		u   store.User
		err error
	)
	if looksLikeUUID(ref) {
		u, err = a.store.UserByID(r.Context(), ref)
	} else {
		u, err = a.store.UserByUsername(r.Context(), ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return u, &apiError{status: http.StatusBadRequest, body: ErrorResponse{
			Message: "owner not found", Validations: []Validation{{Field: "owner", Detail: "no user has this ID or username"}}}}
	}
	return u, err
}

// listWorkspaces: GET /api/v2/workspaces; all for an admin, own otherwise.
func (a *api) listWorkspaces(w http.ResponseWriter, r *http.Request) {
	me := caller(r)
	owner := me.ID
	if me.IsAdmin() {
		owner = ""
	}
	wss, err := a.store.ListWorkspaces(r.Context(), owner)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list workspaces: %w", err))
		return
	}
	owners := map[string]*store.User{me.ID: &me}
	out := make([]WorkspaceResponse, 0, len(wss))
	for _, ws := range wss {
		resp, err := a.workspaceResponse(r, ws, owners[ws.OwnerID])
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		owners[ws.OwnerID] = &store.User{ID: ws.OwnerID, Username: resp.OwnerName}
		out = append(out, resp)
	}
	writeJSON(w, http.StatusOK, out)
}

var errNoWorkspace = errorf(http.StatusNotFound, "workspace not found")

// resolveWorkspace finds {workspace}: an ID, "owner/name", or the name of
// one of the caller's own workspaces. A non-admin who does not own it is
// told it does not exist.
func (a *api) resolveWorkspace(r *http.Request) (store.Workspace, error) {
	me := caller(r)
	ref := r.PathValue("workspace")
	var (
		ws  store.Workspace
		err error
	)
	switch {
	case looksLikeUUID(ref):
		ws, err = a.store.WorkspaceByID(r.Context(), ref)
	case strings.Contains(ref, "/"):
		ownerRef, name, _ := strings.Cut(ref, "/")
		var owner store.User
		if strings.EqualFold(ownerRef, me.Username) || ownerRef == "me" {
			owner = me
		} else {
			owner, err = a.store.UserByUsername(r.Context(), ownerRef)
		}
		if err == nil {
			ws, err = a.store.WorkspaceByName(r.Context(), owner.ID, name)
		}
	default:
		ws, err = a.store.WorkspaceByName(r.Context(), me.ID, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return ws, errNoWorkspace
	}
	if err != nil {
		return ws, fmt.Errorf("look up workspace: %w", err)
	}
	if ws.OwnerID != me.ID && !me.IsAdmin() {
		return store.Workspace{}, errNoWorkspace
	}
	return ws, nil
}

// getWorkspace: GET /api/v2/workspaces/{workspace}.
func (a *api) getWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := a.resolveWorkspace(r)
	if err == nil {
		var resp WorkspaceResponse
		if resp, err = a.workspaceResponse(r, ws, nil); err == nil {
			writeJSON(w, http.StatusOK, resp)
			return
		}
	}
	a.writeError(w, r, err)
}
