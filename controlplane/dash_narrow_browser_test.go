package controlplane

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestLongNamesFitAt360Chromium: names at their longest with nothing to
// break them at (64 bytes for a secret, its env name and a path of long
// parts) keep every page of their owner and of an admin within 360 px:
// the list, the edit form, the account's activity, the audit log and an
// admin's view of the user's secrets.
func TestLongNamesFitAt360Chromium(t *testing.T) {
	chromium := chromiumPath(t)
	ts := newTestServer(t)
	p := ts.setup()
	long := strings.Repeat("x", 64)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{"name": long, "value": canary,
		"env_name": "E" + strings.Repeat("N", 120), "file_path": "~/" + strings.Repeat("p", 200) + "/" + strings.Repeat("q", 200)}), 201)

	ctx, _, shot, _ := browser360(t, chromium)
	visit := func(name, path string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL()+path), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		shot(name)
	}
	signIn(t, ctx, ts.URL(), "alice")
	visit("01-secrets", "/account/secrets")
	visit("02-edit", "/account/secrets/"+long+"/edit")
	visit("03-activity", "/account/activity")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.CSS("#login"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	signIn(t, ctx, ts.URL(), "root")
	visit("04-audit", "/audit")
	visit("05-user-secrets", "/users/alice/secrets")
}
