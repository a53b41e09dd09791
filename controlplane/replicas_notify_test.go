package controlplane

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// twoReplicas starts two in-process servers on one PostgreSQL schema.
func twoReplicas(t *testing.T, mutate ...func(*Config)) (a, b *testServer, pgURL string) {
	t.Helper()
	pgURL = pgtest.URL(t)
	on := func(c *Config) { c.PostgresURL = pgURL }
	a = newTestServer(t, append([]func(*Config){on}, mutate...)...)
	b = newTestServer(t, append([]func(*Config){on}, mutate...)...)
	return a, b, pgURL
}

// TestChangeThroughOtherReplicaReachesAgent: two replicas on one database;
// an agent connected to replica A is told of a secret written through
// replica B (PostgreSQL LISTEN/NOTIFY carries it across processes), with
// the new revision. When the server kills A's listening connection, A
// reconnects and resyncs: the agent is told the current revision again
// without any write.
func TestChangeThroughOtherReplicaReachesAgent(t *testing.T) {
	a, b, pgURL := twoReplicas(t)
	p := a.setup()
	var created CreatedWorkspaceResponse
	a.want(a.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": map[string]any{}}), 201).json(t, &created)
	agent := dialAgent(t, a, created.AgentToken)
	// drain drops messages already delivered (resyncs of a revision the
	// test has seen).
	drain := func() {
		for {
			select {
			case <-agent.changed:
			default:
				return
			}
		}
	}

	b.want(b.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("tok", "env_name", "TOK")), 201)
	m := nextChange(t, agent)
	for m.Revision == 0 { // the first LISTEN's resync, before the write
		m = nextChange(t, agent)
	}
	if m.Revision != 1 {
		t.Fatalf("revision %d after one write through replica B, want 1", m.Revision)
	}
	b.want(b.do("PATCH", "/api/v2/users/me/secrets/tok", p.alice, map[string]any{"description": "d"}), 200)
	if m := nextChange(t, agent); m.Revision != 2 {
		t.Fatalf("revision %d after the update through replica B, want 2", m.Revision)
	}
	drain()

	// Kill every Courier listening connection on the server (others'
	// only resync too).
	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT pg_terminate_backend(pid)
		FROM pg_stat_activity WHERE application_name = 'courier-listen') k`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed < 2 {
		t.Fatalf("terminated %d listening connections, want at least the two replicas'", killed)
	}
	if m := nextChange(t, agent); m.Revision != 2 {
		t.Fatalf("resync after the lost connection told revision %d, want the current 2", m.Revision)
	}
	// And writes through B are heard again.
	b.want(b.do("DELETE", "/api/v2/users/me/secrets/tok", p.alice, nil), 204)
	m = nextChange(t, agent)
	for m.Revision == 2 {
		m = nextChange(t, agent)
	}
	if m.Revision != 3 {
		t.Fatalf("revision %d after the delete through replica B, want 3", m.Revision)
	}
}
