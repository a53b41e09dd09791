package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
	"github.com/courierhq/courier/inject"
	"github.com/courierhq/courier/internal/utf8clip"
)

// Account → Secrets. Every change goes through the Backend, the REST API's
// own paths, so the rules and caps cannot differ; refusals are explained as
// the API explains them.

// usage is the use of every cap by ss, summed by inject.Tally from the
// stored sizes, as the caps count them.
func (d *Dashboard) usage(ss []store.Secret) web.Usage {
	t := inject.Tally(store.Usages(ss))
	l := d.cfg.Limits
	return web.Usage{Secrets: t.Secrets, MaxSecrets: l.MaxSecrets, Bytes: t.StoredBytes, MaxBytes: l.MaxTotalBytes,
		EnvBytes: t.EnvBytes, MaxEnv: l.MaxEnvBytes, MaxSecretBytes: l.MaxSecretBytes, MaxEnvNameBytes: inject.MaxEnvNameBytes}
}

// mySecrets lists the caller's secrets.
func (d *Dashboard) mySecrets(r *http.Request) ([]store.Secret, error) {
	ss, err := d.cfg.Store.ListSecrets(r.Context(), d.b.Caller(r).ID)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return ss, nil
}

// secretRows are ss as the lists show them.
func secretRows(ss []store.Secret) []web.SecretRow {
	rows := make([]web.SecretRow, 0, len(ss))
	for _, s := range ss {
		rows = append(rows, web.SecretRow{Name: s.Name, Description: s.Description,
			EnvName: s.EnvName, FilePath: s.FilePath, Enabled: s.Enabled, Workspaces: s.Workspaces, UpdatedAt: s.UpdatedAt})
	}
	return rows
}

// secrets: GET /account/secrets, the list and the use of every cap.
func (d *Dashboard) secrets(w http.ResponseWriter, r *http.Request) {
	ss, err := d.mySecrets(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	body := &web.Secrets{Usage: d.usage(ss), Rows: secretRows(ss)}
	d.Render(w, r, http.StatusOK, "secrets", &web.Page{Title: "Secrets", Nav: "secrets", Body: body})
}

// secretFormPage renders the create or edit form with the usage, status
// and the refusal (if any) of the last submission.
func (d *Dashboard) secretFormPage(w http.ResponseWriter, r *http.Request, status int, f *web.SecretForm) {
	ss, err := d.mySecrets(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	f.Usage = d.usage(ss)
	title := "New secret"
	if f.Edit {
		title = "Edit " + f.Name
	}
	d.Render(w, r, status, "secret_form", &web.Page{Title: title, Nav: "secrets", Body: f})
}

// refuse renders the form again after err: every field as typed but the
// value, the server's explanation beside each field at fault and its
// summary on top.
func (d *Dashboard) refuse(w http.ResponseWriter, r *http.Request, f *web.SecretForm, err error) {
	p := d.b.Explain(w, r, err)
	f.Message, f.Errors = p.Message, fieldErrors(p)
	d.secretFormPage(w, r, p.Status, f)
}

// newSecret: GET /account/secrets/new. The query may prefill the form
// (name, description, env_name, file_path, workspaces): a workspace page
// links here for a secret its template asks for. Nothing is saved until
// the form is submitted, so the prefill is only a suggestion.
func (d *Dashboard) newSecret(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pre := func(k string) string { return utf8clip.Clip(q.Get(k), maxFieldBytes) }
	d.secretFormPage(w, r, http.StatusOK, &web.SecretForm{Enabled: true, Name: pre("name"), Description: pre("description"),
		EnvName: pre("env_name"), FilePath: pre("file_path"), Workspaces: pre("workspaces")})
}

// createSecret: POST /account/secrets/new.
func (d *Dashboard) createSecret(w http.ResponseWriter, r *http.Request) {
	in, err := d.readSecretForm(w, r)
	f := &web.SecretForm{Name: in.name, Description: in.description, EnvName: in.envName,
		FilePath: in.filePath, Enabled: in.enabled == nil || *in.enabled, Workspaces: in.workspaces}
	if err == nil {
		err = d.b.CreateSecret(r.Context(), d.b.Caller(r).ID, NewSecret{Name: in.name, Value: in.value, Description: in.description,
			EnvName: in.envName, FilePath: in.filePath, Enabled: in.enabled, Workspaces: splitScope(in.workspaces)})
	}
	if err != nil {
		d.refuse(w, r, f, err)
		return
	}
	d.redirectNotice(w, r, "/account/secrets", fmt.Sprintf("Created secret %q. Workspaces get it at their agent's next start or reconnect.", in.name))
}

// ownSecret reads the caller's secret {name}.
func (d *Dashboard) ownSecret(r *http.Request) (store.Secret, error) {
	return d.b.Secret(r.Context(), d.b.Caller(r).ID, r.PathValue("name"))
}

// editSecret: GET /account/secrets/{name}/edit.
func (d *Dashboard) editSecret(w http.ResponseWriter, r *http.Request) {
	s, err := d.ownSecret(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	d.secretFormPage(w, r, http.StatusOK, &web.SecretForm{Edit: true, Name: s.Name,
		Description: s.Description, EnvName: s.EnvName, FilePath: s.FilePath, Enabled: s.Enabled,
		Workspaces: strings.Join(s.Workspaces, ", ")})
}

// updateSecret: POST /account/secrets/{name}/edit. Description and
// targets are set as submitted ("" clears them); an empty value keeps the
// stored one.
func (d *Dashboard) updateSecret(w http.ResponseWriter, r *http.Request) {
	s, err := d.ownSecret(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	in, err := d.readSecretForm(w, r)
	f := &web.SecretForm{Edit: true, Name: s.Name, Description: in.description, EnvName: in.envName,
		FilePath: in.filePath, Enabled: s.Enabled, Workspaces: in.workspaces}
	if in.enabled != nil {
		f.Enabled = *in.enabled
	}
	if err == nil {
		c := SecretChange{Description: &in.description, EnvName: &in.envName, FilePath: &in.filePath, Enabled: in.enabled}
		if in.workspacesGiven {
			scope := splitScope(in.workspaces)
			c.Workspaces = &scope
		}
		if in.valueGiven {
			c.Value = &in.value
		}
		err = d.b.UpdateSecret(r.Context(), d.b.Caller(r).ID, s.Name, c)
	}
	if err != nil {
		d.refuse(w, r, f, err)
		return
	}
	d.redirectNotice(w, r, "/account/secrets", fmt.Sprintf("Saved secret %q. Workspaces get the change at their agent's next start or reconnect.", s.Name))
}

// toggleSecret: POST /account/secrets/{name}/enabled with enabled=true or
// false pauses or resumes a secret from the list, changing nothing else.
func (d *Dashboard) toggleSecret(w http.ResponseWriter, r *http.Request) {
	s, err := d.ownSecret(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	in, err := d.readSecretForm(w, r)
	if err == nil && in.enabled == nil {
		err = refusef(http.StatusBadRequest, "send enabled=true or enabled=false")
	}
	if err == nil {
		err = d.b.UpdateSecret(r.Context(), d.b.Caller(r).ID, s.Name, SecretChange{Enabled: in.enabled})
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	notice := fmt.Sprintf("Paused secret %q: from their agent's next apply on, workspaces no longer get it.", s.Name)
	if *in.enabled {
		notice = fmt.Sprintf("Enabled secret %q: workspaces get it at their agent's next apply.", s.Name)
	}
	d.redirectNotice(w, r, "/account/secrets", notice)
}

// confirmDeleteSecret: GET /account/secrets/{name}/delete asks first.
func (d *Dashboard) confirmDeleteSecret(w http.ResponseWriter, r *http.Request) {
	s, err := d.ownSecret(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	d.Render(w, r, http.StatusOK, "secret_delete", &web.Page{Title: "Delete " + s.Name, Nav: "secrets",
		Body: &web.DeleteSecret{Name: s.Name, EnvName: s.EnvName, FilePath: s.FilePath}})
}

// deleteSecret: POST /account/secrets/{name}/delete.
func (d *Dashboard) deleteSecret(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := d.b.DeleteSecret(r.Context(), d.b.Caller(r).ID, name); err != nil {
		d.Error(w, r, err)
		return
	}
	d.redirectNotice(w, r, "/account/secrets", fmt.Sprintf("Deleted secret %q. Files it wrote stay where they are.", name))
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

// requirements turns a workspace's requirement statuses into the page's
// rows. owner: the viewer owns the workspace and may create the missing
// secrets, so each gets a link to the new-secret form prefilled with its
// env name, path and description.
func requirements(sts []client.SecretRequirementStatus, owner bool) []web.Requirement {
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
