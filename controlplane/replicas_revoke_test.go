package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/controlplane/store"
)

// agentGone reports whether a fake agent's session has ended.
func agentGone(a *fakeAgent) func() bool {
	return func() bool {
		select {
		case <-a.done:
			return true
		default:
			return false
		}
	}
}

// TestRevocationReachesTheOtherReplica: two replicas on one PostgreSQL
// database; agents held by replica A are disconnected within about a
// second of (a) a token rotation through replica B and (b) their owner's
// suspension through B (the store B's API writes through, as the users
// routes do), and (c) a login session or an API token revoked through B
// stops working on A at the next request. Deadlines are polled, never
// slept.
func TestRevocationReachesTheOtherReplica(t *testing.T) {
	a, b, _ := twoReplicas(t)
	p := a.setup()
	ctx := context.Background()

	// (a) Rotation through B disconnects the agent held by A.
	dev := createWorkspace(t, a, p.admin, "dev", "alice")
	agent := dialAgent(t, a, dev.AgentToken)
	poll(t, 5*time.Second, "agent held by A", func() bool { return a.agents.Connected() == 1 })
	b.want(b.do("POST", "/api/v2/workspaces/dev/agent-token", p.alice, nil), 201)
	took := poll(t, 2*time.Second, "agent on A disconnected after a rotation through B", agentGone(agent))
	t.Logf("(a) rotation through B: agent on A disconnected after %v", took)
	if took > time.Second {
		t.Errorf("(a) took %v, want about a second at most", took)
	}
	if code, msg := agentConnectStatus(t, a, dev.AgentToken); code != 401 {
		t.Fatalf("(a) old token at A: %d %q", code, msg)
	}

	// (b) Suspension through B disconnects alice's agent held by A; her
	// session stops working on A.
	ci := createWorkspace(t, a, p.admin, "ci", "alice")
	agent = dialAgent(t, a, ci.AgentToken)
	poll(t, 5*time.Second, "agent held by A", func() bool { return a.agents.Connected() == 1 })
	a.want(a.do("GET", "/api/v2/workspaces", p.alice, nil), 200)
	if agentGone(agent)() {
		t.Fatal("(b) the agent is gone before the suspension")
	}
	if _, err := b.api.store.UpdateUser(ctx, p.aliceID, func(u *store.User) error {
		u.SuspendedAt = time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	took = poll(t, 2*time.Second, "agent on A disconnected after a suspension through B", agentGone(agent))
	t.Logf("(b) suspension through B: agent on A disconnected after %v", took)
	if took > time.Second {
		t.Errorf("(b) took %v, want about a second at most", took)
	}
	a.want(a.do("GET", "/api/v2/workspaces", p.alice, nil), 401)
	if code, msg := agentConnectStatus(t, a, ci.AgentToken); code != 403 || !strings.Contains(msg, "suspended") {
		t.Fatalf("(b) agent of a suspended owner at A: %d %q", code, msg)
	}
	if !strings.Contains(a.logs.String(), "the owner is suspended") {
		t.Error("(b) replica A does not log why it disconnected the agent")
	}

	// (c) A login session revoked on B, and an API token deleted on B,
	// stop working on A at once.
	bobOnA := a.login("bob", testPassword)
	a.want(a.do("GET", "/api/v2/workspaces", bobOnA, nil), 200)
	b.want(b.do("POST", "/api/v2/users/logout", bobOnA, nil), 204)
	a.want(a.do("GET", "/api/v2/workspaces", bobOnA, nil), 401)

	tok, hash, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.api.store.CreateAPIToken(ctx, store.APIToken{ID: uuid.NewString(), UserID: p.bobID, Name: "ci",
		TokenHash: hash, Scope: store.ScopeWrite, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	a.want(a.do("GET", "/api/v2/workspaces", tok, nil), 200)
	if err := b.api.store.DeleteAPIToken(ctx, p.bobID, "ci"); err != nil {
		t.Fatal(err)
	}
	a.want(a.do("GET", "/api/v2/workspaces", tok, nil), 401)

	for _, tk := range []string{dev.AgentToken, ci.AgentToken, tok} {
		if strings.Contains(a.logs.String(), tk) || strings.Contains(b.logs.String(), tk) {
			t.Fatal("a token is in a replica's log")
		}
	}
}
