package deploytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// The images deploy/images/build.sh makes.
const (
	workspaceImage = "courier-workspace:dev"
	serverImage    = "courier-server:dev"
	postgresImage  = "courier-postgres:dev"
	haproxyImage   = "courier-haproxy:dev"
)

// unavailable skips on a developer's machine and fails under CI, where
// .ci/run builds the images first.
func unavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run builds the images with deploy/images/build.sh)", why)
	}
	t.Skipf("%s; run deploy/images/build.sh (as root) first", why)
}

// needImages checks for a Docker engine and the named images.
func needImages(t *testing.T, images ...string) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		unavailable(t, "no docker client")
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		unavailable(t, "no Docker engine answers: "+strings.TrimSpace(string(out)))
	}
	for _, img := range images {
		if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
			unavailable(t, "image "+img+" is missing")
		}
	}
}

// docker runs the docker client and returns its combined output.
func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// uniq is a fresh name prefixed courier-, for containers and networks.
func uniq(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "courier-" + prefix + "-" + hex.EncodeToString(b)
}

// removeContainer removes a container when the test ends, keeping its logs
// in the test output if the test failed.
func removeContainer(t *testing.T, name string) {
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := docker("logs", "--tail", "60", name)
			t.Logf("docker logs %s:\n%s", name, out)
		}
		_, _ = docker("rm", "-f", "-v", name)
	})
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// courierBin builds cmd/courier once for the package's tests.
func courierBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "courier-deploytest-")
		if binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir, "github.com/courierhq/courier/cmd/courier").CombinedOutput()
		if err != nil {
			binErr = &buildError{err: err, out: string(out)}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "courier")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// logBuf collects a process's output for the canary checks.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startHostServer runs `courier server` on the host, on 127.0.0.1, with
// SQLite in a temp dir; containers on the host network reach it there.
func startHostServer(t *testing.T) (url string, log *logBuf) {
	t.Helper()
	addr := "127.0.0.1:" + freePort(t)
	log = &logBuf{}
	cmd := exec.Command(courierBin(t), "server", "--listen", addr, "--data-dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url = "http://" + addr
	waitUntil(t, 30*time.Second, "the control plane on the host", func() bool {
		return exec.Command(courierBin(t), "server", "healthcheck", "--url", url+"/readyz").Run() == nil
	})
	return url, log
}

// waitUntil polls cond every 100 ms until it holds or the deadline passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firstUser creates the first user (an admin) and logs in.
func firstUser(t *testing.T, url string) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	anon, err := client.New(client.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	var last error
	waitUntil(t, 60*time.Second, "the first user", func() bool {
		_, last = anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: "ops", Email: "ops@deploy.test", Password: "password-deploy-1"})
		if last != nil && !strings.Contains(last.Error(), "409") && !strings.Contains(strings.ToLower(last.Error()), "already") {
			return false
		}
		return true
	})
	tok, err := anon.Login(ctx, client.LoginRequest{Username: "ops", Password: "password-deploy-1"})
	if err != nil {
		t.Fatal(err)
	}
	return anon.WithToken(tok), tok
}

// canary is a secret value that must never show in logs or configuration.
func canary(tag string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "canary-" + tag + "-" + hex.EncodeToString(b)
}

// tokenFile writes an agent token to a file the container's user (uid)
// can read, mode 0400, and returns its path.
func tokenFile(t *testing.T, token string, uid int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "agent-token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		unavailable(t, "cannot give the token file to the container's user (needs root): "+err.Error())
	}
	return p
}

// courierSSH runs a command in a workspace through `courier ssh`.
func courierSSH(t *testing.T, url, session, workspace, command string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, courierBin(t), "ssh", workspace, "--", command)
	c.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+session, "COURIER_CONFIG_DIR="+t.TempDir())
	out, err := c.CombinedOutput()
	return string(out), err
}
