package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/agent"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// agentConnectStatus tries the agent endpoint with token, without
// upgrading, and returns the status and the server's message.
func agentConnectStatus(t *testing.T, ts interface{ URL() string }, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL()+proto.ConnectPath, nil)
	req.Header.Set(proto.HeaderToken, token)
	req.Header.Set(proto.HeaderVersion, proto.Version)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e proto.ErrorResponse
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &e)
	return res.StatusCode, e.Message
}

func createWorkspace(t *testing.T, ts *testServer, admin, name, owner string) CreatedWorkspaceResponse {
	t.Helper()
	var c CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", admin, map[string]any{"name": name, "owner": owner,
		"template": map[string]any{}}), 201).json(t, &c)
	return c
}

// TestWorkspaceDeleteAndRotateREST: who may delete a workspace and rotate
// its agent token, what a rotation answers, bad input refused with
// nothing changed, and the old token refused at the agent endpoint.
func TestWorkspaceDeleteAndRotateREST(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AgentTokenLifetime = 48 * time.Hour })
	p := ts.setup()
	dev := createWorkspace(t, ts, p.admin, "dev", "alice")
	other := createWorkspace(t, ts, p.admin, "other", "bob")
	ctx := context.Background()

	// The server's lifetime applies at creation and shows in the status.
	var st AgentStatusResponse
	ts.want(ts.do("GET", "/api/v2/workspaces/alice%2Fdev/agent", p.alice, nil), 200).json(t, &st)
	if st.AgentTokenExpiresAt == nil || absDur(time.Until(*st.AgentTokenExpiresAt)-48*time.Hour) > time.Minute {
		t.Fatalf("agent_token_expires_at %v, want about 48h from now", st.AgentTokenExpiresAt)
	}

	// Someone else's workspace does not exist for a member.
	for _, c := range []struct{ method, path string }{
		{"DELETE", "/api/v2/workspaces/alice%2Fdev"},
		{"DELETE", "/api/v2/workspaces/" + dev.ID},
		{"POST", "/api/v2/workspaces/alice%2Fdev/agent-token"},
		{"POST", "/api/v2/workspaces/" + dev.ID + "/agent-token"},
		{"DELETE", "/api/v2/workspaces/nope"},
		{"POST", "/api/v2/workspaces/nope/agent-token"},
		{"DELETE", "/api/v2/workspaces/alice%2F..%2Fdev"},
	} {
		ts.want(ts.do(c.method, c.path, p.bob, nil), 404)
	}
	// Not a websocket request, but the token itself is accepted.
	if code, msg := agentConnectStatus(t, ts, dev.AgentToken); code == 401 || code == 403 {
		t.Fatalf("the original token is refused after others' refused attempts: %d %q", code, msg)
	}

	// Bad lifetimes: 400 naming the field, and the token keeps working.
	for _, body := range []any{
		`{"lifetime":"30"}`, `{"lifetime":"abc"}`, `{"lifetime":"-1d"}`, `{"lifetime":"1s"}`, `{"lifetime":"99999999999999d"}`,
		`{"lifetime":5}`, `{"lifetime":"30d","lifetime":"1d"}`, `{"other":1}`, `{"lifetime":"30d"`, `[]`, "\xff",
	} {
		r := ts.do("POST", "/api/v2/workspaces/dev/agent-token", p.alice, body)
		if r.status != 400 {
			t.Fatalf("body %q: status %d, want 400; %s", body, r.status, r.body)
		}
		ws, err := ts.store.WorkspaceByID(ctx, dev.ID)
		sum := sha256.Sum256([]byte(dev.AgentToken))
		if err != nil || string(ws.AgentTokenHash) != string(sum[:]) {
			t.Fatalf("body %q: the token changed on a refused rotation (%v)", body, err)
		}
	}

	// The owner rotates with a lifetime; shown once, not cached.
	var rot RotatedAgentTokenResponse
	r := ts.want(ts.do("POST", "/api/v2/workspaces/dev/agent-token", p.alice, map[string]string{"lifetime": "30d"}), 201)
	r.json(t, &rot)
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	if len(rot.AgentToken) < 43 || rot.AgentToken == dev.AgentToken || rot.ExpiresAt == nil ||
		absDur(time.Until(*rot.ExpiresAt)-30*24*time.Hour) > time.Minute {
		t.Fatalf("rotation answered %+v", rot)
	}
	ts.want(ts.do("GET", "/api/v2/workspaces/dev/agent", p.alice, nil), 200).json(t, &st)
	if st.AgentTokenExpiresAt == nil || !st.AgentTokenExpiresAt.Equal(*rot.ExpiresAt) {
		t.Fatalf("status expiry %v, rotation said %v", st.AgentTokenExpiresAt, rot.ExpiresAt)
	}
	if code, msg := agentConnectStatus(t, ts, dev.AgentToken); code != 401 || !strings.Contains(msg, "revoked or rotated") {
		t.Fatalf("old token after rotation: %d %q", code, msg)
	}

	// An admin rotates anyone's; no body means the server's lifetime.
	var rot2 RotatedAgentTokenResponse
	ts.want(ts.do("POST", "/api/v2/workspaces/"+dev.ID+"/agent-token", p.admin, nil), 201).json(t, &rot2)
	if rot2.ExpiresAt == nil || absDur(time.Until(*rot2.ExpiresAt)-48*time.Hour) > time.Minute {
		t.Fatalf("admin rotation without a body: %+v", rot2)
	}
	if code, _ := agentConnectStatus(t, ts, rot.AgentToken); code != 401 {
		t.Fatalf("the token of the first rotation still works after the second (%d)", code)
	}

	// An expired token is refused with the time and what to do.
	sum := sha256.Sum256([]byte(rot2.AgentToken))
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if _, err := ts.store.RotateAgentToken(ctx, dev.ID, sum[:], past); err != nil {
		t.Fatal(err)
	}
	if code, msg := agentConnectStatus(t, ts, rot2.AgentToken); code != 401 ||
		!strings.Contains(msg, "expired at "+past.Format(time.RFC3339)) || !strings.Contains(msg, "courier workspaces rotate-token") {
		t.Fatalf("expired token: %d %q", code, msg)
	}

	// Deleting: the owner their own, an admin anyone's; then it is gone.
	ts.want(ts.do("DELETE", "/api/v2/workspaces/dev", p.alice, nil), 204)
	ts.want(ts.do("GET", "/api/v2/workspaces/alice%2Fdev", p.alice, nil), 404)
	ts.want(ts.do("DELETE", "/api/v2/workspaces/dev", p.alice, nil), 404)
	ts.want(ts.do("DELETE", "/api/v2/workspaces/bob%2Fother", p.admin, nil), 204)
	ts.want(ts.do("GET", "/api/v2/workspaces/"+other.ID, p.admin, nil), 404)
	if code, _ := agentConnectStatus(t, ts, other.AgentToken); code != 401 {
		t.Fatalf("token of a deleted workspace: %d", code)
	}
	// The name is free again.
	createWorkspace(t, ts, p.admin, "dev", "alice")

	for _, tok := range []string{dev.AgentToken, rot.AgentToken, rot2.AgentToken, other.AgentToken} {
		if strings.Contains(ts.logs.String(), tok) {
			t.Fatal("an agent token is in the server log")
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// syncLog is a zap logger writing JSON lines into a buffer tests read.
func syncLog() (*zap.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), buf, zap.DebugLevel)), buf
}

// writeTokenFileAtomic writes tok to path the way courier workspaces
// rotate-token --token-file does: a temp file renamed over it.
func writeTokenFileAtomic(t *testing.T, path, tok string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// runRealAgent starts an in-process courier agent reading its token from
// tokenFile, with a short longest backoff, and stops it at cleanup.
func runRealAgent(t *testing.T, url, tokenFile, home string, live bool) *syncBuffer {
	t.Helper()
	log, buf := syncLog()
	a, err := agent.New(agent.Config{URL: url, TokenFile: tokenFile, Home: home, DataDir: t.TempDir(), Logger: log,
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, LiveFiles: live,
		ChangeQuiet: 20 * time.Millisecond, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = a.Close()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
	return buf
}

// poll waits until cond holds or the deadline passes, and says how long it
// took.
func poll(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func fileIs(path, want string) bool {
	b, err := os.ReadFile(path)
	return err == nil && string(b) == want
}

// TestRotationDisconnectsARealAgent: a real agent reading a token file is
// disconnected within a second of a rotation, its reconnects are refused
// and logged once, and after the new token is written to its file it
// reconnects on its own (no restart) and applies what changed meanwhile.
// Neither token reaches any log.
func TestRotationDisconnectsARealAgent(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	dev := createWorkspace(t, ts, p.admin, "dev", "alice")
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{
		"name": "tok", "value": "v1", "file_path": "~/tok"}), 201)
	home, tokenFile := t.TempDir(), filepath.Join(t.TempDir(), "agent-token")
	writeTokenFileAtomic(t, tokenFile, dev.AgentToken)
	agentLog := runRealAgent(t, ts.URL(), tokenFile, home, false)
	poll(t, 10*time.Second, "first apply", func() bool { return fileIs(filepath.Join(home, "tok"), "v1") })
	poll(t, 5*time.Second, "agent registered", func() bool { return ts.agents.Connected() == 1 })

	var rot RotatedAgentTokenResponse
	ts.want(ts.do("POST", "/api/v2/workspaces/dev/agent-token", p.alice, nil), 201).json(t, &rot)
	took := poll(t, time.Second, "agent disconnected after the rotation", func() bool { return ts.agents.Connected() == 0 })
	t.Logf("disconnected %v after the rotation answered", took)
	refusedLine := `"msg":"the control plane refused the agent token`
	poll(t, 5*time.Second, "the agent says why", func() bool { return strings.Contains(agentLog.String(), refusedLine) })
	// Its reconnects are refused, quietly.
	poll(t, 5*time.Second, "two refused reconnects", func() bool {
		return strings.Count(agentLog.String(), "the agent token is still refused") >= 2
	})
	if n := strings.Count(agentLog.String(), refusedLine); n != 1 {
		t.Fatalf("the refusal is logged %d times at error level, want once", n)
	}
	if !strings.Contains(agentLog.String(), "token file") {
		t.Error("the refusal does not say to write the token file")
	}

	// A change meanwhile, then the new token in the file: no restart.
	ts.want(ts.do("PATCH", "/api/v2/users/me/secrets/tok", p.alice, map[string]string{"value": "v2"}), 200)
	writeTokenFileAtomic(t, tokenFile, rot.AgentToken)
	poll(t, 10*time.Second, "reconnect with the new token applies the change",
		func() bool { return fileIs(filepath.Join(home, "tok"), "v2") })
	if !strings.Contains(agentLog.String(), "read a new agent token from the token file") {
		t.Error("the agent did not say it read a new token")
	}
	for _, tok := range []string{dev.AgentToken, rot.AgentToken} {
		if strings.Contains(agentLog.String(), tok) || strings.Contains(ts.logs.String(), tok) {
			t.Fatal("an agent token is in a log")
		}
	}
}

// TestRotationDuringLiveApplyLosesNoFile: with live files on, secrets are
// changed while the token is rotated and the new token written to the
// agent's file; every file ends with its last value.
func TestRotationDuringLiveApplyLosesNoFile(t *testing.T) {
	const n = 12
	ts := newTestServer(t)
	p := ts.setup()
	dev := createWorkspace(t, ts, p.admin, "dev", "alice")
	for i := range n {
		ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]string{
			"name": fmt.Sprintf("s%d", i), "value": "v0", "file_path": fmt.Sprintf("~/f/s%d", i)}), 201)
	}
	home, tokenFile := t.TempDir(), filepath.Join(t.TempDir(), "agent-token")
	writeTokenFileAtomic(t, tokenFile, dev.AgentToken)
	runRealAgent(t, ts.URL(), tokenFile, home, true)
	poll(t, 10*time.Second, "first apply", func() bool { return fileIs(filepath.Join(home, "f", fmt.Sprintf("s%d", n-1)), "v0") })
	for i := range n {
		ts.want(ts.do("PATCH", fmt.Sprintf("/api/v2/users/me/secrets/s%d", i), p.alice, map[string]string{"value": "v1"}), 200)
		if i == n/2 { // mid-way through the changes and their live applies
			var rot RotatedAgentTokenResponse
			ts.want(ts.do("POST", "/api/v2/workspaces/dev/agent-token", p.alice, nil), 201).json(t, &rot)
			writeTokenFileAtomic(t, tokenFile, rot.AgentToken)
		}
	}
	poll(t, 15*time.Second, "every file has its last value", func() bool {
		for i := range n {
			if !fileIs(filepath.Join(home, "f", fmt.Sprintf("s%d", i)), "v1") {
				return false
			}
		}
		return true
	})
}

// TestDeleteWorkspaceDisconnectsItsAgent: deleting a workspace closes its
// agent's connection with the revoked close code within a second.
func TestDeleteWorkspaceDisconnectsItsAgent(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	dev := createWorkspace(t, ts, p.admin, "dev", "alice")
	keep := createWorkspace(t, ts, p.admin, "keep", "alice")
	a := dialAgent(t, ts, dev.AgentToken)
	dialAgent(t, ts, keep.AgentToken)
	poll(t, 5*time.Second, "agents registered", func() bool { return ts.agents.Connected() == 2 })
	ts.want(ts.do("DELETE", "/api/v2/workspaces/dev", p.alice, nil), 204)
	took := poll(t, time.Second, "the deleted workspace's agent disconnected", func() bool {
		select {
		case <-a.done:
			return true
		default:
			return false
		}
	})
	t.Logf("disconnected %v after the delete answered", took)
	poll(t, time.Second, "one agent left", func() bool { return ts.agents.Connected() == 1 })
	if !strings.Contains(ts.logs.String(), "the workspace was deleted") {
		t.Error("the server does not log why it disconnected the agent")
	}
}

// TestSSHProxyEndsOnRevocation: an SSH session proxied by the control plane
// ends within a second when its workspace is deleted or its user
// suspended (the agent here is an echo that stays connected, so only the
// proxy's own re-check can end it); an untouched session goes on.
func TestSSHProxyEndsOnRevocation(t *testing.T) {
	for _, c := range []struct {
		name   string
		revoke func(t *testing.T, ts *testServer, p people, wsID string)
		reason string
	}{
		{"workspace deleted", func(t *testing.T, ts *testServer, p people, _ string) {
			ts.want(ts.do("DELETE", "/api/v2/workspaces/dev", p.admin, nil), 404) // the admin has no "dev" of their own
			ts.want(ts.do("DELETE", "/api/v2/workspaces/alice%2Fdev", p.admin, nil), 204)
		}, "the workspace was deleted"},
		{"user suspended", func(t *testing.T, ts *testServer, p people, _ string) {
			if _, err := ts.api.store.UpdateUser(context.Background(), p.aliceID, func(u *store.User) error {
				u.SuspendedAt = time.Now()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}, "the user is suspended"},
		{"user deleted", func(t *testing.T, ts *testServer, p people, _ string) {
			if err := ts.api.store.DeleteUser(context.Background(), p.aliceID); err != nil {
				t.Fatal(err)
			}
		}, "the user was deleted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			agents := &echoAgents{connected: map[string]bool{}}
			ts := newTestServerDialer(t, agents)
			t.Cleanup(agents.wg.Wait)
			p := ts.setup()
			dev := createWorkspace(t, ts, p.admin, "dev", "alice")
			mine := createWorkspace(t, ts, p.admin, "mine", "bob")
			agents.connect(dev.ID)
			agents.connect(mine.ID)
			open := func(token, ws string) net.Conn {
				wc, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+"/api/v2/workspaces/"+ws+"/ssh",
					&websocket.DialOptions{HTTPHeader: http.Header{"Courier-Session-Token": {token}}})
				if err != nil {
					t.Fatalf("dial ssh: %v", err)
				}
				conn := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
				t.Cleanup(func() { _ = conn.Close() })
				echo(t, conn)
				return conn
			}
			alice, bob := open(p.alice, "dev"), open(p.bob, "mine")
			c.revoke(t, ts, p, dev.ID)
			ended := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, alice)
				ended <- err
			}()
			select {
			case <-ended:
			case <-time.After(time.Second):
				t.Fatal("the SSH session outlived the revocation by a second")
			}
			echo(t, bob) // another user's session goes on
			if !strings.Contains(ts.logs.String(), c.reason) {
				t.Errorf("the log does not say %q", c.reason)
			}
		})
	}
}

func echo(t *testing.T, conn net.Conn) {
	t.Helper()
	msg := []byte("SSH-2.0-test\r\n")
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
}
