package agentapi_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/store"
)

func TestMain(m *testing.M) {
	// BenchmarkSessionMemory runs its agents in a child process: this one.
	if benchClientsChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

const (
	agentToken = "agent-token-for-tests-0123456789"
	canary     = "CANARY-agentapi-77aa"
)

type fixture struct {
	st    store.Store
	srv   *agentapi.Server
	http  *httptest.Server
	ws    store.Workspace
	owner store.User
	logs  *observer.ObservedLogs
	cfg   agentapi.Config
}

func setup(t *testing.T, fileDisabled bool) *fixture {
	t.Helper()
	return setupCfg(t, func(c *agentapi.Config) { c.FileDeliveryDisabled = fileDisabled })
}

// setupCfg is setup with mod applied to the Server's Config.
func setupCfg(t testing.TB, mod func(*agentapi.Config)) *fixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return setupStore(t, st, mod)
}

// setupStore is setupCfg on st, which it closes at the end of the test.
func setupStore(t testing.TB, st store.Store, mod func(*agentapi.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	owner := store.User{ID: "u1", Username: "dev", Email: "dev@x", CreatedAt: time.Now()}
	_ = st.CreateUser(ctx, owner)
	sum := sha256.Sum256([]byte(agentToken))
	ws := store.Workspace{ID: "w1", Name: "dev", OwnerID: owner.ID, AgentTokenHash: sum[:], CreatedAt: time.Now(),
		Template: store.Template{Env: map[string]string{"A": "1"}, Scripts: []proto.Script{{Name: "s", Script: "true"}}}}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	_ = st.CreateSecrets(ctx, owner.ID, []store.Secret{
		{ID: "s1", Name: "tok", EnvName: "TOK", FilePath: "~/tok", Value: []byte(canary), Enabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()},
		{ID: "s2", Name: "broken", Value: []byte("x"), Enabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()},
		{ID: "s3", Name: "zz-paused", EnvName: "PAUSED", FilePath: "~/paused", Value: []byte(canary + "-paused"), CreatedAt: time.Now(), UpdatedAt: time.Now()},
	}, nil)
	core, logs := observer.New(zap.DebugLevel)
	cfg := agentapi.Config{Store: st, Logger: zap.New(core),
		Open: func(s store.Secret) (string, error) {
			if s.Name == "broken" {
				return "", errors.New("key not configured")
			}
			return string(s.Value), nil
		}}
	mod(&cfg)
	srv, err := agentapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(proto.ConnectPath, srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
		_ = st.Close()
	})
	return &fixture{st: st, srv: srv, http: hs, ws: ws, owner: owner, logs: logs, cfg: cfg}
}

func dial(t *testing.T, f *fixture, token string) (*conn.Session, error) {
	return conn.Dial(context.Background(), conn.Config{URL: f.http.URL, Token: token})
}

func TestConnectFetchAndReport(t *testing.T) {
	f := setup(t, false)
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	m, err := s.Manifest(ctx)
	if err != nil || m.WorkspaceID != "w1" || m.OwnerName != "dev" || m.Env["A"] != "1" || len(m.Scripts) != 1 {
		t.Fatalf("manifest = %+v, %v", m, err)
	}
	resp, err := s.Secrets(ctx)
	secs := resp.Secrets
	if resp.Revision != 1 {
		t.Fatalf("revision %d, want 1 (one create of the fixture)", resp.Revision)
	}
	if err != nil || len(secs) != 2 || secs[0].Value != canary || secs[0].FilePath != "~/tok" || secs[0].Disabled {
		t.Fatalf("secrets = %v, %v (the broken one must be left out, the others delivered)", secs, err)
	}
	if p := secs[1]; p.Name != "zz-paused" || !p.Disabled || p.Value != "" || p.EnvName != "PAUSED" || p.FilePath != "~/paused" {
		t.Fatalf("paused secret sent as %+v (value set: %t); want its targets, disabled, no value", p, p.Value != "")
	}
	if err := s.ReportLifecycle(ctx, proto.LifecycleReport{State: proto.StateReady, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ws, _ := f.st.WorkspaceByID(ctx, "w1")
	if ws.State != proto.StateReady {
		t.Errorf("state = %q", ws.State)
	}
	if err := s.ReportLifecycle(ctx, proto.LifecycleReport{State: "bogus"}); err == nil {
		t.Error("unknown state accepted")
	}
	_ = s.ReportLogs(ctx, proto.LogReport{Source: "script:s", Lines: []proto.LogLine{{Stream: "stdout", Text: "hello"}}})
	if l, _ := f.st.WorkspaceLogs(ctx, "w1", store.LogQuery{}); len(l) != 1 || l[0].Text != "hello" || l[0].Source != "script:s" {
		t.Errorf("logs = %+v", l)
	}
	_ = s.ReportApply(ctx, proto.ApplyReport{Outcomes: []proto.Outcome{{Secret: "tok", Outcome: proto.OutcomeWritten}},
		LeftBehind: []string{"/home/dev/old"}})
	if st, err := f.st.AgentStatus(ctx, "w1"); err != nil || st.LastApply == nil || st.LastApply.Outcomes[0].Secret != "tok" ||
		st.LastApply.LeftBehind[0] != "/home/dev/old" || !st.Connected {
		t.Errorf("stored status = %+v, %v", st, err)
	}
	if f.srv.Connected() != 1 {
		t.Errorf("Connected = %d", f.srv.Connected())
	}
	for _, e := range f.logs.All() {
		if strings.Contains(e.Message+toStr(e.ContextMap()), canary) {
			t.Errorf("log line leaks a value: %s %v", e.Message, e.ContextMap())
		}
	}
}

func toStr(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		if s, ok := v.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

func TestFileDeliveryDisabled(t *testing.T) {
	f := setup(t, true)
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _ := s.Manifest(context.Background())
	resp, _ := s.Secrets(context.Background())
	secs := resp.Secrets
	if !m.FileDeliveryDisabled || len(secs) != 2 || secs[0].FilePath != "" || secs[0].EnvName != "TOK" || secs[1].FilePath != "" {
		t.Fatalf("file targets must be withheld: %+v %+v", m, secs)
	}
}

func TestRejections(t *testing.T) {
	f := setup(t, false)
	if _, err := dial(t, f, "wrong-token"); !errors.Is(err, conn.ErrTokenRejected) {
		t.Fatalf("bad token: %v", err)
	}
	req, _ := http.NewRequest("GET", f.http.URL+proto.ConnectPath, nil)
	req.Header.Set(proto.HeaderToken, agentToken)
	req.Header.Set(proto.HeaderVersion, "999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != proto.StatusVersionMismatch || !strings.Contains(string(body), `\"999\"`) && !strings.Contains(string(body), "999") {
		t.Fatalf("version mismatch: %d %s", resp.StatusCode, body)
	}
	req.Header.Del(proto.HeaderToken)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}

func TestDialOpensSSHStreamAndNewerConnectionWins(t *testing.T) {
	f := setup(t, false)
	ctx := context.Background()
	if _, err := f.srv.Dial(ctx, "w1", proto.SSHPeer{}); !errors.Is(err, agentapi.ErrAgentNotConnected) {
		t.Fatalf("no agent: %v", err)
	}
	s1, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	// The agent's dial returns once the websocket is up; the server
	// registers the session just after.
	waitConnected(t, f.srv, 1)
	peer := proto.SSHPeer{Client: "203.0.113.7:51234", Server: "10.0.0.5:8080"}
	c, err := f.srv.Dial(ctx, "w1", peer)
	if err != nil {
		t.Fatal(err)
	}
	// The agent announced ssh-peer: the stream carries the peer first.
	st, kind, err := s1.Accept()
	if err != nil || kind != proto.StreamSSHPeer {
		t.Fatalf("accept: kind=%d err=%v", kind, err)
	}
	if got, err := proto.ReadSSHPeer(st); err != nil || got != peer {
		t.Fatalf("peer header %+v, %v; want %+v", got, err, peer)
	}
	_, _ = c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("stream carries %q, %v", buf, err)
	}
	_ = c.Close()
	_ = st.Close()

	s2, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	select {
	case <-s1.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the older session was not closed when the agent reconnected")
	}
	waitConnected(t, f.srv, 1)
	// The older agent is told why, with the protocol's close code.
	if err := s1.Err(); !errors.Is(err, conn.ErrReplaced) {
		t.Fatalf("older session ended with %v, want ErrReplaced", err)
	}
	if err := s2.Err(); err != nil {
		t.Fatalf("the newer session has ended: %v", err)
	}
	// The operator is warned, naming both peers, and the status shows it.
	var remotes []string
	for _, e := range f.logs.FilterMessage("agent connected").All() {
		remotes = append(remotes, e.ContextMap()["remote"].(string))
	}
	warns := f.logs.FilterMessageSnippet("replaced by a newer one").All()
	if len(remotes) != 2 || remotes[0] == remotes[1] || len(warns) != 1 || warns[0].Level != zap.WarnLevel ||
		warns[0].ContextMap()["old_remote"] != remotes[0] || warns[0].ContextMap()["new_remote"] != remotes[1] ||
		warns[0].ContextMap()["workspace"] != "dev" {
		t.Fatalf("connects from %v; replacement warnings %v", remotes, warns)
	}
	status, err := f.st.AgentStatus(ctx, "w1")
	if err != nil || status.ReplacedAt.IsZero() || !strings.Contains(status.ReplacedNote, remotes[1]) ||
		!strings.Contains(status.ReplacedNote, "another agent connected with this workspace's token") || !status.Connected ||
		status.RemoteAddr != remotes[1] {
		t.Fatalf("status = %+v, %v", status, err)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	f := setup(t, false)
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.srv.Close()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the agent session")
	}
	_ = f.srv.Close()
	if _, err := f.srv.Dial(context.Background(), "w1", proto.SSHPeer{}); !errors.Is(err, agentapi.ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
}

func waitConnected(t *testing.T, srv *agentapi.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Connected() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Connected = %d, want %d", srv.Connected(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAgentVersionRecorded: the version header reaches the status, cut to
// printable ASCII of bounded length.
func TestAgentVersionRecorded(t *testing.T) {
	f := setup(t, false)
	long := "v1.2.3 (linux) " + strings.Repeat("x", 100)
	s, err := conn.Dial(context.Background(), conn.Config{URL: f.http.URL, Token: agentToken, AgentVersion: long})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitConnected(t, f.srv, 1)
	st, err := f.st.AgentStatus(context.Background(), "w1")
	want := ("v1.2.3(linux)" + strings.Repeat("x", 100))[:proto.MaxAgentVersionBytes]
	if err != nil || st.AgentVersion != want || !st.Connected {
		t.Fatalf("status = %+v, %v; want version %q", st, err, want)
	}
}

// TestShedsWithRetryAfterUntilFirstApply: over MaxConnecting, an agent's
// upgrade gets 503 with Retry-After (which the agent's Dial turns into a
// conn.UnavailableError) until an admitted agent reports its first apply.
func TestShedsWithRetryAfterUntilFirstApply(t *testing.T) {
	f := setupCfg(t, func(c *agentapi.Config) { c.MaxConnecting, c.MaxWaiting = 1, -1 })
	a, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = dial(t, f, agentToken)
	var ue *conn.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, conn.ErrUnavailable) || ue.RetryAfter < time.Second {
		t.Fatalf("second agent while the first has not applied: %v, want 503 with Retry-After >= 1s", err)
	}
	// Refused before any work: not even a bad token is looked at.
	if _, err := dial(t, f, "not-a-token"); !errors.Is(err, conn.ErrUnavailable) {
		t.Fatalf("bad token while full: %v, want 503", err)
	}
	if err := a.ReportApply(t.Context(), proto.ApplyReport{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatalf("after the first agent applied: %v", err)
	}
	_ = b.Close()
}

// TestKeepaliveClosesSilentAgentsOnly: the server's one keepalive loop
// closes a session whose peer never answers a ping, and leaves a live
// agent connected.
func TestKeepaliveClosesSilentAgentsOnly(t *testing.T) {
	f := setupCfg(t, func(c *agentapi.Config) {
		c.KeepaliveInterval, c.WriteTimeout = 20*time.Millisecond, 100*time.Millisecond
	})
	const otherToken = "agent-token-for-tests-other-0123"
	sum := sha256.Sum256([]byte(otherToken))
	if err := f.st.CreateWorkspace(t.Context(), store.Workspace{ID: "w2", Name: "silent", OwnerID: f.owner.ID,
		AgentTokenHash: sum[:], CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	live, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// A peer that upgrades and then reads nothing: no pong ever comes.
	hdr := http.Header{}
	hdr.Set(proto.HeaderToken, otherToken)
	hdr.Set(proto.HeaderVersion, proto.Version)
	silent, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(f.http.URL, "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.CloseNow()
	deadline := time.Now().Add(20 * time.Second)
	for f.srv.Connected() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for f.srv.Connected() == 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := f.srv.Connected(); n != 1 {
		t.Fatalf("%d agents connected, want 1: the silent one closed, the live one kept", n)
	}
	if _, err := live.Manifest(t.Context()); err != nil {
		t.Fatalf("the live agent's session: %v", err)
	}
}
