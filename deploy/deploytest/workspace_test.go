package deploytest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// coderUID is the workspace user of courier-workspace:dev
// (cmd/courier-agent/boot/Dockerfile: useradd coder, the first user).
const coderUID = 1000

// orphanScript is the template's startup script: it records what it found
// on disk (the file secret must be there before it runs), then leaves 50
// orphans — background sleeps whose parent shell exits at once — that the
// container's PID 1 must reap once they end.
const orphanScript = `set -e
{ cat ~/.config/app/token; echo; stat -c %a ~/.config/app/token; } > ~/seen-at-startup
for i in $(seq 50); do sh -c 'sleep 2 &'; done
echo orphans-started >> ~/seen-at-startup`

type workspaceFixture struct {
	url, session string
	api          *client.Client
	serverLog    *logBuf
	token        string // the agent token
	tokenPath    string
	name         string // the workspace's name
}

func newWorkspaceFixture(t *testing.T, name string) *workspaceFixture {
	t.Helper()
	f := &workspaceFixture{name: name}
	f.url, f.serverLog = startHostServer(t)
	f.api, f.session = firstUser(t, f.url)
	ws, err := f.api.CreateWorkspace(context.Background(), client.CreateWorkspaceRequest{Name: name, Owner: "ops",
		Template: client.Template{Scripts: []client.Script{{Name: "boot", Script: orphanScript, TimeoutSeconds: 60}}}})
	if err != nil {
		t.Fatal(err)
	}
	f.token = ws.AgentToken
	f.tokenPath = tokenFile(t, ws.AgentToken, coderUID)
	return f
}

func (f *workspaceFixture) secret(t *testing.T, name, value, env, file string) {
	t.Helper()
	if _, err := f.api.CreateSecret(context.Background(), "me", client.CreateSecretRequest{Name: name, Value: value, EnvName: env, FilePath: file}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func (f *workspaceFixture) update(t *testing.T, name, value string) {
	t.Helper()
	if _, err := f.api.UpdateSecret(context.Background(), "me", name, client.UpdateSecretRequest{Value: &value}); err != nil {
		t.Fatalf("update %s: %v", name, err)
	}
}

func (f *workspaceFixture) state(t *testing.T) string {
	w, err := f.api.Workspace(context.Background(), f.name)
	if err != nil {
		return "error: " + err.Error()
	}
	return w.State
}

// waitFile polls until path in the container holds want.
func waitFile(t *testing.T, container, path, want string) {
	t.Helper()
	var got string
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, _ = docker("exec", container, "cat", path)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s holds %q, want %q", path, container, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// processes lists the container's processes as "pid ppid stat comm".
func processes(t *testing.T, container string) []string {
	t.Helper()
	out := mustDocker(t, "exec", container, "ps", "-eo", "pid=,ppid=,stat=,comm=")
	var ps []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		ps = append(ps, strings.Join(strings.Fields(l), " "))
	}
	return ps
}

// waitNoOrphans waits until the startup script's sleeps have ended and
// checks that none of them is left a zombie, and that PID 1 is the agent.
func waitNoOrphans(t *testing.T, container string) {
	t.Helper()
	waitNoOrphansUnder(t, container, "courier-agent")
}

// waitNoOrphansUnder is waitNoOrphans with PID 1 named init.
func waitNoOrphansUnder(t *testing.T, container, init string) {
	t.Helper()
	waitUntil(t, 60*time.Second, "the startup script to leave its orphans", func() bool {
		out, _ := docker("exec", container, "cat", "/home/coder/seen-at-startup")
		return strings.Contains(out, "orphans-started")
	})
	var last []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		last = processes(t, container)
		busy := false
		for _, p := range last {
			f := strings.Fields(p)
			if len(f) >= 4 && (strings.HasPrefix(f[2], "Z") || f[3] == "sleep") {
				busy = true
			}
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphans not reaped: zombies or sleeps left in the container:\n%s", strings.Join(last, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.HasPrefix(last[0], "1 0 ") || !strings.HasSuffix(last[0], " "+init) {
		t.Fatalf("PID 1 is not %s:\n%s", init, strings.Join(last, "\n"))
	}
}

// noCanary fails if any of the values shows in the container's logs or
// configuration (docker inspect).
func noCanary(t *testing.T, container string, values ...string) {
	t.Helper()
	logs := mustDocker(t, "logs", container)
	inspect := mustDocker(t, "inspect", container)
	for _, v := range values {
		if strings.Contains(logs, v) {
			t.Errorf("docker logs %s shows a secret value or token", container)
		}
		if strings.Contains(inspect, v) {
			t.Errorf("docker inspect %s shows a secret value or token", container)
		}
	}
}

// noTempFiles fails if the container's filesystem holds a half-written
// file secret (the writer's .courier-tmp-*); docker diff works on a stopped
// container too.
func noTempFiles(t *testing.T, container string) {
	t.Helper()
	if out := mustDocker(t, "diff", container); strings.Contains(out, ".courier-tmp-") {
		t.Fatalf("temp files left in %s:\n%s", container, out)
	}
}

// TestWorkspaceContainer runs the workspace image as an operator would,
// against a control plane on the host (host network: the container reaches
// 127.0.0.1): secrets on disk before the startup script, the env secret in
// `courier ssh`, orphans reaped by PID 1, docker stop a clean exit 0,
// restart and kill -9 + start re-applying the latest values.
func TestWorkspaceContainer(t *testing.T) {
	needImages(t, workspaceImage)
	f := newWorkspaceFixture(t, "box")
	v1, v2, v3, envV := canary("file1"), canary("file2"), canary("file3"), canary("env")
	f.secret(t, "app-token", v1, "", "~/.config/app/token")
	f.secret(t, "api-key", envV, "X_SECRET", "")

	name := uniq("ws")
	removeContainer(t, name)
	started := time.Now()
	mustDocker(t, "run", "-d", "--name", name, "--network", "host", "--stop-timeout", "20",
		"-v", f.tokenPath+":/run/secrets/courier-agent-token:ro",
		"-e", "COURIER_AGENT_URL="+f.url, workspaceImage, "--max-backoff", "2s")
	waitUntil(t, 60*time.Second, "the agent to report ready", func() bool { return f.state(t) == "ready" })
	t.Logf("docker run to the agent ready: %s", time.Since(started).Round(time.Millisecond))

	// (1) The file secret was on disk, 0600, when the startup script ran.
	waitFile(t, name, "/home/coder/seen-at-startup", v1+"\n600\norphans-started\n")
	// (2) PID 1 reaped the 50 orphans the script left.
	waitNoOrphans(t, name)
	// (3) The env secret: every process the agent starts has it, so
	// `courier ssh` does; a `docker exec` login shell (which the engine
	// starts, not the agent) has it from the image's env file, sourced
	// through /etc/profile.d.
	if out, err := courierSSH(t, f.url, f.session, f.name, `echo "X=$X_SECRET"`); err != nil || out != "X="+envV+"\n" {
		t.Fatalf("courier ssh sees %q (%v), want the env secret", out, err)
	}
	if out := mustDocker(t, "exec", "-u", "coder", name, "bash", "-lc", `echo "X=$X_SECRET"; cat ~/.config/app/token`); out != "X="+envV+"\n"+v1 {
		t.Fatalf("docker exec bash -lc: %q, want the env secret and the file secret", out)
	}
	if out := mustDocker(t, "exec", "-u", "coder", name, "stat", "-c", "%a", "/home/coder/.config/courier/env"); strings.TrimSpace(out) != "600" {
		t.Fatalf("the env file's mode is %q, want 600", out)
	}
	noCanary(t, name, v1, envV, f.token)

	// (4) docker stop: SIGTERM to PID 1, forwarded to the agent, which
	// reports off and exits 0 well within the 20 s grace period.
	start := time.Now()
	mustDocker(t, "stop", name)
	took := time.Since(start)
	if code := strings.TrimSpace(mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		t.Fatalf("exit code %s after docker stop, want 0", code)
	}
	if took > 15*time.Second {
		t.Fatalf("docker stop took %s: the agent did not exit on SIGTERM (docker killed it)", took)
	}
	t.Logf("docker stop: exit 0 in %s", took.Round(time.Millisecond))
	waitUntil(t, 10*time.Second, "the workspace to be off", func() bool { return f.state(t) == "off" })
	noTempFiles(t, name)

	// (5) docker restart (here: start after the stop, then restart)
	// re-applies the current value.
	f.update(t, "app-token", v2)
	mustDocker(t, "start", name)
	waitFile(t, name, "/home/coder/.config/app/token", v2)
	f.update(t, "app-token", v3)
	mustDocker(t, "restart", name)
	waitFile(t, name, "/home/coder/.config/app/token", v3)
	waitUntil(t, 60*time.Second, "ready after restart", func() bool { return f.state(t) == "ready" })

	// (6) kill -9 (no chance to clean up), then start: everything is
	// re-applied, nothing lost, no temp file left.
	v4 := canary("file4")
	f.update(t, "app-token", v4)
	mustDocker(t, "kill", "-s", "KILL", name)
	if code := strings.TrimSpace(mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != strconv.Itoa(128+9) {
		t.Fatalf("exit code %s after kill -9", code)
	}
	mustDocker(t, "start", name)
	waitFile(t, name, "/home/coder/.config/app/token", v4)
	waitUntil(t, 60*time.Second, "ready after kill -9", func() bool { return f.state(t) == "ready" })
	if out, err := courierSSH(t, f.url, f.session, f.name, `echo "X=$X_SECRET"; stat -c %a ~/.config/app/token`); err != nil || out != "X="+envV+"\n600\n" {
		t.Fatalf("after kill -9 and start, courier ssh sees %q (%v)", out, err)
	}
	noTempFiles(t, name)
	noCanary(t, name, v1, v2, v3, v4, envV, f.token)
	if strings.Contains(f.serverLog.String(), envV) || strings.Contains(f.serverLog.String(), v4) {
		t.Fatal("the control plane logged a secret value")
	}
}

// TestWorkspaceHardened runs the workspace image with a read-only root, a
// tmpfs home, every capability dropped, no-new-privileges and a numeric
// non-root user: the agent needs none of them.
func TestWorkspaceHardened(t *testing.T) {
	needImages(t, workspaceImage)
	f := newWorkspaceFixture(t, "locked")
	v, envV := canary("hard-file"), canary("hard-env")
	f.secret(t, "app-token", v, "", "~/.config/app/token")
	f.secret(t, "api-key", envV, "X_SECRET", "")

	name := uniq("hard")
	removeContainer(t, name)
	uid := strconv.Itoa(coderUID)
	mustDocker(t, "run", "-d", "--name", name, "--network", "host",
		"--read-only", "--tmpfs", "/home/coder:rw,nosuid,nodev,uid="+uid+",gid="+uid+",mode=0700", "--tmpfs", "/tmp:rw,nosuid,nodev",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", uid+":"+uid,
		"-v", f.tokenPath+":/run/secrets/courier-agent-token:ro",
		"-e", "COURIER_AGENT_URL="+f.url, workspaceImage)
	waitUntil(t, 60*time.Second, "the hardened agent to report ready", func() bool { return f.state(t) == "ready" })
	waitFile(t, name, "/home/coder/seen-at-startup", v+"\n600\norphans-started\n")
	waitNoOrphans(t, name)
	if out, err := courierSSH(t, f.url, f.session, f.name, `echo "X=$X_SECRET"; touch /usr/x 2>&1 || true`); err != nil ||
		!strings.HasPrefix(out, "X="+envV+"\n") || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("courier ssh in the hardened container: %q (%v)", out, err)
	}
	mustDocker(t, "stop", name)
	if code := strings.TrimSpace(mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		t.Fatalf("exit code %s after docker stop, want 0", code)
	}
	noCanary(t, name, v, envV, f.token)
}

// TestWorkspaceTokenFromEnv: given by COURIER_AGENT_TOKEN (which the
// container's configuration keeps: the README says to prefer a file), the
// token still reaches the agent through PID 1 — dropped from PID 1's
// environment by tokenenv's re-exec and handed to the agent child on an
// inherited pipe — and is in no process's environment in the container.
func TestWorkspaceTokenFromEnv(t *testing.T) {
	needImages(t, workspaceImage)
	f := newWorkspaceFixture(t, "envtoken")
	v := canary("envtoken-file")
	f.secret(t, "app-token", v, "", "~/.config/app/token")
	name := uniq("envtok")
	removeContainer(t, name)
	mustDocker(t, "run", "-d", "--name", name, "--network", "host",
		"-e", "COURIER_AGENT_TOKEN_FILE=", "-e", "COURIER_AGENT_TOKEN="+f.token,
		"-e", "COURIER_AGENT_URL="+f.url, workspaceImage)
	waitUntil(t, 60*time.Second, "the agent to report ready", func() bool { return f.state(t) == "ready" })
	waitFile(t, name, "/home/coder/.config/app/token", v)
	// The agents' environments (PID 1 and its child); a `docker exec`
	// process would have the token, from the container's configuration.
	var agents []string
	ps := processes(t, name)
	for _, p := range ps {
		if strings.HasSuffix(p, " courier-agent") {
			agents = append(agents, strings.Fields(p)[0])
		}
	}
	if len(agents) != 2 || agents[0] != "1" {
		t.Fatalf("want PID 1 and its agent child, got:\n%s", strings.Join(ps, "\n"))
	}
	for _, pid := range agents {
		environ := mustDocker(t, "exec", name, "sh", "-c", `tr '\0' '\n' < /proc/`+pid+`/environ`)
		if strings.Contains(environ, f.token) {
			t.Fatalf("the agent token is in the environment of courier-agent pid %s", pid)
		}
		if !strings.Contains(environ, "COURIER_AGENT_URL=") {
			t.Fatalf("read no environment of pid %s: %q", pid, environ)
		}
	}
	mustDocker(t, "stop", name)
	if code := strings.TrimSpace(mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		t.Fatalf("exit code %s after docker stop, want 0", code)
	}
	if logs := mustDocker(t, "logs", name); strings.Contains(logs, f.token) || strings.Contains(logs, v) {
		t.Fatal("docker logs show the token or a value")
	}
}

// TestWorkspaceUnderDockerInit: with `docker run --init` Docker's own init
// is PID 1, the agent is not (so its init stays off), and docker stop still
// ends with the agent's clean exit 0.
func TestWorkspaceUnderDockerInit(t *testing.T) {
	needImages(t, workspaceImage)
	f := newWorkspaceFixture(t, "dockerinit")
	v := canary("init-file")
	f.secret(t, "app-token", v, "", "~/.config/app/token")
	name := uniq("init")
	removeContainer(t, name)
	mustDocker(t, "run", "-d", "--init", "--name", name, "--network", "host",
		"-v", f.tokenPath+":/run/secrets/courier-agent-token:ro",
		"-e", "COURIER_AGENT_URL="+f.url, workspaceImage)
	waitUntil(t, 60*time.Second, "the agent to report ready", func() bool { return f.state(t) == "ready" })
	waitFile(t, name, "/home/coder/seen-at-startup", v+"\n600\norphans-started\n")
	waitNoOrphansUnder(t, name, "docker-init")
	agents := 0
	for _, p := range processes(t, name) {
		if strings.HasSuffix(p, " courier-agent") {
			agents++
		}
	}
	if agents != 1 {
		t.Fatalf("want one courier-agent (not PID 1, so no init of its own), got %d", agents)
	}
	mustDocker(t, "stop", name)
	if code := strings.TrimSpace(mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		t.Fatalf("exit code %s after docker stop, want 0", code)
	}
}
