package deploytest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// composeCmd is the Compose tool the engine has: the docker-compose
// program, or the docker compose plugin.
func composeCmd(t *testing.T) []string {
	t.Helper()
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	unavailable(t, "neither docker-compose nor docker compose is installed")
	return nil
}

// stack is one compose project made from deploy/compose.yaml in a temp dir
// with its own secret files and ports.
type stack struct {
	t       *testing.T
	dir     string
	project string
	compose []string
	env     []string
	url     string // haproxy, published on 127.0.0.1
	stats   string // haproxy's CSV status page
}

func (s *stack) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	argv := append(append([]string{}, s.compose[1:]...), append([]string{"-p", s.project, "-f", filepath.Join(s.dir, "compose.yaml")}, args...)...)
	c := exec.CommandContext(ctx, s.compose[0], argv...)
	c.Dir = s.dir
	c.Env = append(os.Environ(), s.env...)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (s *stack) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// container is the container name of a service (compose's
// <project>_<service>_1, or -1 with the plugin).
func (s *stack) container(service string) string {
	s.t.Helper()
	id := strings.TrimSpace(s.must("ps", "-q", service))
	if id == "" {
		s.t.Fatalf("service %s has no container", service)
	}
	return strings.TrimPrefix(strings.TrimSpace(mustDocker(s.t, "inspect", "-f", "{{.Name}}", id)), "/")
}

// backendStatus reads haproxy's status of each replica (UP, DOWN, ...).
func (s *stack) backendStatus() map[string]string {
	resp, err := http.Get(s.stats)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	st := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) > 17 && f[0] == "replicas" && strings.HasPrefix(f[1], "replica-") {
			st[f[1]] = f[17]
		}
	}
	return st
}

// Numeric users of the images, who must own the secret files bind-mounted
// into their containers (compose mounts a file secret as it is on disk).
const (
	serverUID = 65532 // deploy/images/server/Dockerfile
)

// imageUID is the uid an image runs as (Debian's postgres user, say).
func imageUID(t *testing.T, image string) int {
	t.Helper()
	out := strings.TrimSpace(mustDocker(t, "run", "--rm", "--entrypoint", "id", image, "-u"))
	uid, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("uid of %s: %q", image, out)
	}
	return uid
}

func writeSecret(t *testing.T, dir, name, content string, uid int) {
	t.Helper()
	p := filepath.Join(dir, "secrets", name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		unavailable(t, "cannot give a secret file to its container's user (needs root): "+err.Error())
	}
}

func randB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func upStack(t *testing.T) *stack {
	t.Helper()
	needImages(t, serverImage, postgresImage, haproxyImage, workspaceImage)
	s := &stack{t: t, dir: t.TempDir(), project: uniq("stack"), compose: composeCmd(t)}
	for _, f := range []string{"compose.yaml", "haproxy.cfg"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	pw := randB64(24)
	writeSecret(t, s.dir, "postgres-password", pw+"\n", imageUID(t, postgresImage))
	writeSecret(t, s.dir, "pgpass", "postgres:5432:courier:courier:"+pw+"\n", serverUID)
	writeSecret(t, s.dir, "replica-secret", randB64(48)+"\n", serverUID)
	writeSecret(t, s.dir, "encryption-key", randB64(32)+"\n", serverUID)
	writeSecret(t, s.dir, "agent-token", "", coderUID)
	httpPort, statsPort := freePort(t), freePort(t)
	s.env = []string{"COURIER_HTTP_PORT=" + httpPort, "COURIER_STATS_PORT=" + statsPort}
	s.url = "http://127.0.0.1:" + httpPort
	s.stats = "http://127.0.0.1:" + statsPort + "/stats;csv"
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.run("logs", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		_, _ = s.run("down", "-v", "--remove-orphans", "-t", "5")
	})
	start := time.Now()
	s.must("up", "-d")
	waitUntil(t, 120*time.Second, "both replicas UP in haproxy", func() bool {
		st := s.backendStatus()
		return st["replica-a"] == "UP" && st["replica-b"] == "UP"
	})
	t.Logf("stack up, both replicas ready behind haproxy, in %s", time.Since(start).Round(time.Millisecond))
	return s
}

// holder names the replica service whose log has the latest "agent
// connected" line of the workspace (log timestamps are ISO 8601 UTC, so
// they compare as strings).
func (s *stack) holder(workspaceID string) string {
	best, bestTS := "", ""
	for _, svc := range []string{"replica-a", "replica-b"} {
		out, _ := docker("logs", s.container(svc))
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, workspaceID) || !strings.Contains(l, `"agent connected"`) {
				continue
			}
			var rec struct {
				TS string `json:"ts"`
			}
			if json.Unmarshal([]byte(l), &rec) == nil && rec.TS > bestTS {
				best, bestTS = svc, rec.TS
			}
		}
	}
	return best
}

// TestComposeStack: one `compose up -d` brings up PostgreSQL, two
// replicas, haproxy and a workspace; a secret created through haproxy
// reaches the workspace; killing the replica holding the agent moves the
// agent to the other (and it re-applies); cutting a replica off from
// PostgreSQL takes it out of haproxy while the other keeps serving.
func TestComposeStack(t *testing.T) {
	s := upStack(t)
	ctx := context.Background()
	api, _ := firstUser(t, s.url)
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "stack", Owner: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := canary("stack1"), canary("stack2")
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "db-url", Value: v1, EnvName: "DB_URL", FilePath: "~/.config/db-url"}); err != nil {
		t.Fatal(err)
	}
	writeSecret(t, s.dir, "agent-token", ws.AgentToken+"\n", coderUID)
	s.must("restart", "-t", "5", "workspace")
	wsc := s.container("workspace")
	status := func() client.AgentStatus {
		st, _ := api.AgentStatus(ctx, "stack")
		return st
	}
	waitUntil(t, 90*time.Second, "the workspace's agent ready", func() bool { return status().State == "ready" })
	waitFile(t, wsc, "/home/coder/.config/db-url", v1)

	// Kill the replica that holds the agent: it reconnects through haproxy
	// to the other and applies again (picking up v2, written meanwhile).
	var held string
	waitUntil(t, 30*time.Second, "a replica to log the agent's connection", func() bool { held = s.holder(ws.ID); return held != "" })
	other := map[string]string{"replica-a": "replica-b", "replica-b": "replica-a"}[held]
	if _, err := api.UpdateSecret(ctx, "me", "db-url", client.UpdateSecretRequest{Value: &v2}); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "kill", s.container(held))
	waitUntil(t, 90*time.Second, "the agent to connect to "+other, func() bool { return s.holder(ws.ID) == other })
	waitFile(t, wsc, "/home/coder/.config/db-url", v2)
	waitUntil(t, 30*time.Second, "the agent ready again", func() bool { st := status(); return st.State == "ready" && st.Connected })
	t.Logf("agent moved from %s to %s after docker kill", held, other)

	// Bring the killed replica back, then cut one replica off PostgreSQL.
	mustDocker(t, "start", s.container(held))
	waitUntil(t, 60*time.Second, "both replicas UP again", func() bool {
		st := s.backendStatus()
		return st["replica-a"] == "UP" && st["replica-b"] == "UP"
	})
	dbNet := s.project + "_db"
	cut := s.container("replica-b")
	mustDocker(t, "network", "disconnect", dbNet, cut)
	waitUntil(t, 30*time.Second, "replica-b DOWN in haproxy after losing PostgreSQL", func() bool {
		return strings.HasPrefix(s.backendStatus()["replica-b"], "DOWN")
	})
	if st := s.backendStatus()["replica-a"]; st != "UP" {
		t.Fatalf("replica-a is %q while replica-b is cut off", st)
	}
	// Every request through haproxy is served (by replica-a).
	for i := 0; i < 20; i++ {
		if _, err := api.Secrets(ctx, "me"); err != nil {
			t.Fatalf("request %d through haproxy with replica-b cut off: %v", i, err)
		}
	}
	v3 := canary("stack3")
	if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: "later", Value: v3, FilePath: "~/later"}); err != nil {
		t.Fatalf("create through haproxy with replica-b cut off: %v", err)
	}
	mustDocker(t, "network", "connect", dbNet, cut)
	waitUntil(t, 60*time.Second, "replica-b UP again after reconnecting", func() bool { return s.backendStatus()["replica-b"] == "UP" })

	// No value or token in any container's logs or configuration.
	for _, svc := range []string{"postgres", "replica-a", "replica-b", "haproxy", "workspace"} {
		noCanary(t, s.container(svc), v1, v2, v3, ws.AgentToken)
	}
}
