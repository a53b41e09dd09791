package controlplane

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/courierhq/courier/controlplane/identity"
)

// shownToken is the token on the page that answers a create, "" if none.
func shownToken(page string) string {
	m := regexp.MustCompile(`<code id="token">([^<]*)</code>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// The tokens page: create (the token shown once, on the answer only),
// refusals beside the field, revoke after a confirmation; the list never
// shows a token.
func TestDashTokens(t *testing.T) {
	ts, _ := newTokenTestServer(t)
	ts.setup()
	b := ts.browser()
	b.login("alice")

	page := wantPage(t, b.get("/account/tokens"), 200)
	for _, want := range []string{`href="/account/tokens" aria-current="page"`, "You have no API tokens.", `action="/account/tokens/new"`,
		`<input id="lifetime" name="lifetime" value="30d"`, `id="scope-write" name="scope" value="write" checked`, "at most 90d"} {
		if !strings.Contains(page, want) {
			t.Errorf("empty tokens page lacks %s", want)
		}
	}

	// Create: the answer shows the token once.
	page = wantPage(t, b.post("/account/tokens/new", url.Values{"name": {"ci"}, "lifetime": {"12h"}, "scope": {"read"}}), 200)
	tok := shownToken(page)
	if !identity.LooksLikeToken(tok) || !strings.Contains(page, "will not be shown again") {
		t.Fatalf("create page: %s", page)
	}
	// The same form sent again at once (a double click): the answer says
	// the token was just made and how to get one to see, never the token.
	page = wantPage(t, b.post("/account/tokens/new", url.Values{"name": {"ci"}, "lifetime": {"12h"}, "scope": {"read"}}), 409)
	if !strings.Contains(page, "created a moment ago by this same form") || strings.Contains(page, tok) || identity.TokenPattern.MatchString(page) {
		t.Fatalf("double submit page: %s", page)
	}
	// The token works (read scope) and the page that lists it never shows it.
	ts.want(ts.do("GET", "/api/v2/users/me/secrets", tok, nil), 200)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", tok, map[string]string{"name": "x", "value": canary}), 403)
	page = wantPage(t, b.get("/account/tokens"), 200)
	if strings.Contains(page, tok) || identity.TokenPattern.MatchString(page) {
		t.Fatal("the tokens list shows a token")
	}
	if !strings.Contains(page, `<tr id="token-ci">`) || !strings.Contains(page, `<td data-label="Scope">read</td>`) {
		t.Fatalf("list: %s", page)
	}

	// Refusals: beside the field, what was typed kept, nothing created.
	for _, c := range []struct {
		form   url.Values
		status int
		field  string
		want   string
	}{
		{url.Values{"name": {"ci"}, "lifetime": {"1d"}}, 409, "name", "taken"},
		{url.Values{"name": {"a/b"}, "lifetime": {"1d"}}, 400, "name", "'/'"},
		{url.Values{"name": {"long"}, "lifetime": {"91d"}}, 400, "lifetime", "maximum of 90d"},
		{url.Values{"name": {"x"}, "lifetime": {"soon"}}, 400, "lifetime", "days"},
		{url.Values{"name": {"x"}, "scope": {"root"}}, 400, "scope", "read"},
	} {
		page = wantPage(t, b.post("/account/tokens/new", c.form), c.status)
		if !strings.Contains(fieldError(page, c.field), c.want) || inputValue(page, "name") != c.form.Get("name") ||
			shownToken(page) != "" || !strings.Contains(page, "No token was created") {
			t.Errorf("%v: field %s error %q; page %s", c.form, c.field, fieldError(page, c.field), page)
		}
	}
	if n := strings.Count(wantPage(t, b.get("/account/tokens"), 200), `<tr id="token-`); n != 1 {
		t.Fatalf("%d tokens listed after refusals, want 1", n)
	}

	// A form from another site is refused.
	wantPage(t, b.post("/account/tokens/new", url.Values{"name": {"csrf"}}, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"), http.StatusForbidden)
	// An API token does not open the dashboard.
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200)
	other := ts.browser()
	req, _ := http.NewRequest("GET", ts.URL()+"/account/tokens", nil)
	req.AddCookie(&http.Cookie{Name: dashCookie, Value: tok})
	if r := other.send(req); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Faccount%2Ftokens" {
		t.Fatalf("an API token as the dashboard cookie: %d %s", r.status, r.header.Get("Location"))
	}

	// Revoke: asked first, then gone at once.
	page = wantPage(t, b.get("/account/tokens/ci/revoke"), 200)
	if !strings.Contains(page, `action="/account/tokens/ci/revoke"`) || !strings.Contains(page, "stops working at once") {
		t.Fatalf("confirmation: %s", page)
	}
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200) // asking revoked nothing
	r := b.post("/account/tokens/ci/revoke", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/account/tokens" {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 401)
	page = wantPage(t, b.get("/account/tokens"), 200)
	if !strings.Contains(page, "Revoked token &#34;ci&#34;") || strings.Contains(page, `<tr id="token-ci">`) {
		t.Fatalf("after revoke: %s", page)
	}
	wantPage(t, b.get("/account/tokens/ci/revoke"), 404)
	wantPage(t, b.post("/account/tokens/ci/revoke", nil), 404)

	// Bob cannot see or revoke alice's token.
	ts.createToken(ts.login("alice", testPassword), map[string]any{"name": "alices"})
	bob := ts.browser()
	bob.login("bob")
	wantPage(t, bob.get("/account/tokens/alices/revoke"), 404)
	wantPage(t, bob.post("/account/tokens/alices/revoke", nil), 404)
	if strings.Contains(wantPage(t, bob.get("/account/tokens"), 200), "alices") {
		t.Fatal("bob sees alice's token")
	}
}
