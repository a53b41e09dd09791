package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/seal"
)

// The canary scan: unique values planted as env and file secrets (through
// the CLI's stdin, the REST API and a batch import) must reach the
// workspace and nowhere else — not a log line of the server or the agent at
// debug level, not an API or CLI output, not /metrics, not the agent's
// /proc environ or cmdline, not its state file or data dir, and not the
// SQLite files (db, -wal, -shm) of a server that encrypts at rest.

func newCanary(t *testing.T, kind string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "canary-" + kind + "-" + hex.EncodeToString(b)
}

// place is one place scanned: a name and its bytes.
type place struct {
	name string
	data []byte
}

// scan fails t for every canary found in any place, raw or base64 (the
// shape of a []byte in JSON).
func scan(t *testing.T, places []place, canaries map[string]string) {
	t.Helper()
	for _, p := range places {
		for what, c := range canaries {
			for _, form := range []string{c, base64.StdEncoding.EncodeToString([]byte(c)), base64.RawURLEncoding.EncodeToString([]byte(c))} {
				if bytes.Contains(p.data, []byte(form)) {
					t.Errorf("%s found in %s", what, p.name)
				}
			}
		}
	}
}

// filesUnder reads every regular file below dir as a place.
func filesUnder(t *testing.T, dir, label string) []place {
	t.Helper()
	var out []place
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, place{label + " " + rel, b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCanaryScan(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/environ and cmdline")
	}
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()
	keyFile := filepath.Join(t.TempDir(), "courier.key")
	if err := seal.GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	srv := newServerProc(t, courier, "--encryption-key-file", keyFile)

	canaries := map[string]string{
		"env canary (CLI stdin)":      newCanary(t, "env"),
		"file canary (CLI stdin)":     newCanary(t, "file"),
		"updated canary (CLI stdin)":  newCanary(t, "upd"),
		"API canary (REST create)":    newCanary(t, "api"),
		"API canary (REST update)":    newCanary(t, "api2"),
		"import canary (CLI import)":  newCanary(t, "imp"),
		"both targets canary (REST)":  newCanary(t, "both"),
		"the password":                "pw-" + newCanary(t, "pw"),
		"an overwritten canary (CLI)": newCanary(t, "old"),
	}
	password := canaries["the password"]
	var places []place

	anon, _ := client.New(client.Config{URL: srv.url()})
	if _, err := anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: "dev", Email: "dev@canary.test", Password: password}); err != nil {
		t.Fatal(err)
	}

	// The CLI, logged in through stdin, its config in a private dir.
	cfgDir := t.TempDir()
	cli := func(stdin string, args ...string) string {
		t.Helper()
		c := exec.Command(courier, args...)
		c.Env = append(os.Environ(), "COURIER_CONFIG_DIR="+cfgDir, "COURIER_URL="+srv.url())
		c.Stdin = strings.NewReader(stdin)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("courier %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		places = append(places, place{"CLI output of courier " + strings.Join(args, " "), out})
		return string(out)
	}
	cli(password+"\n", "login", srv.url(), "-u", "dev", "--password-stdin")
	cli(canaries["an overwritten canary (CLI)"], "secret", "create", "api-key", "--env", "CANARY_ENV", "--description", "d")
	cli(canaries["env canary (CLI stdin)"], "secret", "update", "api-key")
	cli(canaries["file canary (CLI stdin)"], "secret", "create", "cfg", "--file", "~/.config/canary/file")
	cli(canaries["updated canary (CLI stdin)"], "secret", "create", "upd", "--env", "CANARY_UPD")
	importFile := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(importFile, []byte("CANARY_IMPORT="+canaries["import canary (CLI import)"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli("", "secret", "import", importFile)

	// The REST API, every body kept.
	var cfg struct {
		Token string `json:"session_token"`
	}
	cfgBytes, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	_ = json.Unmarshal(cfgBytes, &cfg)
	token := cfg.Token
	if token == "" {
		tok, err := anon.Login(ctx, client.LoginRequest{Username: "dev", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		token = tok
	}
	api := func(method, path string, body any) []byte {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.url()+path, rd)
		req.Header.Set("Coder-Session-Token", token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		places = append(places, place{fmt.Sprintf("API answer to %s %s", method, path), append(b, []byte(fmt.Sprint(res.Header))...)})
		return b
	}
	api("POST", "/api/v2/users/me/secrets", map[string]string{"name": "via-api", "value": canaries["API canary (REST create)"], "env_name": "CANARY_API"})
	api("PATCH", "/api/v2/users/me/secrets/via-api", map[string]string{"value": canaries["API canary (REST update)"]})
	api("POST", "/api/v2/users/me/secrets", map[string]string{"name": "both", "value": canaries["both targets canary (REST)"],
		"env_name": "CANARY_BOTH", "file_path": "~/.config/canary/both"})
	var ws client.CreatedWorkspace
	json.Unmarshal(api("POST", "/api/v2/workspaces", map[string]any{"name": "dev", "owner": "dev", "template": map[string]any{
		"scripts": []map[string]any{{"name": "proof", "script": `printf '%s|%s|%s|%s' "$CANARY_ENV" "$CANARY_API" "$CANARY_IMPORT" "$CANARY_BOTH" > ~/env-proof`}}}}), &ws)
	if ws.AgentToken == "" {
		t.Fatal("no agent token")
	}

	// The agent: token from a file, debug logs.
	home := t.TempDir()
	agentData := filepath.Join(t.TempDir(), "agent")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(ws.AgentToken), 0o600); err != nil {
		t.Fatal(err)
	}
	agentLog := &logBuf{}
	agent := exec.Command(agentBin, "--url", srv.url(), "--token-file", tokenFile, "--data-dir", agentData,
		"--home", home, "--log-level", "debug", "--max-backoff", "1s")
	agent.Env = append(os.Environ(), "SHELL=/bin/sh")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { _ = agent.Wait(); close(agentDone) }()
	t.Cleanup(func() { _ = agent.Process.Kill(); <-agentDone })

	// Delivery first: the canaries reached the workspace, so their absence
	// elsewhere means something.
	waitUntil(t, "the startup script's proof", func() bool { return read(filepath.Join(home, "env-proof")) != "" })
	wantEnv := strings.Join([]string{canaries["env canary (CLI stdin)"], canaries["API canary (REST update)"],
		canaries["import canary (CLI import)"], canaries["both targets canary (REST)"]}, "|")
	if got := read(filepath.Join(home, "env-proof")); got != wantEnv {
		t.Fatalf("env delivered %q, want %q", got, wantEnv)
	}
	for path, want := range map[string]string{".config/canary/file": canaries["file canary (CLI stdin)"], ".config/canary/both": canaries["both targets canary (REST)"]} {
		if got := read(filepath.Join(home, path)); got != want {
			t.Fatalf("file %s = %q, want %q", path, got, want)
		}
	}

	// An SSH session whose env holds the canaries, through the control
	// plane's proxy: its logs on both sides are scanned below.
	if out := cli("", "ssh", "dev", "--", `[ -n "$CANARY_ENV" ] && echo env-set; wc -c < ~/.config/canary/file`); !strings.HasPrefix(out, "env-set\n") {
		t.Fatalf("ssh session output %q", out)
	}
	// More outputs, after the apply.
	cli("", "secret", "list")
	cli("", "secret", "list", "-o", "json")
	cli("", "secret", "list", "api-key")
	cli("", "whoami")
	cli("", "workspaces", "list")
	api("GET", "/api/v2/users/me/secrets", nil)
	api("GET", "/api/v2/users/me/secrets/both", nil)
	api("GET", "/api/v2/workspaces/dev", nil)
	api("GET", "/api/v2/users/me", nil)
	api("GET", "/metrics", nil)

	// A rotation into the agent's token file (issue 19 part 4): the agent
	// is disconnected and comes back with the new token; neither the old
	// nor the new token may be anywhere scanned below.
	connects := strings.Count(agentLog.String(), `"msg":"connected to the control plane"`)
	cli("", "workspaces", "rotate-token", "dev", "--token-file", tokenFile)
	rotated := strings.TrimSpace(read(tokenFile))
	if rotated == ws.AgentToken || len(rotated) < 43 {
		t.Fatalf("the token file holds %d characters after the rotation", len(rotated))
	}
	waitUntil(t, "the agent back with the rotated token", func() bool {
		return strings.Count(agentLog.String(), `"msg":"connected to the control plane"`) > connects
	})

	// The agent's process, state and data dir; the server's database.
	pid := strconv.Itoa(agent.Process.Pid)
	for _, f := range []string{"environ", "cmdline"} {
		b, err := os.ReadFile(filepath.Join("/proc", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		places = append(places, place{"the agent's /proc/<pid>/" + f, b})
	}
	places = append(places, filesUnder(t, agentData, "agent data dir:")...)
	dbFiles := filesUnder(t, srv.dataDir, "server data dir (running):")
	names := map[string]bool{}
	for _, p := range dbFiles {
		names[strings.TrimPrefix(p.name, "server data dir (running): ")] = true
	}
	if !names["courier.db"] || !names["courier.db-wal"] {
		t.Errorf("expected courier.db and courier.db-wal in the data dir, found %v", names)
	}
	places = append(places, dbFiles...)
	srv.kill() // SIGKILL: the WAL is left as it was
	places = append(places, filesUnder(t, srv.dataDir, "server data dir (after SIGKILL):")...)

	// The agent token and the session token are secrets too.
	secrets := map[string]string{"the agent token": ws.AgentToken, "the rotated agent token": rotated}
	for k, v := range canaries {
		secrets[k] = v
	}
	tokenPlaces := []place{{"the agent log", []byte(agentLog.String())}, {"the server log", []byte(srv.log.String())}}
	for _, p := range places {
		if strings.HasPrefix(p.name, "the agent's /proc") || strings.HasPrefix(p.name, "agent data dir") {
			tokenPlaces = append(tokenPlaces, p)
		}
	}
	scan(t, append(places, tokenPlaces[:2]...), canaries)
	scan(t, tokenPlaces, map[string]string{"the agent token": ws.AgentToken, "the rotated agent token": rotated, "the session token": token})
	// The CLI printed nothing secret when it wrote the token file.
	scan(t, places, map[string]string{"the rotated agent token": rotated})
	scan(t, []place{{"the server log", []byte(srv.log.String())}}, map[string]string{"the session token": token})
	// The agent runs with --log-level debug but logs little at that level;
	// its per-secret lines are at info.
	if !strings.Contains(agentLog.String(), `"msg":"secret applied"`) {
		t.Error("the agent log has no per-secret line: the scan saw no real agent output")
	}
	if !strings.Contains(srv.log.String(), `"level":"debug"`) {
		t.Error("the server log has no debug line: the scan did not run at debug level")
	}
	t.Logf("scanned %d places for %d canaries", len(places)+2, len(canaries))

	// The negative control: without an encryption key the same scan of the
	// database files finds a value, so the scan above could have failed.
	plain := newServerProc(t, courier)
	anon2, _ := client.New(client.Config{URL: plain.url()})
	if _, err := anon2.CreateFirstUser(ctx, client.CreateUserRequest{Username: "dev", Email: "dev@canary.test", Password: password}); err != nil {
		t.Fatal(err)
	}
	tok2, err := anon2.Login(ctx, client.LoginRequest{Username: "dev", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	control := newCanary(t, "control")
	if _, err := anon2.WithToken(tok2).CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "c", Value: control, EnvName: "C"}); err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, p := range filesUnder(t, plain.dataDir, "unencrypted server data dir:") {
		seen = seen || bytes.Contains(p.data, []byte(control))
	}
	if !seen {
		t.Error("the scan does not find a value stored unencrypted: it proves nothing")
	}
}
