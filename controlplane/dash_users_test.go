package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/courierhq/courier/controlplane/store"
)

// The users list: admins manage, auditors look, members are refused; the
// navigation shows the page only to those who may open it.
func TestDashUsersList(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ts.createUserAs(p.admin, "dave", "auditor")
	ts.want(ts.do("PUT", "/api/v2/users/bob/status/suspend", p.admin, nil), 200)

	admin := ts.browser()
	admin.login("root")
	page := wantPage(t, admin.get("/users"), 200)
	for _, want := range []string{`<a href="/users" aria-current="page">Users</a>`, `id="user-alice"`,
		`action="/users/alice/role"`, `<option value="auditor">`, `action="/users/alice/suspend"`,
		`action="/users/bob/activate"`, `href="/users/alice/delete"`, `href="/users/alice/secrets"`, "(you)"} {
		if !strings.Contains(page, want) {
			t.Errorf("admin's list lacks %s", want)
		}
	}
	// No suspending or deleting oneself from the list.
	if strings.Contains(page, `action="/users/root/suspend"`) || strings.Contains(page, `href="/users/root/delete"`) {
		t.Error("the admin is offered to suspend or delete themselves")
	}
	if !strings.Contains(page, `<span class="state off">suspended</span>`) {
		t.Error("bob's suspension is not shown")
	}

	auditor := ts.browser()
	auditor.login("dave")
	page = wantPage(t, auditor.get("/users"), 200)
	if !strings.Contains(page, `id="user-alice"`) || !strings.Contains(page, `href="/users/alice/secrets"`) {
		t.Errorf("auditor's list: %s", page)
	}
	for _, no := range []string{"<form method=\"post\" action=\"/users/", `/delete"`} {
		if strings.Contains(page, no) {
			t.Errorf("auditor's list offers %s", no)
		}
	}

	member := ts.browser()
	member.login("alice")
	page = wantPage(t, member.get("/users"), 403)
	if !strings.Contains(page, "only admins and auditors") {
		t.Errorf("member's refusal: %s", page)
	}
	if strings.Contains(wantPage(t, member.get("/account/secrets"), 200), `href="/users"`) {
		t.Error("a member's navigation links to the users page")
	}
}

func TestDashUsersManage(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ctx := context.Background()
	admin := ts.browser()
	admin.login("root")
	alice := ts.browser()
	alice.login("alice")

	// Role: a good one, a bad one (nothing changes), the last admin.
	r := wantStatus(t, admin.post("/users/alice/role", url.Values{"role": {"auditor"}}), http.StatusSeeOther)
	if r.header.Get("Location") != "/users" {
		t.Fatalf("role: location %q", r.header.Get("Location"))
	}
	if !strings.Contains(wantPage(t, admin.get("/users"), 200), "alice is now auditor.") {
		t.Error("no notice after the role change")
	}
	for _, bad := range []string{"", "root", "Admin", "admin\x00"} {
		page := wantPage(t, admin.post("/users/alice/role", url.Values{"role": {bad}}), 400)
		if !strings.Contains(page, "invalid role") {
			t.Errorf("role %q: %s", bad, page)
		}
	}
	if u, _ := ts.store.UserByID(ctx, p.aliceID); u.Role != store.RoleAuditor {
		t.Fatalf("alice is %q after refused changes", u.Role)
	}
	page := wantPage(t, admin.post("/users/root/role", url.Values{"role": {"member"}}), 409)
	if !strings.Contains(page, "root is the last active admin") {
		t.Errorf("last admin: %s", page)
	}
	// Members and auditors cannot, and a form from another site does
	// nothing.
	wantPage(t, alice.post("/users/bob/role", url.Values{"role": {"admin"}}), 403)
	wantPage(t, admin.post("/users/bob/role", url.Values{"role": {"admin"}}, "Sec-Fetch-Site", "cross-site"), 403)
	if u, _ := ts.store.UserByID(ctx, p.bobID); u.Role != store.RoleMember {
		t.Fatalf("bob became %q", u.Role)
	}
	wantPage(t, admin.post("/users/nobody/role", url.Values{"role": {"admin"}}), 404)

	// Suspend: bob's browser and REST sessions end at once; activate.
	bob := ts.browser()
	bob.login("bob")
	wantStatus(t, admin.post("/users/bob/suspend", nil), http.StatusSeeOther)
	if r := bob.get("/account/secrets"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Faccount%2Fsecrets" {
		t.Fatalf("suspended bob's page: %d %s", r.status, r.header.Get("Location"))
	}
	ts.want(ts.do("GET", "/api/v2/users/me", p.bob, nil), 401)
	if u, _ := ts.store.UserByID(ctx, p.bobID); !u.Suspended() {
		t.Fatal("bob is not suspended")
	}
	page = wantPage(t, bob.post("/login", url.Values{"login": {"bob"}, "password": {testPassword}}), 401)
	if !strings.Contains(page, "suspended") {
		t.Errorf("suspended login page: %s", page)
	}
	wantPage(t, admin.post("/users/root/suspend", nil), 400)
	wantStatus(t, admin.post("/users/bob/activate", nil), http.StatusSeeOther)
	bob.login("bob")

	// Delete: the confirmation says what goes; then it is gone.
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", ts.login("bob", testPassword), map[string]string{"name": "k", "value": canary}), 201)
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "bob"}), 201)
	page = wantPage(t, admin.get("/users/bob/delete"), 200)
	if !strings.Contains(page, "Their 1 secret(s) and 1 workspace(s) are deleted") || !strings.Contains(page, `action="/users/bob/delete"`) {
		t.Errorf("confirmation: %s", page)
	}
	wantPage(t, admin.get("/users/root/delete"), 400)
	wantPage(t, alice.get("/users/bob/delete"), 403)
	wantPage(t, admin.post("/users/bob/delete", nil, "Sec-Fetch-Site", "", "Origin", "https://evil.example"), 403)
	wantStatus(t, admin.post("/users/bob/delete", nil), http.StatusSeeOther)
	if _, err := ts.store.UserByID(ctx, p.bobID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob after delete: %v", err)
	}
	if !strings.Contains(wantPage(t, admin.get("/users"), 200), "Deleted bob with their secrets and workspaces.") {
		t.Error("no notice after the delete")
	}
	wantPage(t, admin.post("/users/bob/delete", nil), 404)
}

func TestDashUserSecrets(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ts.createUserAs(p.admin, "dave", "auditor")
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "api-key", "value": canary,
		"env_name": "API_KEY", "description": "for <tools>"}), 201)
	for _, who := range []string{"root", "dave"} {
		b := ts.browser()
		b.login(who)
		page := wantPage(t, b.get("/users/alice/secrets"), 200)
		for _, want := range []string{"Secrets of alice", `id="secret-api-key"`, "<code>API_KEY</code>", "for &lt;tools&gt;"} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: page lacks %s", who, want)
			}
		}
		// Read-only: no form, no edit or delete link.
		if strings.Contains(page, "<form method=\"post\" action=\"/account/secrets") || strings.Contains(page, "/edit\"") {
			t.Errorf("%s: the page offers changes", who)
		}
		wantPage(t, b.get("/users/nobody/secrets"), 404)
	}
	bob := ts.browser()
	bob.login("bob")
	wantPage(t, bob.get("/users/alice/secrets"), 404)
	if page := wantPage(t, bob.get("/users/bob/secrets"), 200); !strings.Contains(page, "bob has no secrets") {
		t.Errorf("bob's own: %s", page)
	}
}

func TestDashChangePassword(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	b := ts.browser()
	b.login("alice")
	page := wantPage(t, b.get("/account/password"), 200)
	if !strings.Contains(page, `autocomplete="current-password"`) || !strings.Contains(page, "At least 8 bytes") {
		t.Fatalf("form: %s", page)
	}
	const newPassword = "a much better passphrase"
	for _, c := range []struct {
		name       string
		old, pw, c string
		status     int
		field      string
		detail     string
	}{
		{"confirm differs", testPassword, newPassword, newPassword + "!", 400, "confirm", "does not match"},
		{"wrong old", "not the password", newPassword, newPassword, 400, "old_password", "not your current password"},
		{"no old", "", newPassword, newPassword, 400, "old_password", "required"},
		{"short", testPassword, "short", "short", 400, "password", "at least 8 bytes"},
		{"common", testPassword, "iloveyou1", "iloveyou1", 400, "password", "most often used"},
	} {
		t.Run(c.name, func(t *testing.T) {
			page := wantPage(t, b.post("/account/password", url.Values{"old_password": {c.old}, "password": {c.pw}, "confirm": {c.c}}), c.status)
			if got := fieldError(page, c.field); !strings.Contains(got, c.detail) {
				t.Fatalf("%s error %q, want %q", c.field, got, c.detail)
			}
			for _, typed := range []string{c.old, c.pw} {
				if len(typed) > 4 && strings.Contains(page, typed) {
					t.Fatalf("the page shows a typed password")
				}
			}
			ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200)
		})
	}
	// Another site's form changes nothing.
	wantPage(t, b.post("/account/password", url.Values{"old_password": {testPassword}, "password": {newPassword}, "confirm": {newPassword}},
		"Sec-Fetch-Site", "cross-site"), 403)
	ts.login("alice", testPassword)

	r := wantStatus(t, b.post("/account/password", url.Values{"old_password": {testPassword}, "password": {newPassword}, "confirm": {newPassword}}), http.StatusSeeOther)
	if r.header.Get("Location") != "/account/secrets" {
		t.Fatalf("location %q", r.header.Get("Location"))
	}
	if !strings.Contains(wantPage(t, b.get("/account/secrets"), 200), "Your password was changed") {
		t.Error("no notice, or the browser's own session ended")
	}
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 401) // her other session
	ts.login("alice", newPassword)
	if strings.Contains(ts.logs.String(), newPassword) {
		t.Fatal("the password reached the log")
	}
}
