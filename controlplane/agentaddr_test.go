package controlplane

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/audit"
)

// TestAgentAddressThroughTrustedProxy: behind a trusted proxy, an agent's
// address in the audit log (agent.connect) is the client the proxy names
// in X-Forwarded-For, as for every other client, not the proxy's.
func TestAgentAddressThroughTrustedProxy(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.LoginThrottle.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	p := ts.setup()
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": map[string]any{}}), 201).json(t, &created)
	ws, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {created.AgentToken},
			proto.HeaderVersion: {proto.Version}, "X-Forwarded-For": {"203.0.113.9"}}})
	if err != nil {
		t.Fatalf("agent dial: %v", err)
	}
	defer ws.CloseNow()
	deadline := time.Now().Add(15 * time.Second)
	for {
		recs, err := ts.store.ListAudit(context.Background(), audit.Filter{Action: actAgentConnect})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			if recs[0].Source != "203.0.113.9" {
				t.Fatalf("agent.connect source %q, want the forwarded client 203.0.113.9", recs[0].Source)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no agent.connect record")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
