package controlplane

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/courierhq/courier/agent/proto"
)

// echoAgents pretends the agents of some workspaces are connected: a dialed
// stream echoes what it receives.
type echoAgents struct {
	mu        sync.Mutex
	connected map[string]bool
	wg        sync.WaitGroup
}

func (e *echoAgents) Dial(ctx context.Context, id string, _ proto.SSHPeer) (net.Conn, error) {
	e.mu.Lock()
	ok := e.connected[id]
	e.mu.Unlock()
	if !ok {
		return nil, errAgentNotConnected
	}
	a, b := net.Pipe()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer b.Close()
		_, _ = io.Copy(b, b)
	}()
	return a, nil
}

func (e *echoAgents) connect(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.connected[id] = true
}

func TestWorkspaces(t *testing.T) {
	agents := &echoAgents{connected: map[string]bool{}}
	ts := newTestServerDialer(t, agents)
	t.Cleanup(agents.wg.Wait)
	p := ts.setup()
	tmpl := map[string]any{
		"env":     map[string]string{"EDITOR_MODE": "vim"},
		"scripts": []map[string]any{{"name": "setup", "script": "echo hi", "timeout_seconds": 30}},
		"apps":    []map[string]any{{"slug": "web", "command": "python3 -m http.server"}},
	}
	// Only admins create workspaces.
	ts.want(ts.do("POST", "/api/v2/workspaces", p.alice, map[string]any{"name": "dev", "owner": "alice", "template": tmpl}), 403)
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"no name", map[string]any{"owner": "alice"}, "name"},
		{"bad name", map[string]any{"name": "a/b", "owner": "alice"}, "name"},
		{"no owner", map[string]any{"name": "dev"}, "owner"},
		{"unknown owner", map[string]any{"name": "dev", "owner": "nobody"}, "owner"},
		{"bad script", map[string]any{"name": "dev", "owner": "alice", "template": map[string]any{"scripts": []map[string]any{{"name": "x"}}}}, "template.scripts[0]"},
		{"bad env", map[string]any{"name": "dev", "owner": "alice", "template": map[string]any{"env": map[string]string{"A=B": "x"}}}, "template.env"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, c.body), 400).errResp(t)
			if e.Validations[0].Field != c.field {
				t.Fatalf("%+v, want field %s", e, c.field)
			}
		})
	}
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice", "template": tmpl}), 201).json(t, &created)
	if created.AgentToken == "" || created.OwnerID != p.aliceID || created.OwnerName != "alice" || created.Name != "dev" {
		t.Fatalf("created %+v", created)
	}
	stored, err := ts.store.WorkspaceByID(t.Context(), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.AgentTokenHash) == created.AgentToken || len(stored.AgentTokenHash) != 32 ||
		string(stored.AgentTokenHash) != string(hashToken(created.AgentToken)) {
		t.Fatal("agent token not stored as its SHA-256")
	}
	if stored.Template.Scripts[0].TimeoutSeconds != 30 || stored.Template.Apps[0].Slug != "web" || stored.Template.Env["EDITOR_MODE"] != "vim" {
		t.Fatalf("template stored as %+v", stored.Template)
	}
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": p.aliceID}), 409)
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "bob"}), 201)

	// Listing: admin sees both, alice hers, the token never again.
	var all, mine []WorkspaceResponse
	r := ts.want(ts.do("GET", "/api/v2/workspaces", p.admin, nil), 200)
	r.json(t, &all)
	if len(all) != 2 || strings.Contains(string(r.body), "agent_token") {
		t.Fatalf("admin list %s", r.body)
	}
	ts.want(ts.do("GET", "/api/v2/workspaces", p.alice, nil), 200).json(t, &mine)
	if len(mine) != 1 || mine[0].ID != created.ID || mine[0].OwnerName != "alice" {
		t.Fatalf("alice list %+v", mine)
	}
	// Get by ID, own name, owner/name (slash escaped in the path).
	for _, c := range []struct {
		name, token, ref string
		status           int
	}{
		{"id", p.alice, created.ID, 200},
		{"own name", p.alice, "dev", 200},
		{"owner/name", p.alice, "alice%2Fdev", 200},
		{"admin owner/name", p.admin, "alice%2Fdev", 200},
		{"admin by id", p.admin, created.ID, 200},
		{"other user by id", p.bob, created.ID, 404},
		{"other user owner/name", p.bob, "alice%2Fdev", 404},
		{"unknown", p.alice, "nope", 404},
		{"no token", "", "dev", 401},
	} {
		t.Run("get "+c.name, func(t *testing.T) {
			r := ts.want(ts.do("GET", "/api/v2/workspaces/"+c.ref, c.token, nil), c.status)
			if c.status == 200 {
				var w WorkspaceResponse
				r.json(t, &w)
				if w.ID != created.ID {
					t.Fatalf("got %+v", w)
				}
			}
		})
	}

	// SSH: owner only, 503 while the agent is away, bytes piped once it is.
	for _, c := range []struct {
		name, token, ref string
		status           int
		msg              string
	}{
		{"no token", "", created.ID, 401, ""},
		{"admin on other's workspace", p.admin, created.ID, 403, "only the workspace's owner"},
		{"other user", p.bob, created.ID, 404, ""},
		{"unknown", p.alice, "nope", 404, ""},
		{"agent not connected", p.alice, "dev", 503, "not connected"},
	} {
		t.Run("ssh "+c.name, func(t *testing.T) {
			e := ts.want(ts.do("GET", "/api/v2/workspaces/"+c.ref+"/ssh", c.token, nil), c.status).errResp(t)
			if !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q", e.Message)
			}
		})
	}
	agents.connect(created.ID)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL(), "http")+"/api/v2/workspaces/dev/ssh",
		&websocket.DialOptions{HTTPHeader: http.Header{"Courier-Session-Token": {p.alice}}})
	if err != nil {
		t.Fatalf("dial ssh: %v", err)
	}
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	msg := []byte("SSH-2.0-test\r\n")
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
	conn.Close()
}

func TestHealthAndMetrics(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	ts.want(ts.do("GET", "/healthz", "", nil), 200)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("very-private-name")), 201)
	ts.want(ts.do("GET", "/api/v2/users/alice/secrets/very-private-name", p.alice, nil), 200)
	ts.metrics.observeApply("w1", proto.ApplyReport{Outcomes: []proto.Outcome{
		{Secret: "a", Outcome: proto.OutcomeWritten}, {Secret: "b", Outcome: proto.OutcomeWritten}, {Secret: "c", Outcome: proto.OutcomeEnvOnly}}})
	r := ts.want(ts.do("GET", "/metrics", "", nil), 200)
	body := string(r.body)
	for _, want := range []string{
		`courier_http_requests_total{code="201",method="POST",route="POST /api/v2/users/{user}/secrets"} 1`,
		`courier_http_request_duration_seconds_bucket{method="GET",route="GET /api/v2/users/{user}/secrets/{name}"`,
		"courier_agents_connected 0",
		"courier_agent_status_pending 0",
		"courier_agent_status_dropped_total 0",
		`courier_secrets_applied_total{outcome="written"} 2`,
		`courier_secrets_applied_total{outcome="env"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, leak := range []string{"very-private-name", "alice", canary} {
		if strings.Contains(body, leak) {
			t.Errorf("metrics contain %q", leak)
		}
	}
}
