package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/courierhq/courier/client"
)

// The dashboard in a real browser: Debian's chromium, headless, driven by
// chromedp, against a real `courier server` process and a real
// `courier-agent` process. The browser reaches the server through a
// recording proxy, so every response body it received is checked for the
// canaries, as is the DOM after every step. A PNG screenshot of every step
// goes to the test's artifact directory (kept with `go test -artifacts`).

const (
	dashValue     = "dash-canary-env-3b9f"
	dashValue2    = "dash-canary-edit-71c0"
	dashHomeValue = "dash-canary-home-x-a4d2"
	dashAbsValue  = "dash-canary-abs-x-e85b"
	dashPassword  = "correct-horse-dash"
)

var dashCanaries = []string{dashValue, dashValue2, dashHomeValue, dashAbsValue, "paused-value"}

// recorder is a reverse proxy that keeps every response body.
type recorder struct {
	mu     sync.Mutex
	bodies bytes.Buffer
	n      int
}

func newRecorder(t *testing.T, target string) (*recorder, *httptest.Server) {
	rec := &recorder{}
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(res *http.Response) error {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		rec.mu.Lock()
		rec.bodies.Write(b)
		rec.n++
		rec.mu.Unlock()
		res.Body = io.NopCloser(bytes.NewReader(b))
		return err
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return rec, srv
}

func (r *recorder) String() string { r.mu.Lock(); defer r.mu.Unlock(); return r.bodies.String() }

func TestDashboardInBrowser(t *testing.T) {
	chromium := need(t, "chromium")
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	for _, vp := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone-360px", 360, 780}} {
		t.Run(vp.name, func(t *testing.T) {
			dashboardFlow(t, chromium, courier, agentBin, vp.width, vp.height)
		})
	}
}

// dash drives one browser tab through the dashboard.
type dash struct {
	t     *testing.T
	ctx   context.Context
	base  string
	dir   string
	step  int
	width int64
}

// do runs actions, then checks the DOM for canaries and (at 360 px) for
// horizontal scrolling, and saves a screenshot named after the step.
func (d *dash) do(name string, actions ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	// Generous: CI runs this beside every other package's tests on two cores.
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		d.t.Fatalf("step %q: %v", name, err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		d.t.Fatalf("step %q: read the DOM: %v", name, err)
	}
	for _, c := range dashCanaries {
		if strings.Contains(html, c) {
			d.t.Fatalf("step %q: a secret value is in the DOM", name)
		}
	}
	if d.width <= 400 {
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		if err != nil || wide {
			d.t.Errorf("step %q: the page scrolls sideways at %d px (%v)", name, d.width, err)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		d.t.Fatalf("step %q: screenshot: %v", name, err)
	}
	d.step++
	file := filepath.Join(d.dir, fmt.Sprintf("%02d-%s.png", d.step, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dash) text(sel string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		d.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (d *dash) value(sel string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		d.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func (d *dash) exists(sel string) bool {
	d.t.Helper()
	ok, err := chromedp.Run(d.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel)))
	if err != nil {
		d.t.Fatal(err)
	}
	return ok
}

// fill clears the input sel and types v.
func fill(sel, v string) chromedp.Action[chromedp.Void] {
	clear := chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).value = "", true)`, sel))
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(sel)),
		func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
			_, err := clear(ctx, t)
			return chromedp.Void{}, err
		},
		chromedp.SendKeys(chromedp.CSS(sel), v))
}

func dashboardFlow(t *testing.T, chromium, courier, agentBin string, width, height int64) {
	ctx := context.Background()
	addr, serverLog := startServer(t, courier)
	rec, proxy := newRecorder(t, "http://"+addr)

	api, _ := firstUser(t, "http://"+addr, "dev", "dev@dash.test", dashPassword)
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(int(width), int(height)))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	d := &dash{t: t, ctx: bctx, base: proxy.URL, dir: t.ArtifactDir(), width: width}
	t.Logf("screenshots in %s", d.dir)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	// (1) Log in with the keyboard alone: type, Enter.
	d.do("login-page", chromedp.Navigate(d.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login")))
	d.do("login-refused", chromedp.SendKeys(chromedp.CSS("#login"), "dev"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not-the-password\r"), chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if got := d.text("#login-error"); !strings.Contains(got, "incorrect username, e-mail or password") {
		t.Fatalf("refused login says %q", got)
	}
	d.do("secrets-empty", chromedp.SendKeys(chromedp.CSS("#password"), dashPassword+"\r"), chromedp.WaitVisible(chromedp.CSS("#usage")))
	if got := d.text("#usage"); got != "0 of 50 secrets · 0 of 200 KiB · 0 of 24 KiB for env" {
		t.Fatalf("usage line %q", got)
	}

	// (2) An env+file secret, created from the textarea, then listed.
	create := func(step, name, env, file, value string) {
		t.Helper()
		d.do(step, chromedp.Navigate(d.base+"/account/secrets/new"), chromedp.WaitVisible(chromedp.CSS("#name")),
			fill("#name", name), fill("#env_name", env), fill("#file_path", file), fill("#value", value),
			chromedp.Click(chromedp.CSS("form.card button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#secret-"+name)))
	}
	d.do("new-secret-form", chromedp.Click(chromedp.CSS(`a[href="/account/secrets/new"]`)), chromedp.WaitVisible(chromedp.CSS("#name")),
		fill("#name", "api-key"), fill("#description", "for the tools"), fill("#env_name", "API_KEY"),
		fill("#file_path", "~/.config/tool/key"), fill("#value", dashValue))
	d.do("secret-created", chromedp.Click(chromedp.CSS("form.card button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#secret-api-key")))
	row := d.text("#secret-api-key")
	for _, want := range []string{"api-key", "for the tools", "API_KEY", "~/.config/tool/key"} {
		if !strings.Contains(row, want) {
			t.Errorf("the listed secret lacks %q: %q", want, row)
		}
	}
	if got := d.text(".notice"); !strings.Contains(got, `Created secret "api-key"`) {
		t.Errorf("notice %q", got)
	}

	// (3) Edit its targets (and its value) on the edit page.
	d.do("edit-form", chromedp.Click(chromedp.CSS(`a[href="/account/secrets/api-key/edit"]`)), chromedp.WaitVisible(chromedp.CSS("#env_name")))
	if d.value("#env_name") != "API_KEY" || d.value("#value") != "" {
		t.Fatal("the edit form does not hold the metadata, or holds a value")
	}
	d.do("edited", fill("#env_name", "TOOL_KEY"), fill("#file_path", "~/.config/tool/key2"), fill("#value", dashValue2),
		chromedp.Click(chromedp.CSS("form.card button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#secret-api-key")))
	if row := d.text("#secret-api-key"); !strings.Contains(row, "TOOL_KEY") || !strings.Contains(row, "~/.config/tool/key2") || strings.Contains(row, "API_KEY") {
		t.Fatalf("after the edit the row is %q", row)
	}

	// (4) A value one byte over 24 KiB, uploaded: refused beside the value,
	// the other fields kept.
	big := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(big, bytes.Repeat([]byte("b"), 24*1024+1), 0o600); err != nil {
		t.Fatal(err)
	}
	d.do("upload-too-big", chromedp.Navigate(d.base+"/account/secrets/new"), chromedp.WaitVisible(chromedp.CSS("#name")),
		fill("#name", "too-big"), fill("#env_name", "TOO_BIG"), chromedp.SetUploadFiles(chromedp.CSS("#value_file"), []string{big}),
		chromedp.Click(chromedp.CSS("form.card button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#value-error")))
	if got := d.text("#value-error"); got != "is 24577 bytes; the per-secret cap is 24576 bytes (1 over)" {
		t.Fatalf("beside the value: %q", got)
	}
	if d.value("#name") != "too-big" || d.value("#env_name") != "TOO_BIG" {
		t.Fatal("the refused form lost what was typed")
	}

	// (5) Delete a secret after confirming.
	create("doomed-created", "doomed", "", "", "short-lived")
	d.do("delete-confirm", chromedp.Click(chromedp.CSS(`a[href="/account/secrets/doomed/delete"]`)), chromedp.WaitVisible(chromedp.CSS("#delete-name")))
	if got := d.text("#delete-name"); got != "doomed" {
		t.Fatalf("the confirmation names %q", got)
	}
	d.do("deleted", chromedp.Click(chromedp.CSS("button.danger")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if d.exists("#secret-doomed") || !d.exists("#secret-api-key") {
		t.Fatal("the wrong secret list after the delete")
	}

	// (6) A paused secret, two secrets naming one file two ways (R8), then
	// a real agent.
	create("to-pause-created", "paused-one", "PAUSED_ONE", "~/paused", "paused-value")
	d.do("paused", chromedp.Click(chromedp.CSS("#toggle-paused-one")), chromedp.WaitVisible(chromedp.CSS("#secret-paused-one .state.off")))
	if row := d.text("#secret-paused-one"); !strings.Contains(row, "paused") {
		t.Fatalf("the paused row says %q", row)
	}
	create("collider-home", "home-x", "", "~/x", dashHomeValue)
	create("collider-abs", "abs-x", "", filepath.Join(home, "x"), dashAbsValue)
	agentLog := &logBuf{}
	agent := exec.Command(agentBin, "--url", "http://"+addr, "--data-dir", filepath.Join(t.TempDir(), "agent"))
	agent.Env = append(os.Environ(), "HOME="+home, "COURIER_AGENT_TOKEN="+ws.AgentToken, "SHELL=/bin/sh")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	waitUntil(t, "the agent to be ready", func() bool {
		w, err := api.Workspace(ctx, "dev")
		return err == nil && w.State == "ready"
	})
	if got := read(filepath.Join(home, "x")); got != dashAbsValue {
		t.Fatalf("the collided file holds %q", got)
	}
	d.do("workspaces", chromedp.Click(chromedp.CSS(`nav a[href="/workspaces"]`)), chromedp.WaitVisible(chromedp.CSS("#workspaces")))
	if got := d.text("#workspaces"); !strings.Contains(got, "dev") || !strings.Contains(got, "ready") {
		t.Fatalf("the workspace list says %q", got)
	}
	waitUntil(t, "the apply report", func() bool {
		st, err := api.AgentStatus(ctx, "dev")
		return err == nil && st.LastApply != nil
	})
	d.do("workspace", chromedp.Click(chromedp.CSS(`#workspaces a`)), chromedp.WaitVisible(chromedp.CSS("#outcomes")))
	for sel, want := range map[string]string{
		"#outcome-api-key":    "written",
		"#outcome-abs-x":      "written",
		"#outcome-home-x":     "lost a collision to abs-x",
		"#outcome-paused-one": "disabled",
		"#agent-state":        "ready",
	} {
		if got := d.text(sel); !strings.Contains(got, want) {
			t.Errorf("%s says %q, want %q", sel, got, want)
		}
	}
	if row := d.text("#outcome-api-key"); !strings.Contains(row, "TOOL_KEY") || !strings.Contains(row, filepath.Join(home, ".config/tool/key2")) || !strings.Contains(row, "~/.config/tool/key2") {
		t.Errorf("the api-key row lacks its targets: %q", row)
	}
	if _, err := os.Stat(filepath.Join(home, "paused")); err == nil {
		t.Error("the paused secret's file was written")
	}

	// (7) Log out: back to the login page, the secrets page closed.
	d.do("logged-out", chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.CSS("#login")))
	d.do("closed-after-logout", chromedp.Navigate(d.base+"/account/secrets"), chromedp.WaitVisible(chromedp.CSS("#login")))

	// Canaries: in no response the browser received, nor any log.
	if rec.n < 20 {
		t.Fatalf("the proxy saw only %d responses", rec.n)
	}
	for name, text := range map[string]string{"responses": rec.String(), "server log": serverLog.String(), "agent log": agentLog.String()} {
		for _, c := range dashCanaries {
			if strings.Contains(text, c) {
				t.Errorf("a secret value (%.16s...) is in the %s", c, name)
			}
		}
	}
}
