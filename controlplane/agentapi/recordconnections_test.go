package agentapi_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/store"
)

// statusCountingStore counts the agent status calls that reach the store.
type statusCountingStore struct {
	store.Store
	batches, singles atomic.Int64
}

func (c *statusCountingStore) RecordAgentEvents(ctx context.Context, evs []store.AgentEvent) ([]int, error) {
	c.batches.Add(1)
	return c.Store.RecordAgentEvents(ctx, evs)
}

func (c *statusCountingStore) AgentConnected(ctx context.Context, id string, a store.AgentConnection) error {
	c.singles.Add(1)
	return c.Store.AgentConnected(ctx, id, a)
}

// TestRecordConnectionsInOneBatch: a replica whose agents were marked
// disconnected (its registration expired) records every one of them
// connected again, with its own connection, in one store call for up to
// 256 sessions instead of a commit each.
func TestRecordConnectionsInOneBatch(t *testing.T) {
	ctx := context.Background()
	sqlite, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := &statusCountingStore{Store: sqlite}
	f := setupStore(t, cs, func(c *agentapi.Config) { c.ReplicaID = "replica-a" })
	const agents = 5
	var ids []string
	for i := range agents {
		sum := sha256.Sum256([]byte(benchToken(i)))
		ws := store.Workspace{ID: fmt.Sprintf("rc%d", i), Name: fmt.Sprintf("again-%d", i), OwnerID: f.owner.ID,
			AgentTokenHash: sum[:], CreatedAt: time.Now(), Template: f.ws.Template}
		if err := sqlite.CreateWorkspace(ctx, ws); err != nil {
			t.Fatal(err)
		}
		s, err := conn.Dial(ctx, conn.Config{URL: f.http.URL, Token: benchToken(i)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ids = append(ids, ws.ID)
	}
	waitConnected(t, f.srv, agents)
	before := map[string]store.AgentStatus{}
	for _, id := range ids {
		st, err := sqlite.AgentStatus(ctx, id)
		if err != nil || !st.Connected || st.ReplicaID != "replica-a" {
			t.Fatalf("%s after connect: %+v, %v", id, st, err)
		}
		before[id] = st
	}
	// Another replica found this one's registration stale.
	if _, err := sqlite.DisconnectStaleAgents(ctx, "replica-b", time.Now().Add(time.Hour), time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, _ := sqlite.AgentStatus(ctx, ids[0]); st.Connected {
		t.Fatal("the sweep left the agents connected; the test proves nothing")
	}
	cs.batches.Store(0)
	if err := f.srv.RecordConnections(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		got, err := sqlite.AgentStatus(ctx, id)
		if err != nil || !got.Connected || got.ConnID != before[id].ConnID || got.ReplicaID != "replica-a" ||
			!got.ConnectedAt.Equal(before[id].ConnectedAt) || got.RemoteAddr != before[id].RemoteAddr {
			t.Fatalf("%s recorded again as %+v, %v; want its connection %+v", id, got, err, before[id])
		}
	}
	if b, s := cs.batches.Load(), cs.singles.Load(); b != 1 || s != 0 {
		t.Fatalf("%d batches and %d single writes for %d sessions; want one batch", b, s, agents)
	}
}
