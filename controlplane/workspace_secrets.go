package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
)

// This file is the REST side of a template's secret requirements: their
// validation, the refusal of a workspace whose owner lacks a required one,
// and their status in workspace responses. The rules (what meets a
// requirement, what a valid one is) are inject's, shared with the agent.

// requirements converts a template's requirements to inject's model.
func requirements(t store.Template) []inject.Requirement {
	out := make([]inject.Requirement, len(t.Secrets))
	for i, s := range t.Secrets {
		out[i] = inject.Requirement{Env: s.Env, File: s.File, Description: s.Description, DocsURL: s.DocsURL, Required: s.Required}
	}
	return out
}

// validateTemplateSecrets checks the template's secrets and
// on_missing_secrets.
func validateTemplateSecrets(t store.Template) []Validation {
	var vs []Validation
	for _, e := range inject.ValidateRequirements(requirements(t)) {
		vs = append(vs, Validation{Field: "template." + e.Field, Detail: e.Message})
	}
	switch t.OnMissingSecrets {
	case "", proto.OnMissingWait, proto.OnMissingStart:
	default:
		vs = append(vs, Validation{Field: "template.on_missing_secrets",
			Detail: fmt.Sprintf("is %q; use %q (the default) or %q", truncate(t.OnMissingSecrets, 32), proto.OnMissingWait, proto.OnMissingStart)})
	}
	return vs
}

// requirementStatus returns the status of each secret the template asks
// for, against the owner's secrets in scope for the workspace called name;
// nil when it asks for none.
func (a *api) requirementStatus(ctx context.Context, ownerID, name string, t store.Template) ([]client.SecretRequirementStatus, error) {
	if len(t.Secrets) == 0 {
		return nil, nil
	}
	stored, err := a.store.ListSecrets(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list the owner's secrets: %w", err)
	}
	secs := make([]inject.Secret, len(stored))
	for i, s := range stored {
		secs[i] = inject.Secret{Name: s.Name, EnvName: s.EnvName, FilePath: s.FilePath, Disabled: !s.Enabled,
			NotInScope: !inject.InScope(s.Workspaces, name)}
	}
	sts := inject.CheckRequirements(requirements(t), secs, "")
	out := make([]client.SecretRequirementStatus, len(sts))
	for i, st := range sts {
		out[i] = client.SecretRequirementStatus{Status: st.Status, SecretRequirement: client.SecretRequirement{
			Env: st.Env, File: st.File, Description: st.Description, DocsURL: st.DocsURL, Required: st.Required}}
	}
	return out, nil
}

// refuseMissingSecrets is a 409 listing the required secrets the owner
// lacks for the new workspace, or nil when there are none.
func (a *api) refuseMissingSecrets(ctx context.Context, owner store.User, ws store.Workspace) error {
	sts, err := a.requirementStatus(ctx, owner.ID, ws.Name, ws.Template)
	if err != nil {
		return err
	}
	var missing []client.SecretRequirementStatus
	var labels []string
	for _, st := range sts {
		if st.Required && st.Status != client.RequirementMet {
			missing = append(missing, st)
			labels = append(labels, st.Label())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &apiError{status: http.StatusConflict, body: ErrorResponse{
		Message: fmt.Sprintf("%s lacks %d secret(s) the template requires (%s): create them first, or set allow_missing_secrets to create the workspace anyway",
			owner.Username, len(missing), strings.Join(labels, "; ")),
		MissingSecrets: missing,
	}}
}
