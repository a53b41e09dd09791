package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// replicaLoadTests are the conformance tests of ConnectedAgentsByReplica.
var replicaLoadTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"ConnectedAgentsByReplica", testConnectedAgentsByReplica},
}

// testConnectedAgentsByReplica: live replicas are listed with the agents
// they hold connected (0 when none); a replica whose heartbeat is too old,
// agents disconnected, agents held by an unregistered replica or by none
// are not counted.
func testConnectedAgentsByReplica(t *testing.T, s store.Store) {
	got, err := s.ConnectedAgentsByReplica(ctx, T0)
	if err != nil || len(got) != 0 {
		t.Fatalf("no replica: %v, %v; want an empty map", got, err)
	}
	for _, r := range []store.Replica{{ID: "a", HeartbeatAt: T0.Add(10 * time.Second)},
		{ID: "b", HeartbeatAt: T0.Add(10 * time.Second)}, {ID: "idle", HeartbeatAt: T0.Add(10 * time.Second)},
		{ID: "old", HeartbeatAt: T0}} {
		if _, err := s.RegisterReplica(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	u := mkUser(t, s, "rita")
	holders := []string{"a", "a", "a", "b", "old", "gone", "", "b"}
	for i, rep := range holders {
		w := mkWorkspace(t, s, u, string(rune('a'+i))+"-ws")
		if err := s.AgentConnected(ctx, w.ID, store.AgentConnection{ID: w.ID + "-c", At: T0, ReplicaID: rep}); err != nil {
			t.Fatal(err)
		}
		if i == len(holders)-1 { // b's second agent goes away
			if err := s.AgentDisconnected(ctx, w.ID, w.ID+"-c", T0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err = s.ConnectedAgentsByReplica(ctx, T0.Add(5*time.Second))
	want := map[string]int{"a": 3, "b": 1, "idle": 0}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("ConnectedAgentsByReplica = %v, %v; want %v", got, err, want)
	}
	got, err = s.ConnectedAgentsByReplica(ctx, T0)
	want["old"] = 1
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("with the old heartbeat live: %v, %v; want %v", got, err, want)
	}
}
