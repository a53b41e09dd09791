package controlplane

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestDashLoginCookieAndLogout(t *testing.T) {
	ts := newTestServer(t)
	ts.setup()
	b := ts.browser()

	// Not logged in: every page sends to the login page.
	for _, p := range []string{"/", "/account/secrets", "/account/secrets/new", "/workspaces"} {
		r := b.get(p)
		if r.status != http.StatusSeeOther {
			t.Fatalf("GET %s: %d", p, r.status)
		}
		checkHeaders(t, r.header)
		if loc := r.header.Get("Location"); loc != "/login?next="+url.QueryEscape(p) && loc != "/account/secrets" {
			t.Fatalf("GET %s → %s", p, loc)
		}
	}
	page := wantPage(t, b.get("/login"), 200)
	for _, want := range []string{`<label for="login">`, `<label for="password">`, `type="password"`} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %s", want)
		}
	}

	// A wrong password: the REST API's message, the name typed kept.
	r := b.post("/login", url.Values{"login": {"alice@example.com"}, "password": {"wrong password"}})
	page = wantPage(t, r, http.StatusUnauthorized)
	if !strings.Contains(page, "incorrect username, e-mail or password") || inputValue(page, "login") != "alice@example.com" {
		t.Fatalf("refused login page: %s", page)
	}
	if strings.Contains(page, "wrong password") {
		t.Fatal("the password typed came back in the page")
	}
	wantPage(t, b.post("/login", url.Values{"login": {"alice"}}), http.StatusBadRequest)

	// By e-mail, then by username.
	r = b.post("/login", url.Values{"login": {"alice@example.com"}, "password": {testPassword}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("login by e-mail: %d %s", r.status, r.body)
	}
	c := cookieNamed(t, r, dashCookie)
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge <= 0 || len(c.Value) < 43 {
		t.Fatalf("session cookie %+v", c)
	}
	page = wantPage(t, b.get("/account/secrets"), 200)
	if !strings.Contains(page, `<span class="who">alice</span>`) {
		t.Fatalf("secrets page does not name alice: %s", page)
	}
	// The logged-in login page goes to the secrets.
	if r := b.get("/login"); r.status != http.StatusSeeOther {
		t.Fatalf("GET /login logged in: %d", r.status)
	}

	// The cookie does not authenticate the REST API.
	req, _ := http.NewRequest("GET", ts.URL()+"/api/v2/users/me/secrets", nil)
	req.AddCookie(&http.Cookie{Name: dashCookie, Value: c.Value})
	if res, err := ts.client.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("REST with the dashboard cookie: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}

	// Logout ends the session on the server and deletes the cookie.
	r = b.post("/logout", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %s", r.status, r.header.Get("Location"))
	}
	if gone := cookieNamed(t, r, dashCookie); gone.MaxAge >= 0 || gone.Value != "" {
		t.Fatalf("logout cookie %+v", gone)
	}
	if _, err := ts.api.withSession(context.Background(), c.Value); err == nil {
		t.Fatal("the session survived logout")
	}
	if !strings.Contains(wantPage(t, b.get("/login"), 200), "You are logged out.") {
		t.Error("no logout notice")
	}
	old := ts.browser()
	u, _ := url.Parse(ts.URL())
	old.c.Jar.SetCookies(u, []*http.Cookie{{Name: dashCookie, Value: c.Value}})
	if r := old.get("/account/secrets"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Faccount%2Fsecrets" {
		t.Fatalf("the old cookie still opens pages: %d", r.status)
	}
}

func TestDashCookieSecureUnderTLS(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t, t.TempDir())
	ts := newTestServer(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	ts.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	ts.setup()
	b := ts.browser()
	r := b.post("/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	c := cookieNamed(t, r, dashCookie)
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie over TLS %+v", c)
	}
	wantPage(t, b.get("/account/secrets"), 200)
	r = b.post("/logout", nil)
	if c := cookieNamed(t, r, noticeCookie); !c.Secure || !c.HttpOnly {
		t.Fatalf("notice cookie over TLS %+v", c)
	}
}

// Every state-changing request from another origin is refused and changes
// nothing; the same requests from the page's origin work.
func TestDashCrossOriginRefused(t *testing.T) {
	ts := newTestServer(t)
	ts.setup()
	b := ts.browser()
	b.login("alice")
	wantStatus(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "kept", "value": canary}, nil), http.StatusSeeOther)

	cross := [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Sec-Fetch-Site", "", "Origin", "https://evil.example"},
	}
	for _, h := range cross {
		page := wantPage(t, b.postMultipart("/account/secrets/new", map[string]string{"name": "forged", "value": "x"}, nil, h...), http.StatusForbidden)
		if !strings.Contains(page, "came from another site") {
			t.Errorf("%v: refusal page %s", h, page)
		}
		wantPage(t, b.postMultipart("/account/secrets/kept/edit", map[string]string{"description": "forged"}, nil, h...), http.StatusForbidden)
		wantPage(t, b.post("/account/secrets/kept/delete", nil, h...), http.StatusForbidden)
		wantPage(t, b.post("/logout", nil, h...), http.StatusForbidden)
		wantPage(t, ts.browser().post("/login", url.Values{"login": {"alice"}, "password": {testPassword}}, h...), http.StatusForbidden)
	}
	ss, err := ts.store.ListSecrets(context.Background(), mustUser(t, ts, "alice"))
	if err != nil || len(ss) != 1 || ss[0].Name != "kept" || ss[0].Description != "" {
		t.Fatalf("secrets after forged requests: %v %v", ss, err)
	}
	// Still logged in.
	wantPage(t, b.get("/account/secrets"), 200)
}

func wantStatus(t *testing.T, r resp, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

func mustUser(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	u, err := ts.store.UserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestDashStaticAndHeaders(t *testing.T) {
	ts := newTestServer(t)
	b := ts.browser()
	r := wantStatus(t, b.get("/static/dash.css"), 200)
	checkHeaders(t, r.header)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") || !strings.Contains(string(r.body), "@media") {
		t.Fatalf("css: %s", ct)
	}
	page := wantPage(t, b.get("/login"), 200)
	if strings.Contains(page, "<script") || strings.Contains(page, " style=") {
		t.Fatal("a page carries inline script or style")
	}
}

// A person's pages are theirs: another user's workspace or secret is a
// 404, and a POST to another user's secret changes nothing.
func TestDashOtherUsersPages404(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.BcryptCost = bcrypt.MinCost })
	p := ts.setup()
	var bobWS WorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "bobs", "owner": "bob"}), 201).json(t, &bobWS)
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "alices", "owner": "alice"}), 201)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.bob, secretBody("bob-only", "env_name", "BOB_ONLY")), 201)

	alice := ts.browser()
	alice.login("alice")
	for _, path := range []string{"/workspaces/" + bobWS.ID, "/workspaces/bob%2Fbobs", "/workspaces/bobs",
		"/account/secrets/bob-only/edit", "/account/secrets/bob-only/delete"} {
		page := wantPage(t, alice.get(path), http.StatusNotFound)
		if strings.Contains(page, "BOB_ONLY") {
			t.Errorf("%s shows bob's data", path)
		}
	}
	wantPage(t, alice.post("/account/secrets/bob-only/delete", nil), http.StatusNotFound)
	wantPage(t, alice.postMultipart("/account/secrets/bob-only/edit", map[string]string{"description": "x"}, nil), http.StatusNotFound)
	if _, err := ts.store.GetSecret(context.Background(), p.bobID, "bob-only"); err != nil {
		t.Fatalf("bob's secret after alice's POSTs: %v", err)
	}
	list := wantPage(t, alice.get("/workspaces"), 200)
	if !strings.Contains(list, ">alices<") || strings.Contains(list, ">bobs<") {
		t.Fatalf("alice's workspace list: %s", list)
	}
	// An admin sees every workspace, with its owner, and can open bob's.
	admin := ts.browser()
	admin.login("root")
	list = wantPage(t, admin.get("/workspaces"), 200)
	if !strings.Contains(list, ">alices<") || !strings.Contains(list, ">bobs<") || !strings.Contains(list, "<td data-label=\"Owner\">bob</td>") {
		t.Fatalf("admin's workspace list: %s", list)
	}
	page := wantPage(t, admin.get("/workspaces/"+bobWS.ID), 200)
	if !strings.Contains(page, "Workspace bobs") {
		t.Fatalf("admin's view of bob's workspace: %s", page)
	}
}

// The dashboard's login goes through the same throttle as the REST login:
// after the account's failures, even the right password gets a readable
// 429 page saying when to try again, with Retry-After.
func TestDashLoginThrottled(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.LoginThrottle.AccountFailures = 3 })
	ts.setup()
	b := ts.browser()
	for range 3 {
		wantPage(t, b.post("/login", url.Values{"login": {"alice"}, "password": {"wrong password"}}), http.StatusUnauthorized)
	}
	r := b.post("/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	page := wantPage(t, r, http.StatusTooManyRequests)
	ra := r.header.Get("Retry-After")
	if ra == "" || !strings.Contains(page, "too many failed logins; try again later (in "+ra+" seconds).") {
		t.Fatalf("throttled login: Retry-After %q, page %s", ra, page)
	}
	if inputValue(page, "login") != "alice" {
		t.Error("the name typed was lost")
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == dashCookie && c.Value != "" {
			t.Fatal("a throttled login got a session")
		}
	}
}

// TestDashSessionEndedReturnsToThePage: a page asked for with a session
// that has ended goes to the login page, which says why and, once signed
// in, leads back to that page; a "next" that leaves the site is ignored.
func TestDashSessionEndedReturnsToThePage(t *testing.T) {
	ts := newTestServer(t)
	ts.setup()
	ts.want(ts.do("POST", "/api/v2/workspaces", ts.login("root", testPassword), map[string]any{"name": "dev", "owner": "alice"}), 201)
	b := ts.browser()
	b.login("alice")
	// The session ends elsewhere (a sign-out on another tab).
	wantPage(t, b.get("/account/secrets"), 200)
	if r := b.post("/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	b.login("alice")
	u, _ := url.Parse(ts.URL())
	stale := b.c.Jar.Cookies(u)
	if r := b.post("/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	b.c.Jar.SetCookies(u, stale) // the old tab still holds the ended session

	r := b.get("/workspaces/dev")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Fworkspaces%2Fdev" {
		t.Fatalf("ended session: %d to %q", r.status, r.header.Get("Location"))
	}
	page := wantPage(t, b.get(r.header.Get("Location")), 200)
	if !strings.Contains(page, "Your session has ended") || !strings.Contains(page, `name="next" value="/workspaces/dev"`) {
		t.Fatalf("the login page does not say why or where it leads:\n%s", page)
	}
	r = b.post("/login", url.Values{"login": {"alice"}, "password": {testPassword}, "next": {"/workspaces/dev"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/workspaces/dev" {
		t.Fatalf("login with next: %d to %q", r.status, r.header.Get("Location"))
	}
	r = b.post("/login", url.Values{"login": {"alice"}, "password": {testPassword}, "next": {"//evil.example/"}})
	if r.header.Get("Location") != "/account/secrets" {
		t.Fatalf("login with an off-site next went to %q", r.header.Get("Location"))
	}
}

// TestUnknownPagesCarryTheHeaders: the mux's own answers outside the API
// (a mistyped URL, a POST-only URL opened again) carry the dashboard's
// security headers too.
func TestUnknownPagesCarryTheHeaders(t *testing.T) {
	ts := newTestServer(t)
	ts.setup()
	b := ts.browser()
	b.login("alice")
	for _, p := range []string{"/nonexistent", "/logout"} { // 404; 405 for GET
		r := b.get(p)
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Fatalf("GET %s: %d", p, r.status)
		}
		checkHeaders(t, r.header)
	}
}
