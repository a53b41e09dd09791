package controlplane

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestRequiredSecretsChromium: in a real browser at 360 px, the owner sees
// on the workspace page that a required secret is missing, follows its
// "Create it" link to the new-secret form prefilled with the env name,
// name and description, scopes the secret with the workspaces field (a
// bad glob first: refused beside the field), and finds it listed with its
// scope and the requirement met.
func TestRequiredSecretsChromium(t *testing.T) {
	chromium := chromiumPath(t)
	ts := newTestServer(t)
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"allow_missing_secrets": true, "template": map[string]any{"secrets": []map[string]any{
			{"env": "NPM_TOKEN", "description": "Token for the private npm registry", "docs_url": "https://wiki.example.com/npm", "required": true},
		}}}), 201)

	ctx, _, shot, _ := browser360(t, chromium)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	value := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("value of %s: %v", sel, err)
		}
		return s
	}

	signIn(t, ctx, ts.URL(), "alice")
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL()+"/workspaces/dev"), chromedp.WaitVisible(chromedp.CSS("#required-secrets"))); err != nil {
		t.Fatalf("workspace page: %v", err)
	}
	shot("01-workspace-missing")
	if row := text("#required-secrets tbody"); !strings.Contains(row, "NPM_TOKEN") || !strings.Contains(row, "missing") ||
		!strings.Contains(row, "Token for the private npm registry") {
		t.Fatalf("requirement row = %q", row)
	}
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#required-secrets a.create-secret"), "href"))
	if err != nil || !href.Exists {
		t.Fatalf("no Create it link: %v", err)
	}
	if u, _ := url.Parse(href.Value); u.Path != "/account/secrets/new" || u.Query().Get("env_name") != "NPM_TOKEN" {
		t.Fatalf("Create it links to %q", href.Value)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#required-secrets a.create-secret")), chromedp.WaitVisible(chromedp.CSS("#workspaces"))); err != nil {
		t.Fatalf("follow Create it: %v", err)
	}
	if got := value("#env_name"); got != "NPM_TOKEN" {
		t.Fatalf("env_name prefilled with %q", got)
	}
	if got := value("#name"); got != "npm-token" {
		t.Fatalf("name prefilled with %q", got)
	}
	if got := value("#description"); got != "Token for the private npm registry" {
		t.Fatalf("description prefilled with %q", got)
	}
	shot("02-form-prefilled")

	// A bad glob: refused beside the field, every field but the value kept.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#value"), canary), chromedp.SendKeys(chromedp.CSS("#workspaces"), "web-["),
		chromedp.Click(chromedp.CSS(`form.card button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#workspaces-error"))); err != nil {
		t.Fatalf("submit a bad glob: %v", err)
	}
	if msg := text("#workspaces-error"); !strings.Contains(msg, "glob") {
		t.Fatalf("the workspaces error says %q", msg)
	}
	if got := value("#workspaces"); got != "web-[" || value("#env_name") != "NPM_TOKEN" {
		t.Fatalf("the refused form lost its fields: workspaces %q", got)
	}
	shot("03-bad-glob")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.getElementById("workspaces").value = "", true)`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#workspaces"), "dev, web-*"),
		chromedp.SendKeys(chromedp.CSS("#value"), canary), chromedp.Click(chromedp.CSS(`form.card button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#secrets"))); err != nil {
		t.Fatalf("create the secret: %v", err)
	}
	shot("04-secrets-list")
	if cell := text("#secret-npm-token td.scope"); !strings.Contains(cell, "dev") || !strings.Contains(cell, "web-*") {
		t.Fatalf("the list shows the scope as %q", cell)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL()+"/workspaces/dev"), chromedp.WaitVisible(chromedp.CSS("#required-secrets"))); err != nil {
		t.Fatal(err)
	}
	if row := text("#required-secrets tbody"); !strings.Contains(row, "met") {
		t.Fatalf("after creating it the requirement reads %q", row)
	}
	shot("05-workspace-met")
	s, err := ts.store.GetSecret(t.Context(), p.aliceID, "npm-token")
	if err != nil || strings.Join(s.Workspaces, ",") != "dev,web-*" || s.EnvName != "NPM_TOKEN" {
		t.Fatalf("stored %v, %v", s, err)
	}
}
