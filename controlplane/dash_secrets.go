package controlplane

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
	"github.com/courierhq/courier/inject"
)

// Account → Secrets. Every change goes through createOne, updateOne and
// DeleteSecret, the REST API's own paths, so the rules and caps cannot
// differ; refusals are explained by explain, as the API explains them.

// dashUsage is the use of every cap by userID's secrets, summed by
// inject.Tally from the stored sizes, as checkLimits counts them.
func (a *api) dashUsage(ss []store.Secret) web.Usage {
	t := inject.Tally(usages(ss))
	l := a.cfg.Limits
	return web.Usage{Secrets: t.Secrets, MaxSecrets: l.MaxSecrets, Bytes: t.StoredBytes, MaxBytes: l.MaxTotalBytes,
		EnvBytes: t.EnvBytes, MaxEnv: l.MaxEnvBytes, MaxSecretBytes: l.MaxSecretBytes, MaxEnvNameBytes: inject.MaxEnvNameBytes}
}

// mySecrets lists the caller's secrets.
func (a *api) mySecrets(r *http.Request) ([]store.Secret, error) {
	ss, err := a.store.ListSecrets(r.Context(), caller(r).ID)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return ss, nil
}

// dashSecrets: GET /account/secrets, the list and the usage of every cap.
func (a *api) dashSecrets(w http.ResponseWriter, r *http.Request) {
	ss, err := a.mySecrets(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	body := &web.Secrets{Usage: a.dashUsage(ss)}
	for _, s := range ss {
		body.Rows = append(body.Rows, web.SecretRow{Name: s.Name, Description: s.Description,
			EnvName: s.EnvName, FilePath: s.FilePath, Enabled: s.Enabled, Workspaces: s.Workspaces, UpdatedAt: s.UpdatedAt})
	}
	a.render(w, r, http.StatusOK, "secrets", &web.Page{Title: "Secrets", Nav: "secrets", Body: body})
}

// secretFormPage renders the create or edit form with the usage, status
// and the refusal (if any) of the last submission.
func (a *api) secretFormPage(w http.ResponseWriter, r *http.Request, status int, f *web.SecretForm) {
	ss, err := a.mySecrets(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	f.Usage = a.dashUsage(ss)
	title := "New secret"
	if f.Edit {
		title = "Edit " + f.Name
	}
	a.render(w, r, status, "secret_form", &web.Page{Title: title, Nav: "secrets", Body: f})
}

// refuse renders the form again after err: every field as typed but the
// value, the server's explanation beside each field at fault and its
// summary on top.
func (a *api) refuse(w http.ResponseWriter, r *http.Request, f *web.SecretForm, err error) {
	ae := a.explain(w, r, err)
	f.Message, f.Errors = ae.body.Message, map[string]string{}
	for _, v := range ae.body.Validations {
		if prev := f.Errors[v.Field]; prev != "" {
			f.Errors[v.Field] = prev + "; " + v.Detail
		} else {
			f.Errors[v.Field] = v.Detail
		}
	}
	a.secretFormPage(w, r, ae.status, f)
}

// dashNewSecret: GET /account/secrets/new. The query may prefill the
// form (name, description, env_name, file_path, workspaces): a workspace
// page links here for a secret its template asks for. Nothing is saved
// until the form is submitted, so the prefill is only a suggestion.
func (a *api) dashNewSecret(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pre := func(k string) string { return truncate(q.Get(k), maxFieldBytes) }
	a.secretFormPage(w, r, http.StatusOK, &web.SecretForm{Enabled: true, Name: pre("name"), Description: pre("description"),
		EnvName: pre("env_name"), FilePath: pre("file_path"), Workspaces: pre("workspaces")})
}

// dashCreateSecret: POST /account/secrets/new.
func (a *api) dashCreateSecret(w http.ResponseWriter, r *http.Request) {
	in, err := a.readSecretForm(w, r)
	f := &web.SecretForm{Name: in.name, Description: in.description, EnvName: in.envName,
		FilePath: in.filePath, Enabled: in.enabled == nil || *in.enabled, Workspaces: in.workspaces}
	if err != nil {
		a.refuse(w, r, f, err)
		return
	}
	req := createSecretRequest{Name: in.name, Value: in.value, Description: in.description,
		EnvName: in.envName, FilePath: in.filePath, Enabled: in.enabled, Workspaces: splitScope(in.workspaces)}
	if _, err := a.createOne(r.Context(), caller(r).ID, req); err != nil {
		a.refuse(w, r, f, err)
		return
	}
	a.redirectNotice(w, r, "/account/secrets", fmt.Sprintf("Created secret %q. Workspaces get it at their agent's next start or reconnect.", in.name))
}

// ownSecret reads the caller's secret {name}; another user's secret, like
// a missing one, is a 404.
func (a *api) ownSecret(r *http.Request) (store.Secret, error) {
	name := r.PathValue("name")
	s, err := a.store.GetSecret(r.Context(), caller(r).ID, name)
	return s, secretNotFound(err, name)
}

// dashEditSecret: GET /account/secrets/{name}/edit.
func (a *api) dashEditSecret(w http.ResponseWriter, r *http.Request) {
	s, err := a.ownSecret(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	a.secretFormPage(w, r, http.StatusOK, &web.SecretForm{Edit: true, Name: s.Name,
		Description: s.Description, EnvName: s.EnvName, FilePath: s.FilePath, Enabled: s.Enabled,
		Workspaces: strings.Join(s.Workspaces, ", ")})
}

// dashUpdateSecret: POST /account/secrets/{name}/edit. Description and
// targets are set as submitted ("" clears them); an empty value keeps the
// stored one.
func (a *api) dashUpdateSecret(w http.ResponseWriter, r *http.Request) {
	s, err := a.ownSecret(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	in, err := a.readSecretForm(w, r)
	f := &web.SecretForm{Edit: true, Name: s.Name, Description: in.description, EnvName: in.envName,
		FilePath: in.filePath, Enabled: s.Enabled, Workspaces: in.workspaces}
	if in.enabled != nil {
		f.Enabled = *in.enabled
	}
	if err != nil {
		a.refuse(w, r, f, err)
		return
	}
	req := updateSecretRequest{Description: &in.description, EnvName: &in.envName, FilePath: &in.filePath,
		Enabled: in.enabled}
	if in.workspacesGiven {
		scope := splitScope(in.workspaces)
		req.Workspaces = &scope
	}
	if in.valueGiven {
		req.Value = &in.value
	}
	if _, err := a.updateOne(r.Context(), caller(r).ID, s.Name, req); err != nil {
		a.refuse(w, r, f, err)
		return
	}
	a.redirectNotice(w, r, "/account/secrets", fmt.Sprintf("Saved secret %q. Workspaces get the change at their agent's next start or reconnect.", s.Name))
}

// dashToggleSecret: POST /account/secrets/{name}/enabled with enabled=true
// or false pauses or resumes a secret from the list, changing nothing else.
func (a *api) dashToggleSecret(w http.ResponseWriter, r *http.Request) {
	s, err := a.ownSecret(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	in, err := a.readSecretForm(w, r)
	if err == nil && in.enabled == nil {
		err = errorf(http.StatusBadRequest, "send enabled=true or enabled=false")
	}
	if err == nil {
		_, err = a.updateOne(r.Context(), caller(r).ID, s.Name, updateSecretRequest{Enabled: in.enabled})
	}
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	notice := fmt.Sprintf("Paused secret %q: from their agent's next apply on, workspaces no longer get it.", s.Name)
	if *in.enabled {
		notice = fmt.Sprintf("Enabled secret %q: workspaces get it at their agent's next apply.", s.Name)
	}
	a.redirectNotice(w, r, "/account/secrets", notice)
}

// dashConfirmDelete: GET /account/secrets/{name}/delete asks first.
func (a *api) dashConfirmDelete(w http.ResponseWriter, r *http.Request) {
	s, err := a.ownSecret(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "secret_delete", &web.Page{Title: "Delete " + s.Name, Nav: "secrets",
		Body: &web.DeleteSecret{Name: s.Name, EnvName: s.EnvName, FilePath: s.FilePath}})
}

// dashDeleteSecret: POST /account/secrets/{name}/delete.
func (a *api) dashDeleteSecret(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := a.store.DeleteSecret(audit.InTx(r.Context()), caller(r).ID, name); err != nil {
		a.dashError(w, r, secretNotFound(err, name))
		return
	}
	a.redirectNotice(w, r, "/account/secrets", fmt.Sprintf("Deleted secret %q. Files it wrote stay where they are.", name))
}

// normalizeNewlines turns the CRLF line breaks browsers send for a
// textarea into LF; an uploaded file is kept byte for byte.
func normalizeNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// splitScope reads the form's workspaces field: names and globs separated
// by commas, spaces around them dropped; empty means all workspaces.
func splitScope(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// dashRequirements turns a workspace's requirement statuses into the
// page's rows. owner: the viewer owns the workspace and may create the
// missing secrets, so each gets a link to the new-secret form prefilled
// with its env name, path and description.
func dashRequirements(sts []client.SecretRequirementStatus, owner bool) []web.Requirement {
	out := make([]web.Requirement, 0, len(sts))
	for _, st := range sts {
		row := web.Requirement{Env: st.Env, File: st.File, Description: st.Description, DocsURL: st.DocsURL,
			Required: st.Required, Status: st.Status}
		if owner && st.Status == client.RequirementMissing {
			q := url.Values{}
			q.Set("name", suggestName(st.SecretRequirement))
			if st.Env != "" {
				q.Set("env_name", st.Env)
			}
			if st.File != "" {
				q.Set("file_path", st.File)
			}
			if st.Description != "" {
				q.Set("description", st.Description)
			}
			row.CreateURL = "/account/secrets/new?" + q.Encode()
		}
		out = append(out, row)
	}
	return out
}

// suggestName proposes a secret name for a requirement: its env name in
// lower case with "-" for "_" ("NPM_TOKEN" → "npm-token"), else the file's
// base name without leading dots.
func suggestName(r client.SecretRequirement) string {
	if r.Env != "" {
		return strings.ReplaceAll(strings.ToLower(r.Env), "_", "-")
	}
	n := strings.TrimLeft(path.Base(r.File), ".")
	if inject.ValidateName(n) != nil {
		return ""
	}
	return n
}
