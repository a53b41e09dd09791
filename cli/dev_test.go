package cli_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// devProcess is a running `courier dev`.
type devProcess struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	url    string
	token  string
	ready  chan struct{}
	exited chan error
}

var (
	devURL   = regexp.MustCompile(`export COURIER_URL=(\S+) COURIER_SESSION_TOKEN=(\S+)`)
	devAgent = "agent started"
)

func startDev(t *testing.T, stateDir string, extra ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(courierBin, append([]string{"dev", "--state-dir", stateDir, "--listen", "127.0.0.1:0"}, extra...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devProcess{cmd: cmd, ready: make(chan struct{}), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.out.WriteString(line + "\n")
			if m := devURL.FindStringSubmatch(line); m != nil {
				d.url, d.token = m[1], m[2]
			}
			d.mu.Unlock()
			if strings.Contains(line, devAgent) && !signalled {
				signalled = true
				close(d.ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		d.exited <- cmd.Wait()
	}()
	select {
	case <-d.ready:
	case err := <-d.exited:
		t.Fatalf("courier dev exited early: %v\n%s", err, d.output())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("courier dev did not come up:\n%s", d.output())
	}
	return d
}

func (d *devProcess) output() string { d.mu.Lock(); defer d.mu.Unlock(); return d.out.String() }

func (d *devProcess) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("courier dev exited with %v after Ctrl-C:\n%s", err, d.output())
		}
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		t.Fatal("courier dev did not stop on Ctrl-C")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDevEndToEnd(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	d := startDev(t, state)
	if d.url == "" || d.token == "" {
		t.Fatalf("the banner has no URL or token:\n%s", d.output())
	}
	if out := d.output(); !strings.Contains(out, "dashboard       "+d.url+"/login") ||
		!strings.Contains(out, `log in as dev with the "password" of `+filepath.Join(state, "dev.json")) {
		t.Errorf("the banner does not say how to open the dashboard:\n%s", out)
	}
	api, err := client.New(client.Config{URL: d.url, Token: d.token})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitFor(t, "the agent to report ready", func() bool {
		ws, err := api.Workspace(ctx, "dev")
		return err == nil && ws.State == "ready"
	})

	const value = "dev-canary-0a1b2c"
	create := exec.Command(courierBin, "secret", "create", "greeting", "--env", "GREETING_SECRET", "--file", "~/.config/dev/greeting")
	create.Env = append(os.Environ(), "COURIER_URL="+d.url, "COURIER_SESSION_TOKEN="+d.token, "COURIER_CONFIG_DIR="+t.TempDir())
	create.Stdin = strings.NewReader(value)
	if out, err := create.CombinedOutput(); err != nil || strings.Contains(string(out), value) {
		t.Fatalf("secret create: %v\n%s", err, out)
	}
	// A file secret aimed out of the sandbox: refused by the dev agent.
	escape := filepath.Join(t.TempDir(), "host-file")
	esc := exec.Command(courierBin, "secret", "create", "escape", "--file", escape)
	esc.Env, esc.Stdin = create.Env, strings.NewReader(value)
	if out, err := esc.CombinedOutput(); err != nil {
		t.Fatalf("secret create escape: %v\n%s", err, out)
	}
	file := filepath.Join(state, "home", ".config", "dev", "greeting")
	if _, err := os.Stat(file); err == nil {
		t.Fatal("the secret reached the workspace before the agent restarted (R3)")
	}
	restart := exec.Command(courierBin, "dev", "restart", "--state-dir", state)
	if out, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("dev restart: %v\n%s", err, out)
	}
	waitFor(t, "the secret file after the agent restart", func() bool {
		b, _ := os.ReadFile(file)
		return string(b) == value
	})
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v", st.Mode().Perm())
	}
	waitFor(t, "the escaping secret reported failed", func() bool {
		st, err := api.AgentStatus(ctx, "dev")
		if err != nil || st.LastApply == nil {
			return false
		}
		for _, o := range st.LastApply.Outcomes {
			if o.Secret == "escape" && o.Outcome == "failed" {
				return true
			}
		}
		return false
	})
	if _, err := os.Stat(escape); !os.IsNotExist(err) {
		t.Fatalf("courier dev wrote a file outside its state directory: %v", err)
	}
	if strings.Contains(d.output(), value) {
		t.Error("courier dev printed the secret value")
	}
	d.stop(t)
	for _, log := range []string{"server.log", "agent.log"} {
		b, _ := os.ReadFile(filepath.Join(state, log))
		if strings.Contains(string(b), value) {
			t.Errorf("%s holds the secret value", log)
		}
	}

	// A second run reuses the state: same user, same token, same workspace.
	d2 := startDev(t, state)
	if d2.token != d.token {
		t.Errorf("second run made a new session (%q vs %q)", d2.token, d.token)
	}
	api2, _ := client.New(client.Config{URL: d2.url, Token: d2.token})
	secrets, err := api2.Secrets(ctx, "me")
	if err != nil || len(secrets) != 2 {
		t.Fatalf("second run: secrets = %+v, %v", secrets, err)
	}
	d2.stop(t)
}

// TestDevLiveFiles: `courier dev --live-files` applies a new secret's file
// without a restart, and never prints the value.
func TestDevLiveFiles(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	d := startDev(t, state, "--live-files")
	api, err := client.New(client.Config{URL: d.url, Token: d.token})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitFor(t, "the agent to report ready", func() bool {
		ws, err := api.Workspace(ctx, "dev")
		return err == nil && ws.State == "ready"
	})
	const value = "dev-live-canary-9f8e"
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "live", Value: value, FilePath: "~/live"}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(state, "home", "live")
	waitFor(t, "the file without a restart", func() bool { b, _ := os.ReadFile(file); return string(b) == value })
	d.stop(t)
	b, _ := os.ReadFile(filepath.Join(state, "agent.log"))
	if strings.Contains(d.output(), value) || strings.Contains(string(b), value) {
		t.Error("courier dev or the agent log printed the value")
	}
}

// TestDevSFTP: scp and sftp work in the walkthrough workspace, through
// `courier ssh --stdio` as ProxyCommand, with the real OpenSSH tools.
func TestDevSFTP(t *testing.T) {
	scp, err1 := exec.LookPath("scp")
	sftp, err2 := exec.LookPath("sftp")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no scp or sftp on PATH; CI installs openssh-client")
		}
		t.Skip("no scp or sftp on PATH (apt-get install openssh-client)")
	}
	state := filepath.Join(t.TempDir(), "state")
	d := startDev(t, state)
	defer d.stop(t)
	api, err := client.New(client.Config{URL: d.url, Token: d.token})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent to report ready", func() bool {
		ws, err := api.Workspace(context.Background(), "dev")
		return err == nil && ws.State == "ready"
	})
	home := filepath.Join(state, "home")
	if err := os.WriteFile(filepath.Join(home, "remote.txt"), []byte("from the workspace\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()
	env := append(os.Environ(), "COURIER_URL="+d.url, "COURIER_SESSION_TOKEN="+d.token, "COURIER_CONFIG_DIR="+t.TempDir())
	opts := []string{"-F", "/dev/null", "-o", "ProxyCommand=" + courierBin + " ssh --stdio %h",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}

	get := exec.Command(scp, append(opts, "dev:remote.txt", filepath.Join(local, "got.txt"))...)
	get.Env = env
	if out, err := get.CombinedOutput(); err != nil {
		t.Fatalf("scp from the workspace: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(local, "got.txt")); string(b) != "from the workspace\n" {
		t.Fatalf("scp copied %q", b)
	}
	if err := os.WriteFile(filepath.Join(local, "up.txt"), []byte("to the workspace\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	batch := filepath.Join(local, "batch")
	if err := os.WriteFile(batch, []byte("put "+filepath.Join(local, "up.txt")+" uploaded.txt\nls\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	put := exec.Command(sftp, append(append(opts, "-b", batch), "dev")...)
	put.Env = env
	if out, err := put.CombinedOutput(); err != nil || !strings.Contains(string(out), "uploaded.txt") {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "uploaded.txt")); string(b) != "to the workspace\n" {
		t.Fatalf("sftp uploaded %q", b)
	}
}
