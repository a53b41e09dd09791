package main_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/courierhq/courier/client"
)

// The boot recipes of cmd/courier-agent/boot, tried: the container
// entrypoint runs the real agent against a real control plane; the systemd
// unit and the unit inside the cloud-init snippet pass systemd-analyze
// verify; the cloud-init snippet parses and enables the unit. (Docker,
// systemd as PID 1 and cloud-init itself cannot run on the CI machines.)

func TestEntrypointStartsAgentAndStopsCleanly(t *testing.T) {
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	entry, _ := filepath.Abs("boot/entrypoint.sh")
	ctx := context.Background()

	addr, _ := startServer(t, courier)
	url := "http://" + addr
	anon, _ := client.New(client.Config{URL: url})
	_, _ = anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: "ops", Email: "ops@x.test", Password: "password-1"})
	tok, err := anon.Login(ctx, client.LoginRequest{Username: "ops", Password: "password-1"})
	if err != nil {
		t.Fatal(err)
	}
	api := anon.WithToken(tok)
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "img", Owner: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "agent-token")
	_ = os.WriteFile(tokenFile, []byte(ws.AgentToken+"\n"), 0o600)
	base := []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir()}

	// Missing configuration: a clear refusal, not a crash loop of the agent.
	for _, env := range [][]string{base, append(base, "COURIER_AGENT_URL="+url)} {
		c := exec.Command("sh", entry)
		c.Env = env
		out, err := c.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "COURIER_AGENT_") {
			t.Errorf("entrypoint with %v: err=%v out=%s", env, err, out)
		}
	}

	c := exec.Command("sh", entry, "--data-dir", t.TempDir())
	c.Env = append(base, "COURIER_AGENT_URL="+url, "COURIER_AGENT_TOKEN_FILE="+tokenFile)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	waitUntil(t, "the agent to report ready", func() bool {
		w, err := api.Workspace(ctx, "img")
		return err == nil && w.State == "ready"
	})
	_ = c.Process.Signal(syscall.SIGTERM) // what `docker stop` sends to PID 1
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM through the entrypoint: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = c.Process.Kill()
		t.Fatal("the agent did not stop on SIGTERM: the entrypoint must exec it")
	}
}

func verifyUnit(t *testing.T, unit string) {
	t.Helper()
	analyze := need(t, "systemd-analyze")
	agent := build(t, t.TempDir(), "github.com/courierhq/courier/cmd/courier-agent")
	// verify checks that ExecStart exists; point it at the built agent.
	unit = strings.ReplaceAll(unit, "/usr/local/bin/courier-agent", agent)
	path := filepath.Join(t.TempDir(), "courier-agent.service")
	_ = os.WriteFile(path, []byte(unit), 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Unknown") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	b, err := os.ReadFile("boot/courier-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	verifyUnit(t, string(b))
}

func TestCloudInitSnippet(t *testing.T) {
	b, err := os.ReadFile("boot/cloud-init.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "#cloud-config\n") {
		t.Fatal("cloud-init user data must start with #cloud-config")
	}
	var doc struct {
		WriteFiles []struct {
			Path, Permissions, Content string
		} `yaml:"write_files"`
		RunCmd [][]string `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var unit string
	for _, f := range doc.WriteFiles {
		switch f.Path {
		case "/etc/courier/agent-token":
			if f.Permissions != "0600" {
				t.Errorf("token file permissions %q", f.Permissions)
			}
		case "/etc/systemd/system/courier-agent.service":
			unit = f.Content
		}
	}
	if unit == "" {
		t.Fatal("no unit in write_files")
	}
	verifyUnit(t, unit)
	joined := ""
	for _, c := range doc.RunCmd {
		joined += strings.Join(c, " ") + "\n"
	}
	if !strings.Contains(joined, "systemctl enable --now courier-agent.service") {
		t.Errorf("runcmd does not start the agent: %s", joined)
	}
}

// TestBootRecipesUseTheTokenFile: every recipe hands the agent its token in
// a file, none in an environment variable (a unit's Environment= is readable
// by every local user through systemctl show; a container's env by docker
// inspect).
func TestBootRecipesUseTheTokenFile(t *testing.T) {
	n := 0
	err := filepath.WalkDir("boot", func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() && e.Name() == "profile.d" {
			return fs.SkipDir // shell snippets for login shells, not recipes that start the agent
		}
		if err != nil || e.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(b)
		// The variable, or (Windows' scheduled task) the flag.
		if !strings.Contains(text, "COURIER_AGENT_TOKEN_FILE") && !strings.Contains(text, "--token-file") {
			t.Errorf("%s does not use a token file", p)
		}
		if strings.Contains(text, "COURIER_AGENT_TOKEN=") {
			t.Errorf("%s sets COURIER_AGENT_TOKEN", p)
		}
		return nil
	})
	if err != nil || n < 6 {
		t.Fatalf("walked %d recipes: %v", n, err)
	}
}
