package controlplane

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// agentTokenOnPage is the token the rotate page shows, "" if none.
func agentTokenOnPage(page string) string {
	m := regexp.MustCompile(`<code id="agent-token" class="token">([^<]*)</code>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestDashWorkspaceActions: the owner and an admin see the actions and the
// token's expiry; rotating shows the new token once (not cached, not in
// a redirect), bad lifetimes change nothing; deleting asks first; another
// member gets 404 for all of it; a cross-site POST is refused.
func TestDashWorkspaceActions(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AgentTokenLifetime = 72 * time.Hour })
	p := ts.setup()
	dev := createWorkspace(t, ts, p.admin, "dev", "alice")
	ctx := context.Background()
	alice, bob, admin := ts.browser(), ts.browser(), ts.browser()
	alice.login("alice")
	bob.login("bob")
	admin.login("root")

	page := wantPage(t, alice.get("/workspaces/"+dev.ID), 200)
	for _, want := range []string{`id="rotate-form"`, `id="delete-link"`, `id="token-expiry"`, "expires "} {
		if !strings.Contains(page, want) {
			t.Fatalf("the owner's workspace page lacks %q", want)
		}
	}
	if !strings.Contains(wantPage(t, admin.get("/workspaces/"+dev.ID), 200), `id="rotate-form"`) {
		t.Fatal("an admin does not see the actions")
	}

	// Another member: 404 everywhere, nothing changes.
	wantPage(t, bob.get("/workspaces/"+dev.ID+"/delete"), 404)
	wantPage(t, bob.post("/workspaces/"+dev.ID+"/agent-token", nil), 404)
	wantPage(t, bob.post("/workspaces/"+dev.ID+"/delete", nil), 404)
	// Cross-site: refused.
	wantPage(t, alice.post("/workspaces/"+dev.ID+"/agent-token", nil, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"), 403)
	wantPage(t, alice.post("/workspaces/"+dev.ID+"/delete", nil, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"), 403)
	unchanged := func(what string) {
		t.Helper()
		ws, err := ts.store.WorkspaceByID(ctx, dev.ID)
		sum := sha256.Sum256([]byte(dev.AgentToken))
		if err != nil || string(ws.AgentTokenHash) != string(sum[:]) {
			t.Fatalf("%s: the workspace or its token changed (%v)", what, err)
		}
	}
	unchanged("refused requests")

	// Bad lifetimes: 400 with the reason, nothing rotated.
	for _, lt := range []string{"30", "abc", "-1d", "1s", strings.Repeat("9", 40) + "d", "<script>"} {
		page := wantPage(t, alice.post("/workspaces/"+dev.ID+"/agent-token", url.Values{"lifetime": {lt}}), 400)
		if !strings.Contains(page, "nothing was rotated") || strings.Contains(page, "<script>") {
			t.Fatalf("lifetime %q: %s", lt, page)
		}
		unchanged("lifetime " + lt)
	}

	// Rotate: the token once, not cached.
	r := alice.post("/workspaces/"+dev.ID+"/agent-token", url.Values{"lifetime": {"30d"}})
	page = wantPage(t, r, 200)
	tok := agentTokenOnPage(page)
	if len(tok) < 43 || tok == dev.AgentToken || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate page: token %d chars, Cache-Control %q", len(tok), r.header.Get("Cache-Control"))
	}
	if !strings.Contains(page, "It expires") {
		t.Error("the rotate page does not say when the token expires")
	}
	if code, _ := agentConnectStatus(t, ts, dev.AgentToken); code != 401 {
		t.Fatalf("the old token still connects (%d)", code)
	}
	if code, _ := agentConnectStatus(t, ts, tok); code == 401 || code == 403 {
		t.Fatalf("the new token is refused (%d)", code)
	}
	// The workspace page never shows it again.
	if page := wantPage(t, alice.get("/workspaces/"+dev.ID), 200); strings.Contains(page, tok) {
		t.Fatal("the workspace page shows the token")
	}

	// An expired token is shown as such.
	sum := sha256.Sum256([]byte(tok))
	if _, err := ts.store.RotateAgentToken(ctx, dev.ID, sum[:], time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if page := wantPage(t, alice.get("/workspaces/"+dev.ID), 200); !strings.Contains(page, "<strong>expired</strong>") {
		t.Fatal("the workspace page does not say the token expired")
	}

	// Delete: a confirmation first, then gone.
	page = wantPage(t, alice.get("/workspaces/"+dev.ID+"/delete"), 200)
	if !strings.Contains(page, `action="/workspaces/`+dev.ID+`/delete"`) {
		t.Fatalf("no confirmation form: %s", page)
	}
	if _, err := ts.store.WorkspaceByID(ctx, dev.ID); err != nil {
		t.Fatal("the confirmation page deleted the workspace")
	}
	r = alice.post("/workspaces/"+dev.ID+"/delete", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/workspaces" {
		t.Fatalf("delete: %d %q", r.status, r.header.Get("Location"))
	}
	wantPage(t, alice.get("/workspaces/"+dev.ID), 404)
	if code, _ := agentConnectStatus(t, ts, tok); code != 401 {
		t.Fatalf("the token of a deleted workspace connects (%d)", code)
	}
	if strings.Contains(ts.logs.String(), tok) || strings.Contains(ts.logs.String(), dev.AgentToken) {
		t.Fatal("an agent token is in the server log")
	}
}
