package controlplane

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
)

func requiredTemplate() map[string]any {
	return map[string]any{
		"secrets": []map[string]any{
			{"env": "NPM_TOKEN", "description": "Token for the private npm registry", "docs_url": "https://wiki.example.com/npm", "required": true},
			{"file": "~/.kube/config", "required": true},
			{"env": "SENTRY_DSN", "description": "optional"},
		},
		"on_missing_secrets": "wait",
	}
}

func statusOf(sts []client.SecretRequirementStatus) map[string]string {
	out := map[string]string{}
	for _, s := range sts {
		out[s.Env+s.File] = s.Status
	}
	return out
}

// TestRequiredSecrets: a workspace whose owner lacks a required secret is
// refused with a 409 listing them (descriptions and links), unless
// allow_missing_secrets; the status (met, missing, paused) follows the
// owner's secrets and their scopes in every workspace response.
func TestRequiredSecrets(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	body := map[string]any{"name": "dev", "owner": "alice", "template": requiredTemplate()}
	r := ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, body), http.StatusConflict)
	e := r.errResp(t)
	if len(e.MissingSecrets) != 2 || e.MissingSecrets[0].Env != "NPM_TOKEN" || e.MissingSecrets[0].DocsURL != "https://wiki.example.com/npm" ||
		e.MissingSecrets[0].Description == "" || e.MissingSecrets[0].Status != "missing" || e.MissingSecrets[1].File != "~/.kube/config" {
		t.Fatalf("refusal = %+v", e)
	}
	if !strings.Contains(e.Message, "NPM_TOKEN") || !strings.Contains(e.Message, "allow_missing_secrets") {
		t.Fatalf("refusal message = %q", e.Message)
	}
	ts.want(ts.do("GET", "/api/v2/workspaces/alice/dev", p.admin, nil), 404)

	// A secret scoped to another workspace does not count; one in scope does.
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "npm", "value": canary,
		"env_name": "NPM_TOKEN", "workspaces": []string{"other"}}), 201)
	e = ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, body), http.StatusConflict).errResp(t)
	if len(e.MissingSecrets) != 2 {
		t.Fatalf("an out-of-scope secret met a requirement: %+v", e.MissingSecrets)
	}
	ts.want(ts.do("PATCH", "/api/v2/users/me/secrets/npm", p.alice, map[string]any{"workspaces": []string{"d*"}}), 200)
	e = ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, body), http.StatusConflict).errResp(t)
	if len(e.MissingSecrets) != 1 || e.MissingSecrets[0].File != "~/.kube/config" {
		t.Fatalf("after scoping npm to d*: %+v", e.MissingSecrets)
	}

	body["allow_missing_secrets"] = true
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, body), 201).json(t, &created)
	if st := statusOf(created.SecretRequirements); st["NPM_TOKEN"] != "met" || st["~/.kube/config"] != "missing" || st["SENTRY_DSN"] != "missing" {
		t.Fatalf("created statuses = %v", st)
	}

	// A paused secret shows as paused; resumed, as met.
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "kube", "value": "k",
		"file_path": "~/.kube/config", "enabled": false}), 201)
	var ws WorkspaceResponse
	ts.want(ts.do("GET", "/api/v2/workspaces/dev", p.alice, nil), 200).json(t, &ws)
	if st := statusOf(ws.SecretRequirements); st["~/.kube/config"] != "paused" {
		t.Fatalf("paused status = %v", st)
	}
	ts.want(ts.do("PATCH", "/api/v2/users/me/secrets/kube", p.alice, map[string]any{"enabled": true}), 200)
	var list []WorkspaceResponse
	ts.want(ts.do("GET", "/api/v2/workspaces", p.alice, nil), 200).json(t, &list)
	if len(list) != 1 || statusOf(list[0].SecretRequirements)["~/.kube/config"] != "met" {
		t.Fatalf("list statuses = %+v", list)
	}

	// The manifest carries the requirements to the agent, which may report
	// waiting_for_secrets with the missing names.
	agent := dialAgent(t, ts, created.AgentToken)
	var m proto.Manifest
	if st := agent.call(t, "GET", proto.PathManifest, nil, &m); st != 200 || len(m.Secrets) != 3 || m.OnMissingSecrets != "wait" ||
		!m.Secrets[0].Required || m.Secrets[0].DocsURL == "" {
		t.Fatalf("manifest secrets = %+v, %q", m.Secrets, m.OnMissingSecrets)
	}
	if st := agent.call(t, "POST", proto.PathLifecycle, proto.LifecycleReport{State: proto.StateWaitingForSecrets,
		At: time.Now(), Missing: []string{"NPM_TOKEN"}}, nil); st != 204 {
		t.Fatalf("waiting_for_secrets report: %d", st)
	}
	ts.want(ts.do("GET", "/api/v2/workspaces/dev", p.alice, nil), 200).json(t, &ws)
	if ws.State != proto.StateWaitingForSecrets {
		t.Fatalf("state = %q", ws.State)
	}
	if !strings.Contains(ts.logs.String(), `"missing":["NPM_TOKEN"]`) {
		t.Fatal("the control plane did not log the missing names")
	}

	// A template asking for nothing answers no secret_requirements.
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "plain", "owner": "alice"}), 201)
	raw := string(ts.want(ts.do("GET", "/api/v2/workspaces/plain", p.alice, nil), 200).body)
	if strings.Contains(raw, "secret_requirements") {
		t.Fatalf("a template without secrets answers requirements: %s", raw)
	}
}

// TestTemplateBadInput: each bad template is a 400 naming the field, and
// no workspace is created.
func TestTemplateBadInput(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	for _, tc := range []struct {
		name, template, field, want string
	}{
		{"unknown key", `{"secrets":[{"env":"A","requried":true}]}`, "template.secrets[0].requried", "is not a field"},
		{"unknown top key", `{"on_missing":"wait"}`, "template.on_missing", "is not a field"},
		{"no target", `{"secrets":[{"description":"x"}]}`, "template.secrets[0].env", "needs env, file or both"},
		{"bad env", `{"secrets":[{"env":"1X"}]}`, "template.secrets[0].env", ""},
		{"relative file", `{"secrets":[{"file":"../etc/passwd"}]}`, "template.secrets[0].file", "relative"},
		{"javascript docs_url", `{"secrets":[{"env":"A","docs_url":"javascript:alert(1)"}]}`, "template.secrets[0].docs_url", "http:// or https://"},
		{"ftp docs_url", `{"secrets":[{"env":"A","docs_url":"ftp://x/y"}]}`, "template.secrets[0].docs_url", "http:// or https://"},
		{"duplicate env", `{"secrets":[{"env":"A"},{"env":"A"}]}`, "template.secrets[1].env", "secrets[0]"},
		{"on_missing_secrets", `{"on_missing_secrets":"later"}`, "template.on_missing_secrets", "wait"},
		{"required not bool", `{"secrets":[{"env":"A","required":"yes"}]}`, "", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"name":"bad","owner":"alice","template":` + tc.template + `}`
			e := ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, body), 400).errResp(t)
			text := e.Message
			for _, v := range e.Validations {
				if tc.field != "" && v.Field == tc.field {
					text += " " + v.Detail
				}
			}
			if !strings.Contains(text, tc.want) {
				t.Fatalf("%s: %+v, want %q (field %q)", tc.name, e, tc.want, tc.field)
			}
			ts.want(ts.do("GET", "/api/v2/workspaces/alice/bad", p.admin, nil), 404)
		})
	}
}
