package main_test

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/courierhq/courier/client"
)

// logsCanary is the owner's secret the startup script prints.
const logsCanary = "logs-canary-value-5e1d"

// TestStartupLogsInBrowser: the workspace page's startup-logs section in
// Debian's chromium, at desktop width and at 360 px: each script's state,
// exit code and output, with the secret masked (plainly and in base64) and
// the output's markup shown as text, never run.
func TestStartupLogsInBrowser(t *testing.T) {
	chromium := need(t, "chromium")
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()
	addr, _ := startServer(t, courier)
	rec, proxy := newRecorder(t, "http://"+addr)
	api, _ := firstUser(t, "http://"+addr, "dev", "dev@logs.test", dashPassword)
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "npm", Value: logsCanary, EnvName: "NPM_TOKEN"}); err != nil {
		t.Fatal(err)
	}
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev", Template: client.Template{
		Scripts: []client.Script{
			{Name: "install", Script: `echo "installing"
echo "token=$NPM_TOKEN"
printf %s "$NPM_TOKEN" | base64
echo '<script>document.title="pwned"</script><img src=x onerror=alert(1)>' >&2
printf 'x%.0s' $(seq 1 300); echo`},
			{Name: "migrate", Script: `echo "migrating"; exit 3`},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	agent := exec.Command(agentBin, "--url", "http://"+addr, "--data-dir", filepath.Join(t.TempDir(), "agent"))
	agent.Env = append(os.Environ(), "HOME="+home, "COURIER_AGENT_TOKEN="+ws.AgentToken, "SHELL=/bin/sh")
	agentLog := &logBuf{}
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	waitUntil(t, "the failed script's run", func() bool {
		p, err := api.WorkspaceLogs(ctx, "dev", client.LogsQuery{})
		return err == nil && len(p.Runs) == 2 && p.Runs[1].State == "failed" && len(p.Lines) >= 6
	})

	b64 := base64.StdEncoding.EncodeToString([]byte(logsCanary))
	for _, vp := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone-360px", 360, 780}} {
		t.Run(vp.name, func(t *testing.T) {
			alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
				chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(int(vp.width), int(vp.height)))...)
			defer cancelAlloc()
			bctx, cancelBrowser := chromedp.NewContext(alloc)
			defer cancelBrowser()
			d := &dash{t: t, ctx: bctx, base: proxy.URL, dir: t.ArtifactDir(), width: vp.width}
			if err := chromedp.Do(bctx, chromedp.EmulateViewport(vp.width, vp.height)); err != nil {
				t.Fatalf("start chromium: %v", err)
			}
			d.do("login", chromedp.Navigate(d.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login")),
				chromedp.SendKeys(chromedp.CSS("#login"), "dev"),
				chromedp.SendKeys(chromedp.CSS("#password"), dashPassword+"\r"), chromedp.WaitVisible(chromedp.CSS("#usage")))
			d.do("workspace-logs", chromedp.Navigate(d.base+"/workspaces/dev"), chromedp.WaitVisible(chromedp.CSS("#startup-logs")))
			install, migrate := d.text("#run-script-install"), d.text("#run-script-migrate")
			for _, want := range []string{"succeeded", "installing", "token=***", `<script>document.title="pwned"</script>`} {
				if !strings.Contains(install, want) {
					t.Errorf("the install section lacks %q:\n%s", want, install)
				}
			}
			if !strings.Contains(migrate, "failed") || !strings.Contains(migrate, "Exit code") || !strings.Contains(migrate, "3") ||
				!strings.Contains(migrate, "migrating") {
				t.Errorf("the migrate section says:\n%s", migrate)
			}
			html, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(html, logsCanary) || strings.Contains(html, b64) {
				t.Fatal("the secret (or its base64) is in the DOM")
			}
			injected, err := chromedp.Run(bctx, chromedp.Evaluate[bool](
				`document.title === "pwned" || document.querySelector("pre.output script, pre.output img") !== null`))
			if err != nil || injected {
				t.Fatalf("the output's markup became elements (%v)", err)
			}
		})
	}
	if bodies := rec.String(); strings.Contains(bodies, logsCanary) || strings.Contains(bodies, b64) {
		t.Fatal("a response the browser received holds the secret")
	}
	if log := agentLog.String(); strings.Contains(log, logsCanary) || strings.Contains(log, b64) {
		t.Fatal("the agent's log holds the secret")
	}
}
