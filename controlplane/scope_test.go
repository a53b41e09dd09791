package controlplane

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
)

// TestSecretScopesREST: the workspaces field on create, update and list;
// [] resets to all; bad globs and overlapping scopes are clear 400s that
// change nothing; two unscoped secrets still clash with a 409.
func TestSecretScopesREST(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	base := "/api/v2/users/me/secrets"
	var s SecretResponse
	ts.want(ts.do("POST", base, p.alice, map[string]any{"name": "prod", "value": canary, "env_name": "TOKEN",
		"workspaces": []string{"prod", "prod"}}), 201).json(t, &s)
	if !slices.Equal(s.Workspaces, []string{"prod"}) {
		t.Fatalf("created scope = %q, want [prod]", s.Workspaces)
	}
	ts.want(ts.do("POST", base, p.alice, map[string]any{"name": "dev", "value": canary, "env_name": "TOKEN",
		"workspaces": []string{"dev-*", "api"}}), 201)
	s = SecretResponse{}
	ts.want(ts.do("POST", base, p.alice, secretBody("everywhere", "env_name", "OTHER")), 201).json(t, &s)
	if s.Workspaces != nil {
		t.Fatalf("an unscoped secret answers workspaces %q, want absent", s.Workspaces)
	}
	raw := string(ts.want(ts.do("GET", base+"/everywhere", p.alice, nil), 200).body)
	if strings.Contains(raw, `"workspaces"`) {
		t.Fatalf("an unscoped secret's JSON names workspaces (absent means all): %s", raw)
	}

	// Bad input: a clear 400 naming the field, nothing stored.
	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"bad glob", map[string]any{"name": "g", "value": "v", "workspaces": []string{"web-["}}, "not a valid glob"},
		{"empty entry", map[string]any{"name": "g", "value": "v", "workspaces": []string{""}}, "is empty"},
		{"slash", map[string]any{"name": "g", "value": "v", "workspaces": []string{"alice/dev"}}, "'/'"},
		{"overlap with a literal", map[string]any{"name": "g", "value": "v", "env_name": "TOKEN", "workspaces": []string{"prod"}}, `secret "prod"`},
		{"overlap of all", map[string]any{"name": "g", "value": "v", "env_name": "TOKEN"}, `secret "dev"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ts.want(ts.do("POST", base, p.alice, tc.body), 400).errResp(t)
			if !strings.Contains(e.Message, tc.want) || len(e.Validations) == 0 {
				t.Fatalf("%s: %+v, want a 400 saying %q", tc.name, e, tc.want)
			}
			ts.want(ts.do("GET", base+"/g", p.alice, nil), 404)
		})
	}
	// Two unscoped secrets clash as before.
	ts.want(ts.do("POST", base, p.alice, secretBody("other2", "env_name", "OTHER")), 409)
	// Disjoint: a literal that no glob of the others matches.
	ts.want(ts.do("POST", base, p.alice, map[string]any{"name": "ci", "value": "v", "env_name": "TOKEN", "workspaces": []string{"ci"}}), 201)

	// Update: change, refuse an overlap (nothing changes), reset to all.
	var u SecretResponse
	ts.want(ts.do("PATCH", base+"/everywhere", p.alice, map[string]any{"workspaces": []string{"web-*"}}), 200).json(t, &u)
	if !slices.Equal(u.Workspaces, []string{"web-*"}) {
		t.Fatalf("updated scope = %q", u.Workspaces)
	}
	e := ts.want(ts.do("PATCH", base+"/ci", p.alice, map[string]any{"workspaces": []string{}}), 400).errResp(t)
	if !strings.Contains(e.Message, "TOKEN") || e.Validations[0].Field != "env_name" {
		t.Fatalf("widening into an overlap: %+v", e)
	}
	ts.want(ts.do("GET", base+"/ci", p.alice, nil), 200).json(t, &u)
	if !slices.Equal(u.Workspaces, []string{"ci"}) {
		t.Fatalf("a refused update changed the scope to %q", u.Workspaces)
	}
	u = SecretResponse{}
	ts.want(ts.do("PATCH", base+"/everywhere", p.alice, map[string]any{"workspaces": []string{}}), 200).json(t, &u)
	if u.Workspaces != nil {
		t.Fatalf("reset scope = %q, want all", u.Workspaces)
	}
	ts.want(ts.do("PATCH", base+"/everywhere", p.alice, map[string]any{"workspaces": []string{"bad["}}), 400)

	var list []SecretResponse
	ts.want(ts.do("GET", base, p.alice, nil), 200).json(t, &list)
	scopes := map[string][]string{}
	for _, s := range list {
		scopes[s.Name] = s.Workspaces
	}
	if !slices.Equal(scopes["dev"], []string{"dev-*", "api"}) || scopes["everywhere"] != nil {
		t.Fatalf("list scopes = %v", scopes)
	}
	// ?workspace= keeps the secrets in scope for that name.
	for ws, want := range map[string]string{"dev-1": "dev,everywhere", "ci": "ci,everywhere", "prod": "everywhere,prod", "x/../y": "everywhere"} {
		ts.want(ts.do("GET", base+"?workspace="+url.QueryEscape(ws), p.alice, nil), 200).json(t, &list)
		var names []string
		for _, s := range list {
			names = append(names, s.Name)
		}
		if got := strings.Join(names, ","); got != want {
			t.Errorf("?workspace=%s lists %s, want %s", ws, got, want)
		}
	}
}

// TestBatchScopes: json and yaml batches carry workspaces; an overlap
// within the batch names both entries, a disjoint pair is accepted.
func TestBatchScopes(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	url := "/api/v2/users/me/secrets/batch"
	var out []SecretResponse
	ts.want(ts.do("POST", url, p.alice, map[string]string{"format": "json",
		"content": `[{"name":"a","value":"` + canary + `","env_name":"T","workspaces":["a"]},{"name":"b","value":"x","env_name":"T","workspaces":["b"]}]`}), 201).json(t, &out)
	if len(out) != 2 || !slices.Equal(out[1].Workspaces, []string{"b"}) {
		t.Fatalf("json batch = %+v", out)
	}
	e := ts.want(ts.do("POST", url, p.alice, map[string]string{"format": "yaml",
		"content": "- name: c\n  value: x\n  env_name: U\n  workspaces: [web-*]\n- name: d\n  value: y\n  env_name: U\n  workspaces: [web-1]\n"}), 400).errResp(t)
	if !strings.Contains(e.Message, "also used by") {
		t.Fatalf("overlap in a batch: %+v", e)
	}
	e = ts.want(ts.do("POST", url, p.alice, map[string]string{"format": "yaml",
		"content": "- name: c\n  value: x\n  workspaces: ['[']\n"}), 400).errResp(t)
	if !strings.Contains(e.Message, "glob") {
		t.Fatalf("bad glob in a batch: %+v", e)
	}
	ts.want(ts.do("GET", "/api/v2/users/me/secrets/c", p.alice, nil), 404)
}

// TestScopedSecretsReachOnlyTheirWorkspaces: an agent gets the value of a
// secret scoped to its workspace, and only the name (not_in_scope, no
// value, no targets) of one scoped elsewhere (R13).
func TestScopedSecretsReachOnlyTheirWorkspaces(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	tokens := map[string]string{}
	for _, name := range []string{"api", "web-1"} {
		var c CreatedWorkspaceResponse
		ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": name, "owner": "alice"}), 201).json(t, &c)
		tokens[name] = c.AgentToken
	}
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "prod", "value": canary,
		"env_name": "PROD", "file_path": "~/.prod", "workspaces": []string{"api"}}), 201)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "web", "value": "w",
		"env_name": "WEB", "workspaces": []string{"web-*"}}), 201)

	get := func(ws string) map[string]proto.Secret {
		var r proto.SecretsResponse
		if st := dialAgent(t, ts, tokens[ws]).call(t, "GET", proto.PathSecrets, nil, &r); st != 200 {
			t.Fatalf("secrets for %s: %d", ws, st)
		}
		out := map[string]proto.Secret{}
		for _, s := range r.Secrets {
			out[s.Name] = s
		}
		return out
	}
	api := get("api")
	if api["prod"].Value != canary || api["prod"].NotInScope || !api["web"].NotInScope {
		t.Fatalf("api agent got prod in scope=%t (value ok %t), web not_in_scope=%t", !api["prod"].NotInScope,
			api["prod"].Value == canary, api["web"].NotInScope)
	}
	web := get("web-1")
	if s := web["prod"]; !s.NotInScope || s.Value != "" || s.ValueBase64 != "" || s.EnvName != "" || s.FilePath != "" {
		t.Fatalf("web-1 agent got the out-of-scope secret with more than its name: %v %+v", s, s.NotInScope)
	}
	if web["web"].Value != "w" {
		t.Fatal("web-1 agent lacks its own scoped secret")
	}
	// Moving prod out of api's scope: api now gets its name only.
	ts.want(ts.do("PATCH", "/api/v2/users/me/secrets/prod", p.alice, map[string]any{"workspaces": []string{"web-1"}}), 200)
	if s := get("api")["prod"]; !s.NotInScope || s.Value != "" {
		t.Fatal("api agent still gets prod after it was scoped away")
	}
	// The apply report's not_in_scope outcome reaches the status.
	agent := dialAgent(t, ts, tokens["api"])
	if st := agent.call(t, "POST", proto.PathApply, proto.ApplyReport{At: time.Now(),
		Outcomes: []proto.Outcome{{Secret: "prod", Outcome: proto.OutcomeNotInScope}}}, nil); st != 204 {
		t.Fatalf("apply: %d", st)
	}
	var st client.AgentStatus
	ts.want(ts.do("GET", "/api/v2/workspaces/api/agent", p.alice, nil), 200).json(t, &st)
	if st.LastApply == nil || len(st.LastApply.Outcomes) != 1 || st.LastApply.Outcomes[0].Outcome != "not_in_scope" {
		t.Fatalf("status last apply = %+v", st.LastApply)
	}
}

// TestSecretErrorsComeTogether: a create with a bad name, a bad env name
// and a bad workspace glob is refused with all three, not the glob only
// after the others are fixed.
func TestSecretErrorsComeTogether(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	e := ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "a/b", "value": "v",
		"env_name": "1BAD", "workspaces": []string{"[bad"}}), 400).errResp(t)
	got := map[string]bool{}
	for _, v := range e.Validations {
		got[v.Field] = true
	}
	for _, f := range []string{"name", "env_name", "workspaces"} {
		if !got[f] {
			t.Errorf("no validation for %s in %+v", f, e.Validations)
		}
	}
}
