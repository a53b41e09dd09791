package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent"
)

// pgCluster is a PostgreSQL cluster of its own, run by the test (as the
// "postgres" user when the test runs as root: PostgreSQL refuses root).
type pgCluster struct {
	t    *testing.T
	bin  string
	dir  string
	port int
}

// pgBinDir returns Debian's PostgreSQL server binaries, failing under CI
// when they are missing and skipping elsewhere.
func pgBinDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no PostgreSQL server binaries; CI installs Debian's postgresql package")
	}
	t.Skip("needs PostgreSQL's server binaries (apt-get install postgresql)")
	return ""
}

// asPostgres runs a PostgreSQL program as its owner.
func (c *pgCluster) run(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, name)}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) start(extra ...string) {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 %s", c.port, c.dir, strings.Join(extra, " "))
	c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "-o", opts, "start")
}

func (c *pgCluster) stopImmediate() { c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop") }

// newPGDir makes a directory the postgres user owns.
func newPGDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "courier-pgfo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrimaryAndStandby starts a primary and a streaming standby of it
// that the primary waits for on every commit (synchronous_commit on with
// the standby named in synchronous_standby_names): an acknowledged write
// is on both.
func startPrimaryAndStandby(t *testing.T) (primary, standby *pgCluster) {
	t.Helper()
	bin := pgBinDir(t)
	if os.Geteuid() != 0 && os.Getenv("CI") != "" {
		t.Fatal("CI runs as root")
	}
	primary = &pgCluster{t: t, bin: bin, dir: newPGDir(t), port: freePort(t)}
	primary.run("initdb", "-D", primary.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(primary.data(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := []string{"-c wal_level=replica", "-c max_wal_senders=5", "-c synchronous_commit=on",
		"-c synchronous_standby_names=standby1", "-c max_connections=100"}
	primary.start(settings...)
	t.Cleanup(func() {
		cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", primary.data(), "-m", "immediate", "stop")
		_ = cmd.Run()
	})
	standby = &pgCluster{t: t, bin: bin, dir: newPGDir(t), port: freePort(t)}
	standby.run("pg_basebackup", "-h", "127.0.0.1", "-p", fmt.Sprint(primary.port), "-U", "postgres",
		"-D", standby.data(), "-R", "-X", "stream", "-d", "application_name=standby1")
	// Not synchronous_standby_names: once promoted, the standby would wait
	// for a standby of its own that does not exist, and every commit would
	// hang (committed locally, never acknowledged).
	standby.start("-c wal_level=replica", "-c max_wal_senders=5", "-c max_connections=100")
	t.Cleanup(func() {
		cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", standby.data(), "-m", "immediate", "stop")
		_ = cmd.Run()
	})
	return primary, standby
}

// timedCreate creates a secret with a 10 s client timeout (0 on timeout or
// a transport error): a request during a failover must not hang the test.
func timedCreate(t *testing.T, base, token, name string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest("POST", base+"/api/v2/users/me/secrets", strings.NewReader(`{"name":"`+name+`","value":"v"}`))
	req.Header.Set("Coder-Session-Token", token)
	resp, err := c.Do(req)
	if err != nil {
		t.Logf("create during the failover: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// runLiveFilesAgent runs a real in-process agent with live files against
// url until the test ends.
func runLiveFilesAgent(t *testing.T, url, token, home string) {
	t.Helper()
	ag, err := agent.New(agent.Config{URL: url, Token: token, Home: home, DataDir: filepath.Join(home, ".agent"),
		Shell: "/bin/sh", Base: []string{"PATH=" + os.Getenv("PATH")}, Version: "v9.8.7-test", LiveFiles: true,
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = ag.Close()
		if err := <-agentDone; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
}

// TestPostgresFailover: two real PostgreSQL clusters, a primary and its
// synchronous streaming standby, and a control plane on the multi-host
// URL (target_session_attrs=read-write) with an agent on live files. The
// primary is killed (immediate stop, as a crash) and the standby
// promoted: writes resume on the new primary, every write acknowledged
// before the crash is there, and change notifications reach the agent
// again (LISTEN re-established on the new primary). The time from the
// crash to the first successful write is logged (BENCHMARKS.md).
func TestPostgresFailover(t *testing.T) {
	primary, standby := startPrimaryAndStandby(t)
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		primary.port, standby.port)
	logs := &syncBuffer{}
	p := startServerWith(t, logs, []string{"COURIER_POSTGRES_URL=" + url}, "--data-dir", filepath.Join(t.TempDir(), "unused"))
	defer p.kill()
	token := firstUserToken(t, p.url)

	home := t.TempDir()
	var ws CreatedWorkspaceResponse
	st, b := request(t, "POST", p.url+"/api/v2/workspaces", token, map[string]any{"name": "dev", "owner": "ada"})
	if st != 201 || json.Unmarshal(b, &ws) != nil {
		t.Fatalf("create workspace: %d %s", st, b)
	}
	if st, b := request(t, "POST", p.url+"/api/v2/users/me/secrets", token,
		map[string]string{"name": "tok", "value": "one", "file_path": "~/tok.txt"}); st != 201 {
		t.Fatalf("create secret: %d %s", st, b)
	}
	runLiveFilesAgent(t, p.url, ws.AgentToken, home)
	fileIs := func(want string) func() bool {
		return func() bool {
			b, err := os.ReadFile(filepath.Join(home, "tok.txt"))
			return err == nil && string(b) == want
		}
	}
	waitFor(t, "the agent's first apply", fileIs("one"))

	// Acknowledged writes before the crash.
	var acked []string
	for i := range 20 {
		name := fmt.Sprint("acked-", i)
		if st, b := request(t, "POST", p.url+"/api/v2/users/me/secrets", token, map[string]string{"name": name, "value": "v"}); st != 201 {
			t.Fatalf("create %s: %d %s", name, st, b)
		}
		acked = append(acked, name)
	}

	crash := time.Now()
	primary.stopImmediate()
	standby.run("pg_ctl", "-D", standby.data(), "-w", "promote")
	var recovered time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for attempt := 0; ; attempt++ {
		st := timedCreate(t, p.url, token, fmt.Sprint("after-failover-", attempt))
		if st == 201 {
			recovered = time.Since(crash)
			break
		}
		if st != 503 && st != 0 {
			t.Fatalf("a write during the failover answered %d; want 503 until the new primary serves", st)
		}
		if time.Now().After(deadline) {
			t.Fatal("writes did not resume on the promoted standby within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("writes resumed %v after the primary crashed (promotion included)", recovered.Round(time.Millisecond))

	names := strings.Join(listNames(t, p.url, token), " ")
	for _, n := range acked {
		if !strings.Contains(names, n+"=") {
			t.Errorf("acknowledged secret %s is missing after the failover: %s", n, names)
		}
	}
	// A change after the failover reaches the agent: the notifier listens
	// on the new primary.
	if st, b := request(t, "PATCH", p.url+"/api/v2/users/me/secrets/tok", token, map[string]string{"value": "two"}); st != 200 {
		t.Fatalf("update after the failover: %d %s", st, b)
	}
	waitFor(t, "the agent to hear of a change after the failover", fileIs("two"))
}
