package controlplane

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// replicaSecretCanary is the shared replica secret of these tests; it must
// never reach a log line or a response.
const replicaSecretCanary = "REPLICA-SECRET-CANARY-0123456789abcdef"

// writeReplicaSecret writes the shared secret to a 0600 file.
func writeReplicaSecret(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "replica.secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// asReplica makes a test server a replica on pgURL that advertises its
// own (pre-picked) address.
func asReplica(t *testing.T, pgURL, secretFile string) func(*Config) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return func(c *Config) {
		c.PostgresURL, c.Listen, c.AdvertiseURL, c.ReplicaSecretFile = pgURL, addr, "http://"+addr, secretFile
	}
}

// sshEcho opens an SSH websocket to workspace "dev" through ts and checks
// that bytes come back from the (echoing) fake agent.
func sshEcho(t *testing.T, ts *testServer, token string) {
	t.Helper()
	ws, res, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+"/api/v2/workspaces/dev/ssh",
		&websocket.DialOptions{HTTPHeader: http.Header{HeaderSessionToken: {token}}})
	if err != nil {
		body := ""
		if res != nil {
			b, _ := io.ReadAll(res.Body)
			body = strconv.Itoa(res.StatusCode) + " " + string(b)
		}
		t.Fatalf("ssh dial through %s: %v %s", ts.URL(), err, body)
	}
	conn := websocket.NetConn(t.Context(), ws, websocket.MessageBinary)
	defer conn.Close()
	msg := []byte("SSH-2.0-OpenSSH_9.6\r\n")
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through %s: %q, %v", ts.URL(), got, err)
	}
}

// TestSSHRelayedToTheAgentsReplica: an agent connected to replica A; an
// SSH session through replica B is relayed to A (B finds A in the
// database) and reaches the agent; a third replica starting on the same
// database leaves A's agent connected. A replica without the shared
// secret refuses to relay (503 with an explanation), and the internal
// endpoint refuses requests without a valid, fresh signature.
func TestSSHRelayedToTheAgentsReplica(t *testing.T) {
	pgURL := pgtest.URL(t)
	secret := writeReplicaSecret(t, replicaSecretCanary)
	a := newTestServer(t, asReplica(t, pgURL, secret))
	b := newTestServer(t, asReplica(t, pgURL, secret))
	p := a.setup()
	var created CreatedWorkspaceResponse
	a.want(a.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": map[string]any{}}), 201).json(t, &created)
	dialAgent(t, a, created.AgentToken)
	var st AgentStatusResponse
	waitFor(t, "the agent's connection to be recorded", func() bool {
		a.want(a.do("GET", "/api/v2/workspaces/dev/agent", p.alice, nil), 200).json(t, &st)
		return st.Connected
	})

	sshEcho(t, a, p.alice) // the replica holding the agent
	sshEcho(t, b, p.alice) // relayed from B to A
	if !strings.Contains(b.logs.String(), "relaying ssh to the replica holding the agent") ||
		!strings.Contains(a.logs.String(), "relayed ssh session started") {
		t.Fatal("the session through B was not relayed through A")
	}
	// Ownership is checked by the front replica before any relay.
	b.want(b.do("GET", "/api/v2/workspaces/"+created.ID+"/ssh", p.admin, nil), 403)

	// A third replica starting on the database resets no live replica's
	// agent.
	c := newTestServer(t, asReplica(t, pgURL, ""))
	c.want(c.do("GET", "/api/v2/workspaces/dev/agent", p.alice, nil), 200).json(t, &st)
	if !st.Connected {
		t.Fatalf("a replica's start marked another replica's agent disconnected: %+v", st)
	}
	// C has no secret: it says why it cannot relay.
	e := c.want(c.do("GET", "/api/v2/workspaces/dev/ssh", p.alice, nil), 503).errResp(t)
	if !strings.Contains(e.Message, "another control-plane replica") {
		t.Fatalf("503 without a secret: %q", e.Message)
	}

	// The internal endpoint: no, bad or stale signatures are refused; a
	// replica without a secret refuses everything.
	relay := func(ts *testServer, sig string, at time.Time) int {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL()+"/internal/v1/relay/ssh/"+created.ID, nil)
		req.Header.Set(headerRelayTime, strconv.FormatInt(at.Unix(), 10))
		if sig != "" {
			req.Header.Set(headerRelaySignature, sig)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if bytes.Contains(body, []byte(replicaSecretCanary)) {
			t.Fatal("a relay response carries the replica secret")
		}
		return res.StatusCode
	}
	now := time.Now()
	good := func(at time.Time) string { return relaySignature([]byte(replicaSecretCanary), created.ID, at.Unix()) }
	for name, tc := range map[string]struct {
		sig  string
		at   time.Time
		want int
	}{
		"no signature":    {"", now, 401},
		"wrong secret":    {relaySignature([]byte(strings.Repeat("x", 40)), created.ID, now.Unix()), now, 401},
		"other workspace": {relaySignature([]byte(replicaSecretCanary), "other", now.Unix()), now, 401},
		"stale":           {good(now.Add(-5 * time.Minute)), now.Add(-5 * time.Minute), 401},
		"from the future": {good(now.Add(5 * time.Minute)), now.Add(5 * time.Minute), 401},
		"not an upgrade":  {good(now), now, 426},
	} {
		if got := relay(a, tc.sig, tc.at); got != tc.want {
			t.Errorf("%s: %d, want %d", name, got, tc.want)
		}
	}
	if got := relay(c, good(now), now); got != 403 {
		t.Errorf("a replica without a secret answered %d to a relay, want 403", got)
	}
	// B does not hold the agent: a valid relay to it finds none.
	if got := relay(b, good(now), now); got != 503 {
		t.Errorf("relay to a replica without the agent: %d, want 503", got)
	}
	for name, ts := range map[string]*testServer{"A": a, "B": b, "C": c} {
		if strings.Contains(ts.logs.String(), replicaSecretCanary) || strings.Contains(ts.allBodies(), replicaSecretCanary) {
			t.Fatalf("replica %s leaked the replica secret", name)
		}
	}
}

// TestReplicaConfig: a bad advertise URL or a short secret is refused at
// start, without echoing the secret.
func TestReplicaConfig(t *testing.T) {
	for _, u := range []string{"10.0.0.5:8080", "ftp://x", "http://", "http://u:p@h", "http://h?x=1"} {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.AdvertiseURL = t.TempDir(), u
		if err := cfg.Validate(); err == nil {
			t.Errorf("advertise URL %q accepted", u)
		}
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.ReplicaSecretFile = writeReplicaSecret(t, "SHORT-CANARY")
	if _, err := New(cfg, nil); err == nil || strings.Contains(err.Error(), "SHORT-CANARY") {
		t.Fatalf("short replica secret: %v", err)
	}
	// A readable-by-all secret file starts, with a warning.
	cfg.ReplicaSecretFile = writeReplicaSecret(t, replicaSecretCanary)
	if err := os.Chmod(cfg.ReplicaSecretFile, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := New(cfg, zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel)))
	if err != nil {
		t.Fatal(err)
	}
	_ = srv.Close()
	if out := logs.String(); !strings.Contains(out, "chmod 600") || strings.Contains(out, replicaSecretCanary) {
		t.Fatalf("log for a 0644 replica secret file: %s", out)
	}
	cfg.ReplicaSecretFile = filepath.Join(t.TempDir(), "missing")
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("a missing replica secret file was accepted")
	}
	cfg.HeartbeatInterval, cfg.ReplicaTTL = time.Minute, time.Second
	if err := cfg.Validate(); err == nil {
		t.Fatal("a TTL shorter than the heartbeat was accepted")
	}
}

// TestReplicaRecordsAgentsAgainAfterExpiry: another replica swept replica
// A (its heartbeat looked stale), marking A's agent disconnected. At its
// next heartbeat A finds its registration gone, registers again and
// records the agent connected again, so SSH through B is relayed again.
func TestReplicaRecordsAgentsAgainAfterExpiry(t *testing.T) {
	pgURL := pgtest.URL(t)
	secret := writeReplicaSecret(t, replicaSecretCanary)
	fast := func(c *Config) { c.HeartbeatInterval, c.ReplicaTTL = 20*time.Millisecond, time.Minute }
	a := newTestServer(t, asReplica(t, pgURL, secret), fast)
	b := newTestServer(t, asReplica(t, pgURL, secret), fast)
	p := a.setup()
	var created CreatedWorkspaceResponse
	a.want(a.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": map[string]any{}}), 201).json(t, &created)
	dialAgent(t, a, created.AgentToken)
	connected := func() bool {
		var st AgentStatusResponse
		b.want(b.do("GET", "/api/v2/workspaces/dev/agent", p.alice, nil), 200).json(t, &st)
		return st.Connected
	}
	waitFor(t, "the agent's connection to be recorded", connected)

	// The sweep another replica makes when A's heartbeat is older than
	// the TTL: here with a TTL of zero, from outside.
	now := time.Now().Add(time.Hour)
	if n, err := a.store.DisconnectStaleAgents(t.Context(), "", now, now); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want A's one agent marked disconnected", n, err)
	}
	waitFor(t, "replica A to record its agent again", connected)
	if !strings.Contains(a.logs.String(), "registration had expired") {
		t.Fatal("replica A did not say its registration had expired")
	}
	sshEcho(t, b, p.alice)
}
