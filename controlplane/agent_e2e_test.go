package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/seal"
)

// fakeAgent is the agent side of the real agent endpoint: a websocket, a
// yamux client, an HTTP client over yamux streams, and an SSH stream
// acceptor that echoes.
type fakeAgent struct {
	sess *yamux.Session
	http *http.Client
	done chan struct{}
	// changed receives the raw message of every secrets-changed stream.
	changed chan []byte
}

func dialAgent(t testing.TB, ts interface{ URL() string }, token string) *fakeAgent {
	t.Helper()
	ctx := t.Context()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL(), "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {token}, proto.HeaderVersion: {proto.Version}}})
	if err != nil {
		t.Fatalf("agent dial: %v", err)
	}
	ws.SetReadLimit(proto.MaxMessageBytes)
	sess, err := yamux.Client(websocket.NetConn(context.Background(), ws, websocket.MessageBinary), proto.YamuxConfig(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{sess: sess, done: make(chan struct{}), changed: make(chan []byte, 64)}
	a.http = &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return sess.Open() },
	}}
	go func() { // the control plane opens streams for SSH
		defer close(a.done)
		for {
			st, err := sess.Accept()
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				kind := make([]byte, 1)
				if _, err := io.ReadFull(st, kind); err != nil {
					return
				}
				switch kind[0] {
				case proto.StreamSSH:
					_, _ = io.Copy(st, st)
				case proto.StreamSecretsChanged:
					msg, _ := io.ReadAll(io.LimitReader(st, proto.MaxSecretsChangedBytes+1))
					select {
					case a.changed <- msg:
					default:
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		a.http.CloseIdleConnections()
		_ = sess.Close()
		<-a.done
	})
	return a
}

func (a *fakeAgent) call(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, proto.BaseURL+path, rd)
	req.Header.Set(proto.HeaderVersion, proto.Version)
	req.Header.Set("Content-Type", "application/json")
	res, err := a.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

// TestAgentEndToEnd connects a fake agent to the real agent endpoint of a
// server with encryption at rest, fetches the owner's secrets (unsealed with
// the same additional data the API sealed them with), reports an apply, and
// proxies SSH bytes from the REST SSH endpoint to it.
func TestAgentEndToEnd(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "courier.key")
	if err := seal.GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) { c.EncryptionKeyFile = keyFile })
	p := ts.setup()
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": map[string]any{"env": map[string]string{"MODE": "dev"}}}), 201).json(t, &created)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("tok", "env_name", "TOK", "file_path", "~/.tok")), 201)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.bob, secretBody("bobs")), 201)

	// A wrong token is refused before any upgrade.
	_, res, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {"wrong"}, proto.HeaderVersion: {proto.Version}}})
	if err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("bad agent token: %v %v", err, res)
	}

	agent := dialAgent(t, ts, created.AgentToken)
	var secrets proto.SecretsResponse
	if st := agent.call(t, "GET", proto.PathSecrets, nil, &secrets); st != 200 {
		t.Fatalf("secrets: %d", st)
	}
	if len(secrets.Secrets) != 1 || secrets.Secrets[0].Value != canary || secrets.Secrets[0].EnvName != "TOK" ||
		secrets.Secrets[0].FilePath != "~/.tok" {
		t.Fatalf("agent got %v (value matches: %t)", secrets.Secrets, len(secrets.Secrets) == 1 && secrets.Secrets[0].Value == canary)
	}
	if st := agent.call(t, "POST", proto.PathApply, proto.ApplyReport{At: time.Now(),
		Outcomes: []proto.Outcome{{Secret: "tok", EnvName: "TOK", Path: "/home/a/.tok", Outcome: proto.OutcomeWritten}}}, nil); st != 204 {
		t.Fatalf("apply: %d", st)
	}
	metrics := string(ts.want(ts.do("GET", "/metrics", "", nil), 200).body)
	for _, want := range []string{"courier_agents_connected 1", `courier_secrets_applied_total{outcome="written"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// SSH through the REST endpoint reaches the agent's stream.
	ws, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+"/api/v2/workspaces/dev/ssh",
		&websocket.DialOptions{HTTPHeader: http.Header{HeaderSessionToken: {p.alice}}})
	if err != nil {
		t.Fatalf("ssh dial: %v", err)
	}
	conn := websocket.NetConn(t.Context(), ws, websocket.MessageBinary)
	defer conn.Close()
	msg := []byte("SSH-2.0-OpenSSH_9.6\r\n")
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, %v", got, err)
	}

	// Shutdown closes the hijacked connections http.Server.Shutdown does not
	// track: the agent's session and the SSH proxy.
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-agent.sess.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("agent session still open after the server closed")
	}
	if _, err := conn.Read(got); err == nil {
		t.Fatal("ssh proxy still open after the server closed")
	}
}
