package cli_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane"
	"github.com/courierhq/courier/controlplane/store"
)

// logsTemplate: a script that prints the owner's secret plainly, in
// base64 and with a line that is ours; a script that fails; an app.
const logsTemplate = `scripts:
  - name: install
    script: |
      echo "installing deps"
      echo "token=$NPM_TOKEN"
      printf %s "$NPM_TOKEN" | base64
      echo "esc <b>bold</b>" >&2
  - name: migrate
    script: echo "before the failure"; exit 3
  - name: never
    script: echo never
apps:
  - slug: web
    command: echo app-up; exec sleep 1000
`

// TestStartupLogsRealAgent: a real agent runs the template's scripts; their
// output reaches the CLI, the REST API, the dashboard and the database with
// the owner's secret masked (plain and base64), survives a control-plane
// restart, and --follow prints a line written later.
func TestStartupLogsRealAgent(t *testing.T) {
	dir := t.TempDir()
	url, stopServer := runServerAt(t, dir, "127.0.0.1:0")
	admin := newCLI(t, "")
	c, _ := client.New(client.Config{URL: url})
	if _, err := c.CreateFirstUser(context.Background(), client.CreateUserRequest{Username: "admin",
		Email: "admin@example.com", Password: adminPassword}); err != nil {
		t.Fatal(err)
	}
	admin.ok(str(adminPassword+"\n"), "login", url, "--username", "admin", "--password-stdin")
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	tmpl := filepath.Join(admin.home, "t.yaml")
	if err := os.WriteFile(tmpl, []byte(logsTemplate), 0o600); err != nil {
		t.Fatal(err)
	}
	var created client.CreatedWorkspace
	r := admin.ok(nil, "workspaces", "create", "dev", "--owner", "alice", "--template", tmpl, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatal(err)
	}
	alice := newCLI(t, "")
	alice.ok(str("alice-password-1\n"), "login", url, "--username", "alice", "--password-stdin")
	alice.ok(str(canary), "secret", "create", "npm", "--env", "NPM_TOKEN")
	b64 := base64.StdEncoding.EncodeToString([]byte(canary))
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.all()); return r }

	runAgent(t, url, created.AgentToken, t.TempDir())
	waitUntil(t, "the failed script and the app's line", func() bool {
		r := alice.run(nil, "workspaces", "logs", "dev")
		return strings.Contains(r.stdout, "[migrate] before the failure") && strings.Contains(r.stdout, "[web] app-up") &&
			strings.Contains(r.stdout, "failed")
	})
	r = keep(alice.ok(nil, "workspaces", "logs", "dev"))
	for _, want := range []string{"[install] installing deps", "[install] token=***", "[install] ***",
		"[install stderr] esc <b>bold</b>", "[migrate] before the failure"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("courier workspaces logs lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, row := range []string{"script install succeeded 0", "script migrate failed 3", "script never not run - - -", "app web running -"} {
		if !hasRow(r.stdout, row) {
			t.Errorf("courier workspaces logs lacks the row %q:\n%s", row, r.stdout)
		}
	}
	t.Logf("courier workspaces logs dev:\n%s", r.stdout)
	r = keep(alice.ok(nil, "workspaces", "logs", "dev", "--script", "migrate"))
	if strings.Contains(r.stdout, "[install]") || !strings.Contains(r.stdout, "[migrate] before the failure") {
		t.Errorf("--script migrate:\n%s", r.stdout)
	}
	r = keep(alice.run(nil, "workspaces", "logs", "dev", "--script", "nope"))
	if r.code == 0 || !strings.Contains(r.stderr, `has no startup script "nope"`) || !strings.Contains(r.stderr, `"install"`) {
		t.Errorf("--script nope: exit %d, %s", r.code, r.stderr)
	}
	var page client.WorkspaceLogs
	r = keep(alice.ok(nil, "workspaces", "logs", "dev", "-o", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Runs) != 4 || page.Runs[1].ExitCode == nil ||
		*page.Runs[1].ExitCode != 3 {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}

	// REST: a bad cursor is a 400; the cursor pages.
	ac, _ := client.New(client.Config{URL: url, Token: readToken(t, alice)})
	_, err := ac.WorkspaceLogs(context.Background(), "dev", client.LogsQuery{Cursor: "abc"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 400 || !strings.Contains(ce.Message, "cursor") {
		t.Errorf("bad cursor: %v", err)
	}
	rest, err := ac.WorkspaceLogs(context.Background(), "dev", client.LogsQuery{Cursor: page.Lines[0].Cursor})
	if err != nil || len(rest.Lines) != len(page.Lines)-1 {
		t.Errorf("after the first line's cursor: %d lines (%v), want %d", len(rest.Lines), err, len(page.Lines)-1)
	}
	raw, _ := json.Marshal(rest)
	outputs = append(outputs, string(raw))

	// The dashboard shows it, escaped.
	dash := fetchDash(t, url+"/workspaces/dev", readToken(t, alice))
	outputs = append(outputs, dash)
	if !strings.Contains(dash, `id="startup-logs"`) || !strings.Contains(dash, "esc &lt;b&gt;bold&lt;/b&gt;") ||
		!strings.Contains(dash, "token=***") {
		t.Errorf("dashboard lacks the escaped output:\n%s", dash)
	}

	// The database never saw the secret.
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, controlplane.DBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lines, _ := st.WorkspaceLogs(context.Background(), created.ID, store.LogQuery{})
	for _, l := range lines {
		outputs = append(outputs, l.Text)
	}
	for _, o := range outputs {
		if strings.Contains(o, canary) || strings.Contains(o, b64) || strings.Contains(o, strings.TrimRight(b64, "=")) {
			t.Fatalf("the secret (or its base64) leaked: %q", o)
		}
	}

	// A restart keeps the logs.
	addr := strings.TrimPrefix(url, "http://")
	stopServer()
	runServerAt(t, dir, addr)
	if r := alice.ok(nil, "workspaces", "logs", "dev", "--script", "install"); !strings.Contains(r.stdout, "installing deps") {
		t.Errorf("after a restart:\n%s", r.stdout)
	}

	// --follow prints a line written after it started (here through the
	// database, as another replica would).
	followLater(t, alice, st, created.ID)
}

// followLater runs `courier workspaces logs dev --follow`, waits for the
// existing lines, appends one to the store and waits for it.
func followLater(t *testing.T, c *cli, st store.Store, wsID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, courierBin, "workspaces", "logs", "dev", "--follow", "--app", "web")
	cmd.Env = c.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	waitLine := func(want string) {
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				return
			}
		}
		t.Fatalf("--follow ended before %q: %v", want, sc.Err())
	}
	waitLine("[web] app-up")
	if _, err := st.AppendWorkspaceLogs(ctx, wsID, []store.LogLine{{Source: "app:web", Stream: "stdout", At: time.Now(),
		Text: "written later"}}, store.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	waitLine("[web] written later")
}

func readToken(t *testing.T, c *cli) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.cfg, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Token == "" {
		t.Fatalf("no token in the CLI config: %v", err)
	}
	return cfg.Token
}

func fetchDash(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.AddCookie(&http.Cookie{Name: "courier_session", Value: token})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d\n%s", url, res.StatusCode, b)
	}
	return string(b)
}

// hasRow reports whether a line of out starts with the fields of row.
func hasRow(out, row string) bool {
	want := strings.Fields(row)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(want) && strings.Join(f[:len(want)], " ") == row {
			return true
		}
	}
	return false
}
