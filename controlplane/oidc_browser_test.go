package controlplane

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestOIDCSignInChromium: the dashboard's single sign-on in a real
// browser (Debian's chromium, headless, driven by chromedp): the login
// page's "Sign in with …" link, the provider process, the callback, and
// the secrets page, signed in; then a refusal shown as a page. Screenshots
// go to the test's artifact directory (kept with go test -artifacts).
func TestOIDCSignInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	p := startSSOProvider(t, "")
	ts := newTestServer(t, withSSO(t, p.URL))
	p.SetUser(t, "sub-ada")

	ctx, alloc, shot, dir := browser360(t, chromium)
	location := func() *url.URL {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(s)
		return u
	}

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 780),
		chromedp.Navigate(ts.URL()+"/login"), chromedp.WaitVisible(chromedp.CSS("#sso"))); err != nil {
		t.Fatalf("login page: %v", err)
	}
	shot("01-login-page")
	link, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#sso")))
	if err != nil || strings.TrimSpace(link) != "Sign in with Test IdP" {
		t.Fatalf("link text %q (%v)", link, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#sso")), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	// Wait until the browser is back at Courier, on the secrets page.
	for u := location(); u.Path != "/account/secrets"; u = location() {
		if err := ctx.Err(); err != nil {
			t.Fatalf("the browser stayed at %s", u)
		}
		if err := chromedp.Do(ctx, chromedp.Sleep(50*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	shot("02-signed-in")
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil || !strings.Contains(body, "ada") {
		t.Fatalf("signed-in page does not name ada: %q (%v)", body, err)
	}
	if u := userNamed(t, ts, "ada"); !u.IsAdmin() {
		t.Fatal("ada was not made admin by the group")
	}

	// A refusal in the browser: a fresh profile (no session), bad signature.
	p.SetMode(t, "bad-signature")
	bctx2, cancel2 := chromedp.NewContext(alloc)
	defer cancel2()
	ctx2, cancel3 := context.WithTimeout(bctx2, 2*time.Minute)
	defer cancel3()
	if err := chromedp.Do(ctx2, chromedp.Navigate(ts.URL()+"/login/oidc"), chromedp.WaitVisible(chromedp.CSS("#problem"))); err != nil {
		t.Fatalf("refused sign-in: %v", err)
	}
	msg, err := chromedp.Run(ctx2, chromedp.Text(chromedp.CSS("#problem")))
	if err != nil || !strings.Contains(msg, "signature") {
		t.Fatalf("refusal page says %q (%v)", msg, err)
	}
	png, err := chromedp.Run(ctx2, chromedp.FullScreenshot(100))
	if err == nil {
		_ = os.WriteFile(filepath.Join(dir, "03-refused.png"), png, 0o644)
	}
}
