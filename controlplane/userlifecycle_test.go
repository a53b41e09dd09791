package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/controlplane/store"
)

// storeAPIToken creates a personal API token for userID straight in the
// store (as the tokens routes would) and returns it.
func (ts *testServer) storeAPIToken(userID, name string, scope store.TokenScope, expires time.Time) string {
	ts.t.Helper()
	tok, hash, err := newToken()
	if err != nil {
		ts.t.Fatal(err)
	}
	if err := ts.store.CreateAPIToken(context.Background(), store.APIToken{ID: uuid.NewString(), UserID: userID,
		Name: name, TokenHash: hash, Scope: scope, CreatedAt: time.Now(), ExpiresAt: expires}); err != nil {
		ts.t.Fatalf("create API token: %v", err)
	}
	return tok
}

// createUserAs creates a user with role through the REST API and returns
// its ID.
func (ts *testServer) createUserAs(admin, name, role string) string {
	ts.t.Helper()
	var u UserResponse
	ts.want(ts.do("POST", "/api/v2/users", admin, map[string]any{"username": name, "email": name + "@example.com",
		"password": testPassword, "role": role}), 201).json(ts.t, &u)
	if u.Role != role {
		ts.t.Fatalf("created %s with role %q, want %q", name, u.Role, role)
	}
	return u.ID
}

func TestUserResponseFields(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	var u UserResponse
	ts.want(ts.do("GET", "/api/v2/users/me", p.admin, nil), 200).json(t, &u)
	if u.Role != "admin" || !u.Admin || u.Status != "active" || u.LoginType != "password" {
		t.Fatalf("admin: %+v", u)
	}
	ts.want(ts.do("GET", "/api/v2/users/alice", p.admin, nil), 200).json(t, &u)
	if u.Role != "member" || u.Admin || u.Status != "active" {
		t.Fatalf("alice: %+v", u)
	}
	if _, err := ts.store.UpdateUser(context.Background(), p.aliceID, func(su *store.User) error {
		su.OIDCIssuer, su.OIDCSubject = "https://idp.example.com", "sub-1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ts.want(ts.do("GET", "/api/v2/users/alice", p.admin, nil), 200).json(t, &u)
	if u.LoginType != "oidc" {
		t.Fatalf("linked alice: login_type %q", u.LoginType)
	}
}

func TestCreateUserRole(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	table := []struct {
		name   string
		body   map[string]any
		status int
		role   string
		field  string
	}{
		{"auditor", map[string]any{"role": "auditor"}, 201, "auditor", ""},
		{"admin by role", map[string]any{"role": "admin"}, 201, "admin", ""},
		{"admin by flag", map[string]any{"admin": true}, 201, "admin", ""},
		{"flag and role agree", map[string]any{"admin": true, "role": "admin"}, 201, "admin", ""},
		{"neither is a member", map[string]any{}, 201, "member", ""},
		{"flag and role disagree", map[string]any{"admin": true, "role": "member"}, 400, "", "role"},
		{"unknown role", map[string]any{"role": "root"}, 400, "", "role"},
		{"upper case", map[string]any{"role": "ADMIN"}, 400, "", "role"},
		{"trailing space", map[string]any{"role": "admin "}, 400, "", "role"},
		{"NUL", map[string]any{"role": "auditor\x00"}, 400, "", "role"},
		{"not a string", map[string]any{"role": 1}, 400, "", ""},
		{"common password", map[string]any{"password": "Password123"}, 400, "", "password"},
		{"password is the username", map[string]any{"password": "%s@EXAMPLE.com"}, 400, "", "password"},
	}
	for i, c := range table {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("user%d", i)
			body := map[string]any{"username": name, "email": name + "@example.com", "password": testPassword}
			for k, v := range c.body {
				if s, ok := v.(string); ok && strings.Contains(s, "%s") {
					v = fmt.Sprintf(s, name)
				}
				body[k] = v
			}
			r := ts.want(ts.do("POST", "/api/v2/users", p.admin, body), c.status)
			if c.status != 201 {
				e := r.errResp(t)
				if c.field != "" && (len(e.Validations) == 0 || e.Validations[0].Field != c.field) {
					t.Fatalf("validations %+v, want field %q", e.Validations, c.field)
				}
				if _, err := ts.store.UserByUsername(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("refused user stored anyway: %v", err)
				}
				return
			}
			var u UserResponse
			r.json(t, &u)
			if u.Role != c.role || u.Admin != (c.role == "admin") {
				t.Fatalf("created %+v, want role %s", u, c.role)
			}
		})
	}
}

func TestSetRole(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	dave := ts.createUserAs(p.admin, "dave", "auditor")
	auditor := ts.login("dave", testPassword)
	_ = dave
	path := "/api/v2/users/alice/role"
	// Refusals change nothing.
	for _, c := range []struct {
		name   string
		token  string
		body   any
		status int
		msg    string
	}{
		{"member", p.bob, map[string]string{"role": "admin"}, 403, "only an admin"},
		{"the member themselves", p.alice, map[string]string{"role": "admin"}, 403, "only an admin"},
		{"auditor", auditor, map[string]string{"role": "admin"}, 403, "only an admin"},
		{"unknown role", p.admin, map[string]string{"role": "superuser"}, 400, "invalid role"},
		{"empty role", p.admin, map[string]string{"role": ""}, 400, "invalid role"},
		{"upper case", p.admin, map[string]string{"role": "Auditor"}, 400, "invalid role"},
		{"unknown field", p.admin, map[string]any{"role": "admin", "admin": true}, 400, ""},
		{"not JSON", p.admin, "role=admin", 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := ts.want(ts.do("PUT", path, c.token, c.body), c.status).errResp(t)
			if !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q, want %q", e.Message, c.msg)
			}
			if u, _ := ts.store.UserByID(context.Background(), p.aliceID); store.RoleOf(u) != store.RoleMember {
				t.Fatalf("alice became %q", u.Role)
			}
		})
	}
	ts.want(ts.do("PUT", "/api/v2/users/nobody/role", p.admin, map[string]string{"role": "admin"}), 404)

	var u UserResponse
	ts.want(ts.do("PUT", path, p.admin, map[string]string{"role": "auditor"}), 200).json(t, &u)
	if u.Role != "auditor" || u.Admin || u.Username != "alice" {
		t.Fatalf("after set-role: %+v", u)
	}
	// Alice now reads bob's secret metadata, and changes nothing of his.
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.bob, map[string]string{"name": "bobs", "value": canary}), 201)
	ts.want(ts.do("GET", "/api/v2/users/bob/secrets", p.alice, nil), 200)

	// The last active admin cannot demote themselves; with a second admin
	// they can.
	e := ts.want(ts.do("PUT", "/api/v2/users/root/role", p.admin, map[string]string{"role": "member"}), 409).errResp(t)
	if !strings.Contains(e.Message, "root is the last active admin") {
		t.Fatalf("last admin message %q", e.Message)
	}
	ts.want(ts.do("PUT", path, p.admin, map[string]string{"role": "admin"}), 200)
	ts.want(ts.do("PUT", "/api/v2/users/me/role", p.admin, map[string]string{"role": "member"}), 200).json(t, &u)
	if u.Role != "member" || u.Username != "root" {
		t.Fatalf("self-demotion: %+v", u)
	}
	// root is a member now: admin routes are closed to them at once.
	ts.want(ts.do("GET", "/api/v2/users", p.admin, nil), 403)
	ts.want(ts.do("PUT", "/api/v2/users/root/role", p.alice, map[string]string{"role": "admin"}), 200)
}

// subscribe returns a function that waits for the notifier to name
// userID (failing after a few seconds).
func (ts *testServer) subscribe() (next func() []string) {
	ts.t.Helper()
	sub := ts.notifier.Subscribe()
	ts.t.Cleanup(sub.Close)
	return func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b, err := sub.Next(ctx)
		if err != nil {
			ts.t.Fatalf("no notification: %v", err)
		}
		return b.Users
	}
}

func TestSuspendAndActivate(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	auditor := func() string { ts.createUserAs(p.admin, "dave", "auditor"); return ts.login("dave", testPassword) }()
	second := ts.login("alice", testPassword)
	tok := ts.storeAPIToken(p.aliceID, "ci", store.ScopeWrite, time.Now().Add(time.Hour))
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200)
	next := ts.subscribe()

	for _, c := range []struct {
		name, token, path string
		status            int
	}{
		{"member", p.bob, "/api/v2/users/alice/status/suspend", 403},
		{"the user themselves", p.alice, "/api/v2/users/alice/status/suspend", 403},
		{"auditor", auditor, "/api/v2/users/alice/status/suspend", 403},
		{"admin suspends themselves", p.admin, "/api/v2/users/me/status/suspend", 400},
		{"admin suspends themselves by name", p.admin, "/api/v2/users/ROOT/status/suspend", 400},
		{"unknown user", p.admin, "/api/v2/users/nobody/status/suspend", 404},
		{"unknown ID", p.admin, "/api/v2/users/" + uuid.NewString() + "/status/suspend", 404},
		{"unknown status verb", p.admin, "/api/v2/users/alice/status/delete", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts.want(ts.do("PUT", c.path, c.token, nil), c.status)
			ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200)
		})
	}

	var u UserResponse
	ts.want(ts.do("PUT", "/api/v2/users/alice/status/suspend", p.admin, nil), 200).json(t, &u)
	if u.Status != "suspended" || u.Username != "alice" {
		t.Fatalf("after suspend: %+v", u)
	}
	// Access ends at once: every session and token of hers, now refused
	// and deleted.
	for _, tk := range []string{p.alice, second, tok} {
		ts.want(ts.do("GET", "/api/v2/users/me", tk, nil), 401)
	}
	ctx := context.Background()
	if _, err := ts.store.SessionByHash(ctx, hashToken(second), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session kept: %v", err)
	}
	if toks, err := ts.store.ListAPITokens(ctx, p.aliceID); err != nil || len(toks) != 0 {
		t.Fatalf("API tokens kept: %v %v", toks, err)
	}
	// Every replica hears of it (the workspaces side disconnects agents).
	if got := next(); !slices.Contains(got, p.aliceID) {
		t.Fatalf("notified %v, want alice", got)
	}
	// The right password of a suspended account says so; a wrong one
	// says nothing more than for anyone.
	e := ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": "alice", "password": testPassword}), 401).errResp(t)
	if !strings.Contains(e.Message, "suspended") {
		t.Fatalf("suspended login: %q", e.Message)
	}
	e = ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": "alice", "password": "wrong password"}), 401).errResp(t)
	if strings.Contains(e.Message, "suspended") {
		t.Fatalf("a wrong password revealed the suspension: %q", e.Message)
	}
	// A session made behind the API's back is refused too: the suspension
	// itself, not only the deleted rows, closes the door.
	raw, hash, _ := newToken()
	if err := ts.store.CreateSession(ctx, store.Session{TokenHash: hash, UserID: p.aliceID, CreatedAt: time.Now(),
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ts.want(ts.do("GET", "/api/v2/users/me", raw, nil), 401)
	// Suspending twice keeps the first time.
	before, _ := ts.store.UserByID(ctx, p.aliceID)
	ts.want(ts.do("PUT", "/api/v2/users/alice/status/suspend", p.admin, nil), 200)
	if after, _ := ts.store.UserByID(ctx, p.aliceID); !after.SuspendedAt.Equal(before.SuspendedAt) {
		t.Fatalf("suspended at moved from %v to %v", before.SuspendedAt, after.SuspendedAt)
	}
	// The list shows her status to admins and auditors.
	var us []UserResponse
	ts.want(ts.do("GET", "/api/v2/users", auditor, nil), 200).json(t, &us)
	if i := slices.IndexFunc(us, func(u UserResponse) bool { return u.Username == "alice" }); i < 0 || us[i].Status != "suspended" {
		t.Fatalf("list: %+v", us)
	}

	ts.want(ts.do("PUT", "/api/v2/users/alice/status/activate", p.admin, nil), 200).json(t, &u)
	if u.Status != "active" {
		t.Fatalf("after activate: %+v", u)
	}
	if got := next(); !slices.Contains(got, p.aliceID) {
		t.Fatalf("notified %v, want alice", got)
	}
	// Old credentials stay gone; a new login works.
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 401)
	ts.want(ts.do("GET", "/api/v2/users/me", ts.login("alice", testPassword), nil), 200)
	ts.want(ts.do("PUT", "/api/v2/users/alice/status/activate", p.bob, nil), 403)
}

func TestDeleteUser(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ctx := context.Background()
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "k", "value": canary}), 201)
	var ws CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &ws)
	tok := ts.storeAPIToken(p.aliceID, "ci", store.ScopeWrite, time.Now().Add(time.Hour))
	next := ts.subscribe()

	ts.want(ts.do("DELETE", "/api/v2/users/alice", p.bob, nil), 403)
	ts.want(ts.do("DELETE", "/api/v2/users/alice", p.alice, nil), 403)
	ts.want(ts.do("DELETE", "/api/v2/users/nobody", p.admin, nil), 404)
	e := ts.want(ts.do("DELETE", "/api/v2/users/me", p.admin, nil), 400).errResp(t)
	if !strings.Contains(e.Message, "cannot delete your own account") {
		t.Fatalf("self-delete: %q", e.Message)
	}
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200)

	ts.want(ts.do("DELETE", "/api/v2/users/alice", p.admin, nil), 204)
	if got := next(); !slices.Contains(got, p.aliceID) {
		t.Fatalf("notified %v, want alice", got)
	}
	for _, tk := range []string{p.alice, tok} {
		ts.want(ts.do("GET", "/api/v2/users/me", tk, nil), 401)
	}
	ts.want(ts.do("GET", "/api/v2/users/alice", p.admin, nil), 404)
	ts.want(ts.do("GET", "/api/v2/users/"+p.aliceID, p.admin, nil), 404)
	ts.want(ts.do("DELETE", "/api/v2/users/alice", p.admin, nil), 404)
	// Her secrets, workspace and its agent token are gone from the store.
	if ss, err := ts.store.ListSecrets(ctx, p.aliceID); err != nil || len(ss) != 0 {
		t.Fatalf("secrets left: %v %v", ss, err)
	}
	if wss, err := ts.store.ListWorkspaces(ctx, p.aliceID); err != nil || len(wss) != 0 {
		t.Fatalf("workspaces left: %v %v", wss, err)
	}
	if _, _, err := ts.store.WorkspaceByAgentTokenHash(ctx, hashToken(ws.AgentToken)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent token still matches: %v", err)
	}
	ts.want(ts.do("GET", "/api/v2/workspaces/"+ws.ID, p.admin, nil), 404)
	// The name is free again, and the new alice owns nothing of the old.
	ts.createUserAs(p.admin, "alice", "member")
	if r := ts.want(ts.do("GET", "/api/v2/users/me/secrets", ts.login("alice", testPassword), nil), 200); strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("the new alice sees %s", r.body)
	}
	// Others are untouched.
	ts.want(ts.do("GET", "/api/v2/users/me", p.bob, nil), 200)
}

func TestUpdatePassword(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	auditor := func() string { ts.createUserAs(p.admin, "dave", "auditor"); return ts.login("dave", testPassword) }()
	other := ts.login("alice", testPassword) // alice's second session
	const newPassword = "a much better passphrase"
	path := "/api/v2/users/me/password"

	for _, c := range []struct {
		name   string
		token  string
		path   string
		body   any
		status int
		field  string // the validation expected
		detail string
	}{
		{"no old password", p.alice, path, map[string]string{"password": newPassword}, 400, "old_password", "required"},
		{"wrong old password", p.alice, path, map[string]string{"old_password": "not my password", "password": newPassword}, 400, "old_password", "not your current password"},
		{"overlong old password", p.alice, path, map[string]string{"old_password": strings.Repeat("x", 100), "password": newPassword}, 400, "old_password", "not your current password"},
		{"too short", p.alice, path, map[string]string{"old_password": testPassword, "password": "short"}, 400, "password", "at least 8 bytes"},
		{"too long", p.alice, path, map[string]string{"old_password": testPassword, "password": strings.Repeat("x", 73)}, 400, "password", "at most 72 bytes"},
		{"common", p.alice, path, map[string]string{"old_password": testPassword, "password": "Qwertyuiop"}, 400, "password", "most often used"},
		{"the username", p.alice, path, map[string]string{"old_password": testPassword, "password": "ALICE@example.com"}, 400, "password", "username or e-mail"},
		{"empty", p.alice, path, map[string]string{"old_password": testPassword}, 400, "password", "at least 8 bytes"},
		{"member resets another", p.bob, "/api/v2/users/alice/password", map[string]string{"password": newPassword}, 404, "", ""},
		{"auditor resets another", auditor, "/api/v2/users/alice/password", map[string]string{"password": newPassword}, 403, "", ""},
		{"unknown field", p.alice, path, map[string]string{"old_password": testPassword, "password": newPassword, "pw": "x"}, 400, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := ts.want(ts.do("PUT", c.path, c.token, c.body), c.status).errResp(t)
			if c.field != "" {
				i := slices.IndexFunc(e.Validations, func(v Validation) bool { return v.Field == c.field })
				if i < 0 || !strings.Contains(e.Validations[i].Detail, c.detail) {
					t.Fatalf("validations %+v, want %s: %s", e.Validations, c.field, c.detail)
				}
			}
			// Nothing changed: the old password and every session work.
			ts.login("alice", testPassword)
			ts.want(ts.do("GET", "/api/v2/users/me", other, nil), 200)
		})
	}

	// Her own change: the calling session stays, the others end.
	ts.want(ts.do("PUT", path, p.alice, map[string]string{"old_password": testPassword, "password": newPassword}), 204)
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200)
	ts.want(ts.do("GET", "/api/v2/users/me", other, nil), 401)
	ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": "alice", "password": testPassword}), 401)
	fresh := ts.login("alice", newPassword)

	// An admin's reset needs no old password and ends every session.
	ts.want(ts.do("PUT", "/api/v2/users/alice/password", p.admin, map[string]string{"password": testPassword}), 204)
	for _, tk := range []string{p.alice, fresh} {
		ts.want(ts.do("GET", "/api/v2/users/me", tk, nil), 401)
	}
	ts.login("alice", testPassword)
	ts.want(ts.do("GET", "/api/v2/users/me", p.admin, nil), 200)
	// A reset is checked against the policy too.
	ts.want(ts.do("PUT", "/api/v2/users/alice/password", p.admin, map[string]string{"password": "password1"}), 400)
	// An admin changing their own password gives the old one.
	ts.want(ts.do("PUT", "/api/v2/users/root/password", p.admin, map[string]string{"password": newPassword}), 400)
	// Through an API token: every session ends (none is the caller's).
	tok := ts.storeAPIToken(p.bobID, "ci", store.ScopeWrite, time.Now().Add(time.Hour))
	ts.want(ts.do("PUT", path, tok, map[string]string{"old_password": testPassword, "password": newPassword}), 204)
	ts.want(ts.do("GET", "/api/v2/users/me", p.bob, nil), 401)
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200)
	// A read-scoped token changes nothing.
	read := ts.storeAPIToken(p.bobID, "ro", store.ScopeRead, time.Now().Add(time.Hour))
	ts.want(ts.do("PUT", path, read, map[string]string{"old_password": newPassword, "password": testPassword}), 403)
	ts.login("bob", newPassword)
	// A single sign-on account without a password cannot prove the old
	// one; an admin sets one.
	if _, err := ts.store.UpdateUser(context.Background(), p.bobID, func(su *store.User) error {
		su.PasswordHash, su.OIDCIssuer, su.OIDCSubject = nil, "https://idp.example.com", "bob"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e := ts.want(ts.do("PUT", path, tok, map[string]string{"old_password": newPassword, "password": testPassword}), 400).errResp(t)
	if len(e.Validations) != 1 || !strings.Contains(e.Validations[0].Detail, "no password") {
		t.Fatalf("no-password account: %+v", e)
	}
	ts.want(ts.do("PUT", "/api/v2/users/bob/password", p.admin, map[string]string{"password": testPassword}), 204)
	ts.login("bob", testPassword)
	if strings.Contains(ts.logs.String(), newPassword) {
		t.Fatal("a password reached the log")
	}
}

// Wrong old passwords count as failed logins: enough of them lock the
// account like a password spray would.
func TestUpdatePasswordThrottled(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	var last resp
	for range 30 {
		last = ts.do("PUT", "/api/v2/users/me/password", p.alice, map[string]string{"old_password": "guess guess", "password": "a much better passphrase"})
		if last.status == 429 {
			break
		}
		ts.want(last, 400)
	}
	if last.status != 429 || last.header.Get("Retry-After") == "" {
		t.Fatalf("30 wrong old passwords: last answer %d %s", last.status, last.body)
	}
}

func TestAuditorReadsEveryone(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ts.createUserAs(p.admin, "dave", "auditor")
	auditor := ts.login("dave", testPassword)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": "k", "value": canary, "env_name": "K"}), 201)

	ts.want(ts.do("GET", "/api/v2/users", auditor, nil), 200)
	ts.want(ts.do("GET", "/api/v2/users/alice", auditor, nil), 200)
	r := ts.want(ts.do("GET", "/api/v2/users/alice/secrets", auditor, nil), 200)
	if !strings.Contains(string(r.body), `"env_name":"K"`) {
		t.Fatalf("auditor's list: %s", r.body)
	}
	ts.want(ts.do("GET", "/api/v2/users/alice/secrets/k", auditor, nil), 200)
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v2/users/alice/secrets"},
		{"PATCH", "/api/v2/users/alice/secrets/k"},
		{"DELETE", "/api/v2/users/alice/secrets/k"},
		{"PUT", "/api/v2/users/alice/password"},
	} {
		e := ts.want(ts.do(c.method, c.path, auditor, map[string]string{"value": "x"}), 403).errResp(t)
		if !strings.Contains(e.Message, "auditors can read but not change") {
			t.Errorf("%s %s: %q", c.method, c.path, e.Message)
		}
	}
	if v := storedValue(t, ts, p.aliceID, "k"); v != canary {
		t.Fatalf("value changed to %q", v)
	}
	// Their own secrets are theirs to change.
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", auditor, map[string]string{"name": "mine", "value": "v"}), 201)
	// A member still cannot see that alice exists.
	ts.want(ts.do("GET", "/api/v2/users/alice/secrets", p.bob, nil), 404)
	ts.want(ts.do("GET", "/api/v2/users/alice", p.bob, nil), 404)
	ts.want(ts.do("GET", "/api/v2/users", p.bob, nil), 403)
}

// Two replicas on one PostgreSQL database: a suspension made through
// replica A refuses alice's session and API token on replica B at the
// very next request, and B's change notifier names her within a second
// (from which B disconnects her agents), as does her deletion.
func TestSuspendAcrossReplicas(t *testing.T) {
	a, b, _ := twoReplicas(t)
	p := a.setup()
	onB := b.login("alice", testPassword)
	tok := a.storeAPIToken(p.aliceID, "ci", store.ScopeWrite, time.Now().Add(time.Hour))
	b.want(b.do("GET", "/api/v2/users/me", tok, nil), 200)
	sub := b.notifier.Subscribe()
	defer sub.Close()
	// heard waits up to a second for B to be told of userID.
	heard := func(userID string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for {
			batch, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("replica B was not told of %s within a second: %v", userID, err)
			}
			if slices.Contains(batch.Users, userID) {
				return
			}
		}
	}

	a.want(a.do("PUT", "/api/v2/users/alice/status/suspend", p.admin, nil), 200)
	heard(p.aliceID)
	b.want(b.do("GET", "/api/v2/users/me", onB, nil), 401)
	b.want(b.do("GET", "/api/v2/users/me", tok, nil), 401)
	b.want(b.do("POST", "/api/v2/users/login", "", map[string]string{"username": "alice", "password": testPassword}), 401)

	a.want(a.do("PUT", "/api/v2/users/alice/status/activate", p.admin, nil), 200)
	heard(p.aliceID)
	again := b.login("alice", testPassword)
	b.want(b.do("GET", "/api/v2/users/me", again, nil), 200)

	a.want(a.do("DELETE", "/api/v2/users/alice", p.admin, nil), 204)
	heard(p.aliceID)
	b.want(b.do("GET", "/api/v2/users/me", again, nil), 401)
	b.want(b.do("GET", "/api/v2/users/alice", p.admin, nil), 404)
}
