package controlplane

import (
	"slices"
	"strings"
	"testing"
)

// TestDashSecretScopes: the secret form's workspaces field creates, shows,
// changes and resets a scope; a bad glob or an overlap is refused beside
// the field with nothing saved; pausing from the list keeps the scope; the
// list, the admin's read-only view and the prefilled new form show it.
func TestDashSecretScopes(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	b := ts.browser()
	b.login("alice")

	page := wantPage(t, b.get("/account/secrets/new?env_name=NPM_TOKEN&file_path=~/.npmrc&name=npm-token&workspaces=dev&description=npm"), 200)
	for id, want := range map[string]string{"env_name": "NPM_TOKEN", "file_path": "~/.npmrc", "name": "npm-token", "workspaces": "dev", "description": "npm"} {
		if got := inputValue(page, id); got != want {
			t.Errorf("prefilled %s = %q, want %q", id, got, want)
		}
	}

	r := b.postMultipart("/account/secrets/new", map[string]string{"name": "prod", "value": canary, "env_name": "TOKEN",
		"workspaces": " api , web-* ,"}, nil)
	if r.status != 303 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	s, _ := ts.store.GetSecret(t.Context(), p.aliceID, "prod")
	if !slices.Equal(s.Workspaces, []string{"api", "web-*"}) {
		t.Fatalf("stored scope %q", s.Workspaces)
	}
	page = wantPage(t, b.get("/account/secrets"), 200)
	if !strings.Contains(page, "<code>api</code>, <code>web-*</code>") {
		t.Fatalf("the list does not show the scope:\n%s", page)
	}

	for _, tc := range []struct{ name, scope, env, want string }{
		{"bad glob", "web-[", "", "not a valid glob"},
		{"overlap", "api", "TOKEN", `secret "prod"`},
	} {
		page = wantPage(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "x", "value": canary,
			"env_name": tc.env, "workspaces": tc.scope}, nil), 400)
		msg := fieldError(page, "workspaces") + fieldError(page, "env_name")
		if !strings.Contains(msg, tc.want) || inputValue(page, "workspaces") != tc.scope {
			t.Errorf("%s: field errors %q, workspaces kept as %q", tc.name, msg, inputValue(page, "workspaces"))
		}
		if _, err := ts.store.GetSecret(t.Context(), p.aliceID, "x"); err == nil {
			t.Fatalf("%s: a refused form saved the secret", tc.name)
		}
	}

	// Edit shows the scope; pausing from the list keeps it; an empty field
	// resets it to all.
	if got := inputValue(wantPage(t, b.get("/account/secrets/prod/edit"), 200), "workspaces"); got != "api, web-*" {
		t.Fatalf("edit form workspaces = %q", got)
	}
	if r := b.post("/account/secrets/prod/enabled", map[string][]string{"enabled": {"false"}}); r.status != 303 {
		t.Fatalf("pause: %d", r.status)
	}
	if s, _ = ts.store.GetSecret(t.Context(), p.aliceID, "prod"); !slices.Equal(s.Workspaces, []string{"api", "web-*"}) {
		t.Fatalf("pausing changed the scope to %q", s.Workspaces)
	}
	admin := ts.browser()
	admin.login("root")
	if page = wantPage(t, admin.get("/users/alice/secrets"), 200); !strings.Contains(page, "<code>web-*</code>") {
		t.Fatalf("the admin's view lacks the scope:\n%s", page)
	}
	if r := b.postMultipart("/account/secrets/prod/edit", map[string]string{"description": "", "env_name": "TOKEN",
		"file_path": "", "workspaces": "", "enabled_present": "1"}, nil); r.status != 303 {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	if s, _ = ts.store.GetSecret(t.Context(), p.aliceID, "prod"); s.Workspaces != nil {
		t.Fatalf("an empty workspaces field left the scope %q", s.Workspaces)
	}
}

// TestDashRequiredSecrets: the workspace page lists what the template asks
// for; the owner gets a "Create it" link to the prefilled form for a
// missing one and "Resume it" for a paused one; an admin viewing another's
// workspace sees the status but no link (they cannot create its owner's
// secrets).
func TestDashRequiredSecrets(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"allow_missing_secrets": true, "template": map[string]any{"secrets": []map[string]any{
			{"env": "NPM_TOKEN", "file": "~/.npmrc", "description": "npm <b>token</b>", "docs_url": "https://wiki.example.com/npm?a=1&b=2", "required": true},
			{"env": "GH_TOKEN"},
		}}}), 201).json(t, &created)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "gh", "value": canary,
		"env_name": "GH_TOKEN", "enabled": false}), 201)
	b := ts.browser()
	b.login("alice")
	page := wantPage(t, b.get("/workspaces/dev"), 200)
	for _, want := range []string{
		`href="/account/secrets/new?description=npm&#43;%3Cb%3Etoken%3C%2Fb%3E&amp;env_name=NPM_TOKEN&amp;file_path=~%2F.npmrc&amp;name=npm-token"`,
		`href="https://wiki.example.com/npm?a=1&amp;b=2"`,
		"npm &lt;b&gt;token&lt;/b&gt;",
		`<span class="state missing">missing</span>`,
		`<span class="state paused">paused</span> <small>(recommended)</small>`,
		`<a href="/account/secrets">Resume it</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the owner's workspace page lacks %s", want)
		}
	}
	admin := ts.browser()
	admin.login("root")
	page = wantPage(t, admin.get("/workspaces/"+created.ID), 200)
	if !strings.Contains(page, `id="required-secrets"`) || strings.Contains(page, "create-secret") {
		t.Errorf("the admin's view of alice's workspace: requirements shown %t, create link shown %t",
			strings.Contains(page, `id="required-secrets"`), strings.Contains(page, "create-secret"))
	}
}
