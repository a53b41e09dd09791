package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// freeAddr picks a free loopback address for a server that must know its
// own address before it starts (its --advertise-url).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// courierSSH runs the real `courier ssh WORKSPACE -- script` against the
// control plane at url and returns its output (the workspace's shell runs
// the script).
func courierSSH(t *testing.T, url, token, workspace, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, courierBinary(t), "ssh", workspace, "--", script)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(),
		"COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("courier ssh through %s: %v\n%s", url, err, out)
	}
	return string(out)
}

// TestReplicasRelayAndLiveFiles runs two `courier server` processes on one
// PostgreSQL behind haproxy, sharing a replica secret and each advertising
// its address, and a real agent with --live-files connected through the
// balancer to one of them (A):
//   - `courier ssh` reaches the agent through A and through B (relayed by
//     B to A), and through the balancer;
//   - a secret updated through B reaches the agent on A (LISTEN/NOTIFY):
//     the file on disk changes without a reconnect, while a running app's
//     env keeps the old value (R4); a new SSH session gets the new env.
func TestReplicasRelayAndLiveFiles(t *testing.T) {
	haproxy := haproxyBinary(t)
	pgURL := pgtest.URL(t)
	unused := filepath.Join(t.TempDir(), "unused")
	secretFile := writeReplicaSecret(t, replicaSecretCanary)
	env := []string{"COURIER_POSTGRES_URL=" + pgURL, "COURIER_REPLICA_SECRET_FILE=" + secretFile}
	logs := [2]*syncBuffer{{}, {}}
	var reps [2]*proc
	for i := range reps {
		addr := freeAddr(t)
		reps[i] = startServerWith(t, logs[i], env, "--data-dir", unused,
			"--listen", addr, "--advertise-url", "http://"+addr)
	}
	lb := startHAProxy(t, haproxy, reps[0], reps[1])
	token := firstUserToken(t, lb)

	home := t.TempDir()
	appOut := filepath.Join(home, "app.txt")
	app := fmt.Sprintf(`i=0; while true; do i=$((i+1)); printf '%%s %%s\n' "$i" "$TOK" > %[1]s.tmp && mv %[1]s.tmp %[1]s; sleep 0.05; done`, appOut)
	var ws CreatedWorkspaceResponse
	st, b := request(t, "POST", lb+"/api/v2/workspaces", token, map[string]any{"name": "dev", "owner": "ada",
		"template": map[string]any{"apps": []map[string]string{{"slug": "envprint", "command": app}}}})
	if st != 201 || json.Unmarshal(b, &ws) != nil {
		t.Fatalf("create workspace: %d %s", st, b)
	}
	if st, b := request(t, "POST", lb+"/api/v2/users/me/secrets", token,
		map[string]string{"name": "tok", "value": "one", "env_name": "TOK", "file_path": "~/tok.txt"}); st != 201 {
		t.Fatalf("create secret: %d %s", st, b)
	}
	runLiveFilesAgent(t, lb, ws.AgentToken, home)
	fileIs := func(want string) func() bool {
		return func() bool {
			b, err := os.ReadFile(filepath.Join(home, "tok.txt"))
			return err == nil && string(b) == want
		}
	}
	// appLine is the app's last line: a counter and the TOK it started with.
	appLine := func() (int, string) {
		b, err := os.ReadFile(appOut)
		if err != nil {
			return 0, ""
		}
		n, v, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		i, _ := strconv.Atoi(n)
		return i, v
	}
	waitFor(t, "the agent's first apply", fileIs("one"))
	waitFor(t, "the app to run with the secret", func() bool { _, v := appLine(); return v == "one" })
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

	// (1) SSH through the holder, through the other replica (relayed) and
	// through the balancer all reach the agent.
	for name, url := range map[string]string{"holder": reps[holder].url, "other replica": reps[other].url, "balancer": lb} {
		if out := courierSSH(t, url, token, "dev", `echo "reached $(cat ~/tok.txt)"`); !strings.Contains(out, "reached one") {
			t.Fatalf("ssh through the %s: %q", name, out)
		}
	}
	if !strings.Contains(logs[other].String(), "relaying ssh to the replica holding the agent") {
		t.Fatal("the other replica did not relay the session")
	}
	// Through the relay, SSH_CONNECTION still names the real client and
	// the replica the client reached (not the relaying hop).
	_, otherPort, _ := net.SplitHostPort(strings.TrimPrefix(reps[other].url, "http://"))
	conn := strings.Fields(courierSSH(t, reps[other].url, token, "dev", `echo "$SSH_CONNECTION"`))
	if len(conn) != 4 || conn[0] != "127.0.0.1" || conn[1] == "0" || conn[3] != otherPort {
		t.Errorf("relayed SSH_CONNECTION = %q, want the client and the replica it reached (port %s)", conn, otherPort)
	}

	// (2) A change through the other replica reaches the agent on the
	// holder; live files rewrite the file, the running app keeps its env.
	start := time.Now()
	if st, b := request(t, "PATCH", reps[other].url+"/api/v2/users/me/secrets/tok", token, map[string]string{"value": "two"}); st != 200 {
		t.Fatalf("update through the other replica: %d %s", st, b)
	}
	waitFor(t, "the live re-apply of the file", fileIs("two"))
	t.Logf("a change through replica %d reached the agent on replica %d and was on disk after %v", other, holder, time.Since(start))
	n0, _ := appLine()
	waitFor(t, "the app to loop twice more", func() bool { n, _ := appLine(); return n >= n0+2 })
	if _, v := appLine(); v != "one" {
		t.Fatalf("the running app's TOK is %q after the live apply, want the %q it started with", v, "one")
	}
	if agentsConnected(t, reps[holder]) != 1 {
		t.Fatal("the agent left its replica: the change came by reconnecting, not by notification")
	}
	if out := courierSSH(t, reps[other].url, token, "dev", `echo "env $TOK"`); !strings.Contains(out, "env two") {
		t.Fatalf("a new session after the live apply: %q, want the new env", out)
	}
	for i, l := range logs {
		for _, leak := range []string{replicaSecretCanary, "courier:courier@"} {
			if strings.Contains(l.String(), leak) {
				t.Fatalf("replica %d's log contains %q", i, leak)
			}
		}
	}
}
