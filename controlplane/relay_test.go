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

	"github.com/courierhq/courier/agent/proto"
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

	// The internal endpoint: no, bad or stale signatures are refused, as
	// are a request signed for another replica and one used before; a
	// replica without a secret refuses everything.
	relay := func(ts *testServer, sig string, at time.Time, nonce string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL()+"/internal/v1/relay/ssh/"+created.ID, nil)
		req.Header.Set(headerRelayTime, strconv.FormatInt(at.Unix(), 10))
		req.Header.Set(headerRelayNonce, nonce)
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
	key := []byte(replicaSecretCanary)
	good := func(ts *testServer, at time.Time, nonce string) string {
		return relaySignature(key, created.ID, ts.replicaID, at.Unix(), nonce, proto.SSHPeer{})
	}
	var ns [8]string
	for i := range ns {
		ns[i] = newRelayNonce()
	}
	for name, tc := range map[string]struct {
		sig   string
		at    time.Time
		nonce string
		want  int
	}{
		"no signature":          {"", now, ns[0], 401},
		"wrong secret":          {relaySignature([]byte(strings.Repeat("x", 40)), created.ID, a.replicaID, now.Unix(), ns[1], proto.SSHPeer{}), now, ns[1], 401},
		"other workspace":       {relaySignature(key, "other", a.replicaID, now.Unix(), ns[2], proto.SSHPeer{}), now, ns[2], 401},
		"signed for replica B":  {good(b, now, ns[3]), now, ns[3], 401},
		"other nonce":           {good(a, now, ns[4]), now, ns[5], 401},
		"no nonce":              {good(a, now, ""), now, "", 401},
		"stale":                 {good(a, now.Add(-5*time.Minute), ns[6]), now.Add(-5 * time.Minute), ns[6], 401},
		"from the future":       {good(a, now.Add(5*time.Minute), ns[7]), now.Add(5 * time.Minute), ns[7], 401},
		"valid, not an upgrade": {good(a, now, "0123456789abcdef0123456789abcdef"), now, "0123456789abcdef0123456789abcdef", 426},
	} {
		if got := relay(a, tc.sig, tc.at, tc.nonce); got != tc.want {
			t.Errorf("%s: %d, want %d", name, got, tc.want)
		}
	}
	// The same signed request again: a replay.
	used := "0123456789abcdef0123456789abcdef"
	if got := relay(a, good(a, now, used), now, used); got != 401 {
		t.Errorf("a replayed relay request: %d, want 401", got)
	}
	if !strings.Contains(a.logs.String(), "its nonce was used before") {
		t.Error("the replay was not logged")
	}
	if got := relay(c, good(c, now, newRelayNonce()), now, newRelayNonce()); got != 403 {
		t.Errorf("a replica without a secret answered %d to a relay, want 403", got)
	}
	// B does not hold the agent: a valid relay to it finds none.
	n := newRelayNonce()
	if got := relay(b, good(b, now, n), now, n); got != 503 {
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

// relayNonces: each nonce once while it matters, forgotten after, and a
// bound on how many are held.
func TestRelayNonces(t *testing.T) {
	var n relayNonces
	t0 := time.Unix(1_700_000_000, 0)
	if !n.use("a", t0) || n.use("a", t0.Add(time.Second)) || n.use("a", t0.Add(2*relayMaxSkew)) {
		t.Fatal("a nonce was accepted twice within its window")
	}
	if !n.use("a", t0.Add(2*relayMaxSkew+2*time.Second)) {
		t.Fatal("an expired nonce was not forgotten")
	}
	if len(n.seen) != 1 {
		t.Fatalf("%d nonces held after the sweep, want 1", len(n.seen))
	}
	for i := range maxRelayNonces - 1 {
		if !n.use(strconv.Itoa(i), t0.Add(3*relayMaxSkew)) {
			t.Fatalf("nonce %d refused below the bound", i)
		}
	}
	if n.use("one more", t0.Add(3*relayMaxSkew)) {
		t.Fatal("a nonce past the bound was accepted")
	}
	if !n.use("later", t0.Add(6*relayMaxSkew)) {
		t.Fatal("nonces were not forgotten once expired")
	}
}
