package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// The authorization matrix: every route of the control plane, asked by
// every kind of caller, in one table. The resources belong to alice (the
// owner): her user, her secrets, her workspace. Invalid tokens are
// alice's where they can be (logged out, expired, expired API token,
// rotated agent token), so a hole would hand out an owner's rights; the
// suspended and the deleted user are others (sam, dan), since suspending
// or deleting alice would end every other column. The suspended, deleted,
// expired and rotated credentials are checked to work before they are made
// invalid (the expired API token through a twin with a later expiry).

// Principals, the columns of the matrix.
const (
	pOwner        = iota // alice, a fresh session
	pOther               // bob, an ordinary user (a member)
	pAdmin               // root, the first user
	pNone                // no token at all
	pGarbage             // a token nobody issued
	pLoggedOut           // alice's token after logout
	pExpired             // alice's token past SessionLifetime (via Config.Now)
	pAgent               // another workspace's (bob's) agent token
	pAuditor             // dave, an auditor
	pSuspended           // a session of sam, made after an admin suspended sam
	pDeleted             // dan's session token, after an admin deleted dan
	pExpiredAPI          // alice's write-scoped API token past its expiry
	pReadToken           // alice's read-scoped API token
	pRotatedAgent        // alice's workspace's agent token after RotateAgentToken
	nPrincipals
)

// seeLogin stands for a 303 redirect to the dashboard's login page: the
// pages' answer where the API answers 401.
const seeLogin = 1303

// ownerIfRead, in the read-token column, is the owner's answer for a GET
// or HEAD and 403 for any other method: a read-scoped token of alice's
// reads what she reads and changes nothing. The test resolves it per row.
const ownerIfRead = -1

var principalNames = [nPrincipals]string{"owner", "other user", "admin", "no token", "garbage token",
	"logged-out token", "expired token", "agent token", "auditor", "suspended user", "deleted user",
	"expired API token", "read-scoped token", "rotated agent token"}

// authzRow is one route. path may hold {user} (alice's username), {ws}
// (alice's workspace ID) and {secret} (a secret of alice's created for the
// cell). For the agent endpoint the principal's token is sent as the
// agent token: session tokens there must be refused, and an agent token
// connects as its own workspace. Websocket routes answer 101 on success.
// Redirects are not followed: a 303 is the answer.
type authzRow struct {
	route string // the pattern as registered
	path  string
	ws    bool // a websocket upgrade
	// cookie, when set, carries the token in the cookie of that name
	// instead of the Coder-Session-Token header (dashboard pages). A body
	// of type url.Values is sent as a form, any other as JSON.
	cookie string
	body   func(cell string) any
	want   [nPrincipals]int
}

// Shorthands for rows: the answer of the three valid callers (and of the
// auditor: when omitted, the auditor is expected to answer as the other
// user, an ordinary member, does), then the invalid credentials, which
// must all get 401 on an authenticated route, or the same answer on a
// public one. alice's read-scoped token answers ownerIfRead.
func authed(owner, other, admin int, auditor ...int) [nPrincipals]int {
	return [nPrincipals]int{owner, other, admin, 401, 401, 401, 401, 401,
		auditorOr(other, auditor), 401, 401, 401, ownerIfRead, 401}
}

// page is authed for dashboard pages: invalid credentials are sent to the
// login page, and so are API tokens, which do not open the dashboard.
func page(owner, other, admin int, auditor ...int) [nPrincipals]int {
	return [nPrincipals]int{owner, other, admin, seeLogin, seeLogin, seeLogin, seeLogin, seeLogin,
		auditorOr(other, auditor), seeLogin, seeLogin, seeLogin, seeLogin, seeLogin}
}

func public(status int) [nPrincipals]int {
	var w [nPrincipals]int
	for i := range w {
		w[i] = status
	}
	return w
}

func auditorOr(other int, auditor []int) int {
	if len(auditor) > 0 {
		return auditor[0]
	}
	return other
}

var authzMatrix = []authzRow{
	{route: "GET /healthz", path: "/healthz", want: public(200)},
	{route: "GET /readyz", path: "/readyz", want: public(200)},
	{route: "GET /metrics", path: "/metrics", want: public(200)},
	{route: "POST /api/v2/users/first", path: "/api/v2/users/first", want: public(409),
		body: func(c string) any {
			return map[string]string{"username": "first" + c, "email": "first" + c + "@example.com", "password": testPassword}
		}},
	{route: "POST /api/v2/users/login", path: "/api/v2/users/login", want: public(201),
		body: func(string) any { return map[string]string{"username": "carol", "password": testPassword} }},
	{route: "POST /api/v2/users/logout", path: "/api/v2/users/logout", want: authed(204, 204, 204, 204)},
	{route: "POST /api/v2/users", path: "/api/v2/users", want: authed(403, 403, 201, 403),
		body: func(c string) any {
			return map[string]string{"username": "u" + c, "email": "u" + c + "@example.com", "password": testPassword}
		}},
	{route: "GET /api/v2/users", path: "/api/v2/users", want: authed(403, 403, 200, 200)},
	{route: "GET /api/v2/users/{user}", path: "/api/v2/users/{user}", want: authed(200, 404, 200, 200)},
	{route: "GET /api/v2/users/{user}", path: "/api/v2/users/me", want: authed(200, 200, 200, 200)},

	// Users' lifecycle (issue 19 part 3). {victim} is a member created
	// for the cell, so a suspension or deletion touches nobody else.
	{route: "PUT /api/v2/users/{user}/role", path: "/api/v2/users/{victim}/role", want: authed(403, 403, 200, 403),
		body: func(string) any { return map[string]string{"role": "auditor"} }},
	{route: "PUT /api/v2/users/{user}/status/suspend", path: "/api/v2/users/{victim}/status/suspend", want: authed(403, 403, 200, 403)},
	{route: "PUT /api/v2/users/{user}/status/activate", path: "/api/v2/users/{victim}/status/activate", want: authed(403, 403, 200, 403)},
	{route: "DELETE /api/v2/users/{user}", path: "/api/v2/users/{victim}", want: authed(403, 403, 204, 403)},
	// alice's password: she changes it (with the old one, to the same),
	// an admin resets it, a member cannot see her, an auditor cannot
	// change it.
	{route: "PUT /api/v2/users/{user}/password", path: "/api/v2/users/{user}/password", want: authed(204, 404, 204, 403),
		body: func(string) any { return map[string]string{"old_password": testPassword, "password": testPassword} }},
	// Everyone changes their own.
	{route: "PUT /api/v2/users/{user}/password", path: "/api/v2/users/me/password", want: authed(204, 204, 204, 204),
		body: func(string) any { return map[string]string{"old_password": testPassword, "password": testPassword} }},

	{route: "POST /api/v2/workspaces", path: "/api/v2/workspaces", want: authed(403, 403, 201, 403),
		body: func(c string) any { return map[string]string{"name": "w" + c, "owner": "alice"} }},
	{route: "GET /api/v2/workspaces", path: "/api/v2/workspaces", want: authed(200, 200, 200, 200)},
	{route: "GET /api/v2/workspaces/{workspace}", path: "/api/v2/workspaces/{ws}", want: authed(200, 404, 200, 404)},
	{route: "GET /api/v2/workspaces/{workspace}/agent", path: "/api/v2/workspaces/{ws}/agent", want: authed(200, 404, 200, 404)},
	// Startup logs (issue 21): whoever may see the workspace, like show.
	{route: "GET /api/v2/workspaces/{workspace}/logs", path: "/api/v2/workspaces/{ws}/logs", want: authed(200, 404, 200, 404)},
	// Only the owner may open a shell: it reads every secret of the owner.
	// Not with a read-scoped token: a shell can change anything.
	{route: "GET /api/v2/workspaces/{workspace}/ssh", path: "/api/v2/workspaces/{ws}/ssh", ws: true,
		want: readToken(authed(101, 404, 403, 404), 403)},

	{route: "GET /api/v2/users/{user}/secrets", path: "/api/v2/users/{user}/secrets", want: authed(200, 404, 200, 200)},
	// Admins and auditors read metadata but never create, change or delete.
	{route: "POST /api/v2/users/{user}/secrets", path: "/api/v2/users/{user}/secrets", want: authed(201, 404, 403, 403),
		body: func(c string) any { return map[string]string{"name": "new" + c, "value": canary} }},
	{route: "POST /api/v2/users/{user}/secrets/batch", path: "/api/v2/users/{user}/secrets/batch", want: authed(201, 404, 403, 403),
		body: func(c string) any { return map[string]string{"format": "env", "content": "BATCH" + c + "=" + canary} }},
	{route: "GET /api/v2/users/{user}/secrets/{name}", path: "/api/v2/users/{user}/secrets/{secret}", want: authed(200, 404, 200, 200)},
	{route: "PATCH /api/v2/users/{user}/secrets/{name}", path: "/api/v2/users/{user}/secrets/{secret}", want: authed(200, 404, 403, 403),
		body: func(string) any { return map[string]string{"value": canary + "-2"} }},
	{route: "DELETE /api/v2/users/{user}/secrets/{name}", path: "/api/v2/users/{user}/secrets/{secret}", want: authed(204, 404, 403, 403)},

	// The audit log (issue 20): admins and auditors read and verify it;
	// everyone reads the records about themselves.
	{route: "GET /api/v2/audit", path: "/api/v2/audit", want: authed(403, 403, 200, 200)},
	{route: "GET /api/v2/audit/verify", path: "/api/v2/audit/verify", want: authed(403, 403, 200, 200)},
	{route: "GET /api/v2/users/{user}/audit", path: "/api/v2/users/{user}/audit", want: authed(200, 404, 200, 200)},
	{route: "GET /api/v2/users/{user}/audit", path: "/api/v2/users/me/audit", want: authed(200, 200, 200, 200)},
	// Issue 19 part 1, single sign-on: public routes. This server has no
	// OIDC provider configured, so all but authmethods answer 404.
	{route: "GET /api/v2/users/authmethods", path: "/api/v2/users/authmethods", want: public(200)},
	{route: "POST /api/v2/users/oidc/token", path: "/api/v2/users/oidc/token", want: public(404),
		body: func(string) any { return map[string]string{"code": "x", "code_verifier": strings.Repeat("v", 43)} }},
	{route: "POST /api/v2/users/oidc/device", path: "/api/v2/users/oidc/device", want: public(404)},
	{route: "POST /api/v2/users/oidc/device/token", path: "/api/v2/users/oidc/device/token", want: public(404),
		body: func(string) any { return map[string]string{"device_request": "x"} }},
	{route: "GET /login/oidc", path: "/login/oidc", cookie: dashCookie, want: public(404)},
	{route: "GET /api/v2/users/oidc/callback", path: "/api/v2/users/oidc/callback?state=s&code=c", cookie: dashCookie, want: public(404)},

	// The agents' endpoint: the principal's token is sent as the agent
	// token. Session and API tokens are refused; an agent token connects,
	// a rotated one no longer.
	{route: proto.ConnectPath, path: proto.ConnectPath, ws: true,
		want: [nPrincipals]int{401, 401, 401, 401, 401, 401, 401, 101, 401, 401, 401, 401, 401, 401}},

	// Dashboard pages and form actions: the session token travels in the
	// dashboard's cookie, forms as url.Values, and seeLogin (a 303 to
	// /login) is the pages' 401.
	{route: "GET /static/", path: "/static/dash.css", want: public(200)},
	{route: "GET /{$}", path: "/", want: public(303)},
	// A signed-in caller is sent on from the login page.
	{route: "GET /login", path: "/login", cookie: dashCookie,
		want: [nPrincipals]int{303, 303, 303, 200, 200, 200, 200, 200, 303, 200, 200, 200, 200, 200}},
	{route: "POST /login", path: "/login", cookie: dashCookie, want: public(303),
		body: func(string) any { return url.Values{"login": {"carol"}, "password": {testPassword}} }},
	{route: "POST /logout", path: "/logout", cookie: dashCookie, want: public(seeLogin)},
	// Dashboard pages act on the caller's own account: another user and an
	// admin see their own lists, and alice's secrets do not exist for them.
	{route: "GET /account/secrets", path: "/account/secrets", cookie: dashCookie, want: page(200, 200, 200, 200)},
	{route: "GET /account/secrets/new", path: "/account/secrets/new", cookie: dashCookie, want: page(200, 200, 200, 200)},
	{route: "POST /account/secrets/new", path: "/account/secrets/new", cookie: dashCookie, want: page(303, 303, 303, 303),
		body: func(c string) any { return url.Values{"name": {"dash" + c}, "value": {canary}} }},
	{route: "GET /account/secrets/{name}/edit", path: "/account/secrets/{secret}/edit", cookie: dashCookie, want: page(200, 404, 404, 404)},
	{route: "POST /account/secrets/{name}/edit", path: "/account/secrets/{secret}/edit", cookie: dashCookie, want: page(303, 404, 404, 404),
		body: func(string) any { return url.Values{"value": {canary + "-3"}} }},
	{route: "POST /account/secrets/{name}/enabled", path: "/account/secrets/{secret}/enabled", cookie: dashCookie, want: page(303, 404, 404, 404),
		body: func(string) any { return url.Values{"enabled": {"false"}} }},
	{route: "GET /account/secrets/{name}/delete", path: "/account/secrets/{secret}/delete", cookie: dashCookie, want: page(200, 404, 404, 404)},
	{route: "POST /account/secrets/{name}/delete", path: "/account/secrets/{secret}/delete", cookie: dashCookie, want: page(303, 404, 404, 404)},
	{route: "GET /workspaces", path: "/workspaces", cookie: dashCookie, want: page(200, 200, 200, 200)},
	{route: "GET /workspaces/{workspace}", path: "/workspaces/{ws}", cookie: dashCookie, want: page(200, 404, 200, 404)},

	// Dashboard: users (issue 19 part 3).
	{route: "GET /users", path: "/users", cookie: dashCookie, want: page(403, 403, 200, 200)},
	{route: "POST /users/{user}/role", path: "/users/{victim}/role", cookie: dashCookie, want: page(403, 403, 303, 403),
		body: func(string) any { return url.Values{"role": {"auditor"}} }},
	{route: "POST /users/{user}/suspend", path: "/users/{victim}/suspend", cookie: dashCookie, want: page(403, 403, 303, 403)},
	{route: "POST /users/{user}/activate", path: "/users/{victim}/activate", cookie: dashCookie, want: page(403, 403, 303, 403)},
	{route: "GET /users/{user}/delete", path: "/users/{victim}/delete", cookie: dashCookie, want: page(403, 403, 200, 403)},
	{route: "POST /users/{user}/delete", path: "/users/{victim}/delete", cookie: dashCookie, want: page(403, 403, 303, 403)},
	{route: "GET /users/{user}/secrets", path: "/users/{user}/secrets", cookie: dashCookie, want: page(200, 404, 200, 200)},
	{route: "GET /account/password", path: "/account/password", cookie: dashCookie, want: page(200, 200, 200, 200)},
	{route: "POST /account/password", path: "/account/password", cookie: dashCookie, want: page(303, 303, 303, 303),
		body: func(string) any {
			return url.Values{"old_password": {testPassword}, "password": {testPassword}, "confirm": {testPassword}}
		}},

	// --- issue 19 part 2: personal API tokens. {apitoken} is a token of
	// alice's created for the cell. Only its owner creates a token; admins
	// list and revoke anyone's, auditors list anyone's; the dashboard acts
	// on the caller's own.
	{route: "POST /api/v2/users/{user}/tokens", path: "/api/v2/users/{user}/tokens", want: authed(201, 404, 403, 403),
		body: func(c string) any { return map[string]string{"name": "t" + c, "lifetime": "1d"} }},
	{route: "GET /api/v2/users/{user}/tokens", path: "/api/v2/users/{user}/tokens", want: authed(200, 404, 200, 200)},
	{route: "DELETE /api/v2/users/{user}/tokens/{name}", path: "/api/v2/users/{user}/tokens/{apitoken}", want: authed(204, 404, 204, 403)},
	{route: "GET /api/v2/tokens", path: "/api/v2/tokens", want: authed(403, 403, 200, 200)},
	{route: "GET /account/tokens", path: "/account/tokens", cookie: dashCookie, want: page(200, 200, 200, 200)},
	// The audit log's pages (issue 20).
	{route: "GET /audit", path: "/audit", cookie: dashCookie, want: page(403, 403, 200, 200)},
	{route: "GET /account/activity", path: "/account/activity", cookie: dashCookie, want: page(200, 200, 200, 200)},
	{route: "POST /account/tokens/new", path: "/account/tokens/new", cookie: dashCookie, want: page(200, 200, 200, 200),
		body: func(c string) any { return url.Values{"name": {"dash" + c}, "lifetime": {"1d"}} }},
	{route: "GET /account/tokens/{name}/revoke", path: "/account/tokens/{apitoken}/revoke", cookie: dashCookie, want: page(200, 404, 404, 404)},
	{route: "POST /account/tokens/{name}/revoke", path: "/account/tokens/{apitoken}/revoke", cookie: dashCookie, want: page(303, 404, 404, 404)},
	// --- end of issue 19 part 2.
	// issue 19 part 4 (workspaces): delete and rotate, the owner or an
	// admin; {cellws} is a workspace of alice's created for the cell.
	{route: "DELETE /api/v2/workspaces/{workspace}", path: "/api/v2/workspaces/{cellws}", want: authed(204, 404, 204)},
	{route: "POST /api/v2/workspaces/{workspace}/agent-token", path: "/api/v2/workspaces/{cellws}/agent-token", want: authed(201, 404, 201),
		body: func(string) any { return map[string]string{"lifetime": "30d"} }},
	{route: "POST /workspaces/{workspace}/agent-token", path: "/workspaces/{cellws}/agent-token", cookie: dashCookie, want: page(200, 404, 200),
		body: func(string) any { return url.Values{"lifetime": {""}} }},
	{route: "GET /workspaces/{workspace}/delete", path: "/workspaces/{cellws}/delete", cookie: dashCookie, want: page(200, 404, 200)},
	{route: "POST /workspaces/{workspace}/delete", path: "/workspaces/{cellws}/delete", cookie: dashCookie, want: page(303, 404, 303)},
}

// readToken replaces the read-scoped token's answer in want.
func readToken(want [nPrincipals]int, status int) [nPrincipals]int {
	want[pReadToken] = status
	return want
}

// registeredRoutes reads the route patterns in the package's sources: every
// string literal of the form "METHOD /path" (mux.HandleFunc, mux.Handle and
// helpers that wrap them), so a route added without a matrix row fails
// TestAuthorizationMatrixCoversEveryRoute.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"((?:GET|HEAD|POST|PUT|PATCH|DELETE) /[^"]*)"`)
	var routes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			routes = append(routes, m[1])
		}
	}
	return append(routes, proto.ConnectPath) // registered by constant
}

func TestAuthorizationMatrixCoversEveryRoute(t *testing.T) {
	rows := map[string]bool{}
	for _, r := range authzMatrix {
		rows[r.route] = true
	}
	routes := registeredRoutes(t)
	if len(routes) < 15 {
		t.Fatalf("found only %d routes in the sources; the scan is broken", len(routes))
	}
	for _, r := range routes {
		if !rows[r] {
			t.Errorf("route %q has no row in authzMatrix", r)
		}
	}
}

func TestAuthorizationMatrix(t *testing.T) {
	var offset atomic.Int64 // added to the clock, to issue an already expired session
	agents := &echoAgents{connected: map[string]bool{}}
	ts := newTestServerDialer(t, agents, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		c.Limits.MaxSecrets = 1000 // each cell on a {secret} route gets its own secret
	})
	t.Cleanup(agents.wg.Wait)
	ctx := context.Background()
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users", p.admin, map[string]any{
		"username": "carol", "email": "carol@example.com", "password": testPassword}), 201)
	var aliceWS, bobWS CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &aliceWS)
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "bob"}), 201).json(t, &bobWS)
	agents.connect(aliceWS.ID)

	// The principals of issue 19, each checked to have worked before it
	// was made invalid, so a 401 below means the invalidation.
	ts.createUserAs(p.admin, "dave", "auditor")
	samID := ts.createUserAs(p.admin, "sam", "member")
	ts.want(ts.do("GET", "/api/v2/users/me", ts.login("sam", testPassword), nil), 200)
	ts.want(ts.do("PUT", "/api/v2/users/sam/status/suspend", p.admin, nil), 200)
	ts.createUserAs(p.admin, "dan", "member")
	deleted := ts.login("dan", testPassword)
	ts.want(ts.do("GET", "/api/v2/users/me", deleted, nil), 200)
	ts.want(ts.do("DELETE", "/api/v2/users/dan", p.admin, nil), 204)
	expiredAPI := ts.storeAPIToken(p.aliceID, "expired", store.ScopeWrite, time.Now().Add(-time.Minute))
	ts.want(ts.do("GET", "/api/v2/users/me", ts.storeAPIToken(p.aliceID, "unexpired", store.ScopeWrite, time.Now().Add(time.Hour)), nil), 200)
	readTok := ts.storeAPIToken(p.aliceID, "read", store.ScopeRead, time.Now().Add(24*time.Hour))
	if got := ts.wsStatus(proto.ConnectPath, aliceWS.AgentToken); got != 101 {
		t.Fatalf("alice's agent token before rotation: %d", got)
	}
	if _, err := ts.store.RotateAgentToken(ctx, aliceWS.ID, hashToken("the-new-agent-token-0123456789abcdefghijkl"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	victimHash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	// token issues a fresh credential of kind p for one cell.
	lifetime := DefaultConfig().SessionLifetime
	token := func(principal int) string {
		switch principal {
		case pOwner:
			return ts.login("alice", testPassword)
		case pOther:
			return ts.login("bob", testPassword)
		case pAdmin:
			return ts.login("root", testPassword)
		case pGarbage:
			return "garbage-0123456789abcdefghijklmnopqrstuvwxyzABC"
		case pLoggedOut:
			tok := ts.login("alice", testPassword)
			ts.want(ts.do("POST", "/api/v2/users/logout", tok, nil), 204)
			return tok
		case pExpired:
			offset.Store(int64(-lifetime - time.Minute))
			tok := ts.login("alice", testPassword)
			offset.Store(0)
			return tok
		case pAgent:
			return bobWS.AgentToken
		case pAuditor:
			return ts.login("dave", testPassword)
		case pSuspended: // a session row of a suspended user: only the suspension refuses it
			tok, hash, err := newToken()
			if err != nil {
				t.Fatal(err)
			}
			if err := ts.store.CreateSession(ctx, store.Session{TokenHash: hash, UserID: samID,
				CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			return tok
		case pDeleted:
			return deleted
		case pExpiredAPI:
			return expiredAPI
		case pReadToken:
			return readTok
		case pRotatedAgent:
			return aliceWS.AgentToken
		}
		return ""
	}
	// A logged-in alice checks the expired token really was valid once:
	// within its lifetime it works.
	offset.Store(int64(-lifetime - time.Minute))
	early := ts.login("alice", testPassword)
	ts.want(ts.do("GET", "/api/v2/users/me", early, nil), 200)
	offset.Store(0)
	ts.want(ts.do("GET", "/api/v2/users/me", early, nil), 401)

	got := make([][nPrincipals]int, len(authzMatrix))
	for i, row := range authzMatrix {
		for pr := range nPrincipals {
			cell := fmt.Sprintf("%d-%d", i, pr)
			victim := "v" + strings.ReplaceAll(cell, "-", "x")
			cellWS := ""
			if strings.Contains(row.path, "{cellws}") { // issue 19 part 4
				var c CreatedWorkspaceResponse
				ts.want(ts.do("POST", "/api/v2/workspaces", ts.login("root", testPassword), map[string]any{"name": "cell" + cell, "owner": "alice"}), 201).json(t, &c)
				cellWS = c.ID
			}
			path := strings.NewReplacer("{user}", "alice", "{ws}", aliceWS.ID, "{secret}", "cell"+cell, "{victim}", victim,
				"{apitoken}", "cell"+cell, "{cellws}", cellWS).Replace(row.path)
			if strings.Contains(row.path, "{secret}") {
				// A fresh session: rows that change alice's password end
				// her other sessions.
				ts.want(ts.do("POST", "/api/v2/users/me/secrets", ts.login("alice", testPassword), map[string]string{"name": "cell" + cell, "value": canary}), 201)
			}
			if strings.Contains(row.path, "{victim}") {
				if err := ts.store.CreateUser(ctx, store.User{ID: uuid.NewString(), Username: victim, Email: victim + "@example.com",
					PasswordHash: victimHash, Role: store.RoleMember, CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Contains(row.path, "{apitoken}") { // issue 19 part 2
				ts.want(ts.do("POST", "/api/v2/users/me/tokens", ts.login("alice", testPassword), map[string]string{"name": "cell" + cell}), 201)
			}
			var body any
			if row.body != nil {
				body = row.body(strings.ReplaceAll(cell, "-", "x"))
			}
			tok := token(pr)
			if row.ws {
				got[i][pr] = ts.wsStatus(path, tok)
			} else {
				got[i][pr] = ts.authzStatus(strings.Fields(row.route)[0], path, tok, row.cookie, body)
			}
		}
	}
	var report strings.Builder
	for i, row := range authzMatrix {
		want := row.want
		if want[pReadToken] == ownerIfRead {
			want[pReadToken] = http.StatusForbidden
			if m := strings.Fields(row.route)[0]; m == http.MethodGet || m == http.MethodHead {
				want[pReadToken] = want[pOwner]
			}
		}
		for pr := range nPrincipals {
			if got[i][pr] != want[pr] {
				fmt.Fprintf(&report, "\n  %-45s %-19s got %d, want %d", row.path, principalNames[pr], got[i][pr], want[pr])
			}
		}
	}
	if report.Len() > 0 {
		t.Fatalf("authorization matrix mismatches:%s", report.String())
	}
}

// authzStatus sends one matrix request without following redirects and
// returns its status; the body joins those scanned for canaries.
func (ts *testServer) authzStatus(method, path, tok, cookie string, body any) int {
	ts.t.Helper()
	var (
		rd io.Reader
		ct string
	)
	switch b := body.(type) {
	case nil:
	case url.Values: // a dashboard form
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, ts.URL()+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	switch {
	case tok == "":
	case cookie != "":
		req.AddCookie(&http.Cookie{Name: cookie, Value: tok})
	default:
		req.Header.Set(HeaderSessionToken, tok)
	}
	noRedirect := &http.Client{Transport: ts.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	ts.bodiesMu.Lock()
	ts.bodies.Write(b)
	ts.bodiesMu.Unlock()
	if loc, err := res.Location(); err == nil && res.StatusCode == http.StatusSeeOther && loc.Path == "/login" {
		return seeLogin
	}
	return res.StatusCode
}

// wsStatus opens a websocket on path with tok (as the session token, or
// as the agent token on the agents' endpoint) and returns the status of
// the answer: 101 when the upgrade succeeded.
func (ts *testServer) wsStatus(path, tok string) int {
	ts.t.Helper()
	hdr := http.Header{}
	if path == proto.ConnectPath {
		hdr.Set(proto.HeaderVersion, proto.Version)
		if tok != "" {
			hdr.Set(proto.HeaderToken, tok)
		}
	} else if tok != "" {
		hdr.Set(HeaderSessionToken, tok)
	}
	c, res, err := websocket.Dial(ts.t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+path,
		&websocket.DialOptions{HTTPHeader: hdr, HTTPClient: ts.client})
	if err == nil {
		_ = c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if res == nil {
		ts.t.Fatalf("websocket %s: %v", path, err)
	}
	return res.StatusCode
}
