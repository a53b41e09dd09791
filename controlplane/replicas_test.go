package controlplane

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// haproxyBinary finds Debian's haproxy: the test skips without it, and
// fails under CI, which installs it.
func haproxyBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("haproxy")
	if err == nil {
		return p
	}
	const how = "needs haproxy (Debian's haproxy package; .ci/run installs it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

// startHAProxy runs haproxy in front of the replicas (round robin, health
// checks on /healthz every 100 ms, websockets passed through) and returns
// its URL once it answers.
func startHAProxy(t *testing.T, bin string, replicas ...*proc) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := l.Addr().String()
	_ = l.Close()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
	maxconn 2000
defaults
	mode http
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout tunnel 1h
	retries 3
	option redispatch
frontend courier
	bind %s
	default_backend replicas
backend replicas
	balance roundrobin
	option httpchk GET /healthz
	default-server inter 100ms fall 1 rise 2
`, front)
	for i, p := range replicas {
		fmt.Fprintf(&cfg, "\tserver r%d %s check\n", i, strings.TrimPrefix(p.url, "http://"))
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + front
	waitFor(t, "haproxy to serve every replica", func() bool {
		st, _ := request(t, "GET", url+"/healthz", "", nil)
		return st == 200 && !strings.Contains(out.String(), "DOWN")
	})
	return url
}

// agentsConnected reads a replica's courier_agents_connected gauge.
func agentsConnected(t *testing.T, p *proc) int {
	t.Helper()
	st, b := request(t, "GET", p.url+"/metrics", "", nil)
	if st != 200 {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "courier_agents_connected "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}

// createsServed reads how many secret creates a replica answered.
func createsServed(t *testing.T, p *proc) int {
	t.Helper()
	_, b := request(t, "GET", p.url+"/metrics", "", nil)
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "courier_http_requests_total{") && strings.Contains(line, `POST /api/v2/users/{user}/secrets"`) {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[len(f)-1])
			total += n
		}
	}
	return total
}

// TestReplicasBehindHAProxy runs two `courier server` processes on one
// PostgreSQL database behind a real haproxy:
//   - 100 parallel creates through the balancer, served by both replicas,
//     stop at exactly 50 (R9), and 20 parallel creates of one env name
//     store one;
//   - a real agent connected through the balancer; the replica holding it is
//     killed (SIGKILL) while writes go on: every acknowledged write is
//     there afterwards, and the agent is back through the other replica
//     and has re-applied (a value changed before the kill is on disk).
func TestReplicasBehindHAProxy(t *testing.T) {
	haproxy := haproxyBinary(t)
	pgURL := pgtest.URL(t)
	unused := filepath.Join(t.TempDir(), "unused")
	env := []string{"COURIER_POSTGRES_URL=" + pgURL}
	logs := [2]*syncBuffer{{}, {}}
	reps := [2]*proc{
		startServerWith(t, logs[0], env, "--data-dir", unused),
		startServerWith(t, logs[1], env, "--data-dir", unused),
	}
	lb := startHAProxy(t, haproxy, reps[0], reps[1])
	token := firstUserToken(t, lb)
	secrets := lb + "/api/v2/users/me/secrets"

	// (1) The cap across replicas.
	var wg sync.WaitGroup
	var created, refused atomic.Int32
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch st, b := request(t, "POST", secrets, token, secretBody(fmt.Sprint("cap-", i))); st {
			case 201:
				created.Add(1)
			case 400:
				refused.Add(1)
			default:
				t.Errorf("create %d: %d %s", i, st, b)
			}
		}()
	}
	wg.Wait()
	if n := len(listNames(t, lb, token)); created.Load() != 50 || refused.Load() != 50 || n != 50 {
		t.Fatalf("created %d, refused %d, stored %d; want 50, 50, 50", created.Load(), refused.Load(), n)
	}
	for i, p := range reps {
		if createsServed(t, p) == 0 {
			t.Fatalf("replica %d served no create: the balancer did not split the load", i)
		}
	}
	for _, n := range listNames(t, lb, token) {
		if st, b := request(t, "DELETE", secrets+"/"+strings.SplitN(n, "=", 2)[0], token, nil); st != 204 {
			t.Fatalf("delete: %d %s", st, b)
		}
	}
	// (2) One env name, twenty parallel creates, two replicas: one wins.
	var won atomic.Int32
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch st, b := request(t, "POST", secrets, token, secretBody(fmt.Sprint("env-", i), "env_name", "ONE_ENV")); st {
			case 201:
				won.Add(1)
			case 409:
			default:
				t.Errorf("create %d: %d %s", i, st, b)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d secrets created with one env name, want 1", won.Load())
	}

	// (3) A real agent through the balancer.
	var ws CreatedWorkspaceResponse
	st, b := request(t, "POST", lb+"/api/v2/workspaces", token, map[string]any{"name": "dev", "owner": "ada"})
	if st != 201 || json.Unmarshal(b, &ws) != nil {
		t.Fatalf("create workspace: %d %s", st, b)
	}
	if st, b := request(t, "POST", secrets, token, map[string]string{"name": "cfg", "value": "one", "file_path": "~/cfg.txt"}); st != 201 {
		t.Fatalf("create file secret: %d %s", st, b)
	}
	home := t.TempDir()
	runAgentBackoff(t, lb, ws.AgentToken, home, 300*time.Millisecond)
	onDisk := func(want string) func() bool {
		return func() bool {
			b, err := os.ReadFile(filepath.Join(home, "cfg.txt"))
			return err == nil && string(b) == want
		}
	}
	waitFor(t, "the agent's first apply", onDisk("one"))
	holder := -1
	waitFor(t, "a replica to report the agent", func() bool {
		for i, p := range reps {
			if agentsConnected(t, p) == 1 {
				holder = i
			}
		}
		return holder >= 0
	})
	other := 1 - holder
	// Changed now, applied at the agent's next connection (R3).
	if st, b := request(t, "PATCH", secrets+"/cfg", token, map[string]string{"value": "two"}); st != 200 {
		t.Fatalf("update: %d %s", st, b)
	}

	var (
		mu    sync.Mutex
		acked []string
		kill  = make(chan struct{})
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				name := fmt.Sprintf("during-%d-%d", w, i)
				switch st, b := request(t, "POST", secrets, token, secretBody(name)); st {
				case 201:
					mu.Lock()
					acked = append(acked, name)
					if len(acked) == 8 {
						close(kill)
					}
					mu.Unlock()
				case 400, 409:
					t.Errorf("create %s refused: %d %s", name, st, b)
				default: // lost with the replica: not acknowledged
				}
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	select {
	case <-kill:
	case <-writersDone:
		t.Fatalf("only %d of 40 writes acknowledged before the kill", len(acked))
	}
	reps[holder].kill()
	<-writersDone

	waitFor(t, "the agent to re-apply through the other replica", onDisk("two"))
	waitFor(t, "the other replica to hold the agent", func() bool { return agentsConnected(t, reps[other]) == 1 })
	have := map[string]bool{}
	for _, n := range listNames(t, lb, token) {
		have[strings.SplitN(n, "=", 2)[0]] = true
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged write %s lost with its replica", name)
		}
	}
	var status AgentStatusResponse
	st, b = request(t, "GET", lb+"/api/v2/workspaces/"+ws.ID+"/agent", token, nil)
	if st != 200 || json.Unmarshal(b, &status) != nil || !status.Connected || status.LastApply == nil {
		t.Fatalf("agent status after the kill: %d %s", st, b)
	}
	t.Logf("agent moved from replica %d to %d; %d writes acknowledged around the kill", holder, other, len(acked))
	for i, l := range logs {
		for _, leak := range []string{canary, "courier:courier@"} {
			if strings.Contains(l.String(), leak) {
				t.Fatalf("replica %d's log contains %q", i, leak)
			}
		}
	}
}
