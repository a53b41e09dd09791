package controlplane

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium for the dashboard's browser tests:
// required under CI, a skip elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is required on CI: %v", err)
		}
		t.Skip("chromium not installed")
	}
	return chromium
}

// browser360 starts a headless chromium at 360 × 780 px for the rest of
// the test: ctx is a tab with two minutes to run, alloc the browser (for
// a fresh profile in another tab). shot fails the test when the page
// scrolls sideways and saves a screenshot as name.png in dir, the test's
// artifact directory.
func browser360(t *testing.T, chromium string) (ctx, alloc context.Context, shot func(name string), dir string) {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(360, 780))...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(cancel)
	dir = t.ArtifactDir()
	shot = func(name string) {
		t.Helper()
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		if err != nil || wide {
			t.Errorf("%s: the page scrolls sideways at 360 px (%v)", name, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, alloc, shot, dir
}

// signIn signs user in through the login form at baseURL in the tab ctx
// (at 360 × 780 px) and waits until the form is gone: the next page has a
// main too, so waiting for one raced the form's POST (a navigation right
// after then went to the login page, seen once in CI).
func signIn(t *testing.T, ctx context.Context, baseURL, user string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 780), chromedp.Navigate(baseURL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login")), chromedp.SendKeys(chromedp.CSS("#login"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword), chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitNotPresent(chromedp.CSS("#login"))); err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
}
