package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// testAgentEvents: RecordAgentEvents applies a batch in order, as the
// single-change methods would one by one; events of missing (or
// unstorable) workspaces change nothing and are reported, except
// disconnects, and do not stop the others.
func testAgentEvents(t *testing.T, s store.Store) {
	u := mkUser(t, s, "jules")
	w, w2 := mkWorkspace(t, s, u, "batch-one"), mkWorkspace(t, s, u, "batch-two")
	if missing, err := s.RecordAgentEvents(ctx, nil); err != nil || len(missing) != 0 {
		t.Fatalf("empty batch: %v, %v", missing, err)
	}
	c1 := store.AgentConnection{ID: "c1", RemoteAddr: "10.0.0.1:5000", AgentVersion: "v1", At: T0, ReplicaID: "r1"}
	c2 := store.AgentConnection{ID: "c2", RemoteAddr: "10.0.0.2:5000", AgentVersion: "v2", At: T0.Add(time.Second), ReplicaID: "r1"}
	rep := proto.ApplyReport{At: T0.Add(2 * time.Second), SecretsRevision: 7,
		Outcomes: []proto.Outcome{{Secret: "a", Path: "/home/coder/a", Outcome: proto.OutcomeWritten}}}
	gone := uuid.NewString()
	evs := []store.AgentEvent{
		{Kind: store.AgentEventConnected, WorkspaceID: w.ID, Conn: c1},
		{Kind: store.AgentEventConnected, WorkspaceID: gone, Conn: c1}, // 1: missing
		{Kind: store.AgentEventConnected, WorkspaceID: w.ID, Conn: c2}, // replaces c1
		{Kind: store.AgentEventReplaced, WorkspaceID: w.ID, At: T0.Add(time.Second), Note: "c2 replaced c1"},
		{Kind: store.AgentEventDisconnected, WorkspaceID: w.ID, ConnID: "c1", At: T0.Add(3 * time.Second)}, // ends nothing
		{Kind: store.AgentEventApplied, WorkspaceID: w.ID, Apply: rep},
		{Kind: store.AgentEventApplied, WorkspaceID: "bad\x00id", Apply: rep},         // 6: missing (unstorable)
		{Kind: store.AgentEventDisconnected, WorkspaceID: gone, ConnID: "c1", At: T0}, // nothing to end, not reported
		{Kind: store.AgentEventConnected, WorkspaceID: w2.ID, Conn: c1},
		{Kind: store.AgentEventReplaced, WorkspaceID: gone, At: T0, Note: "x"}, // 9: missing
		{Kind: store.AgentEventDisconnected, WorkspaceID: w2.ID, ConnID: "c1", At: T0.Add(4 * time.Second)},
	}
	missing, err := s.RecordAgentEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 6, 9}; !reflect.DeepEqual(missing, want) {
		t.Fatalf("missing = %v, want %v", missing, want)
	}
	st, err := s.AgentStatus(ctx, w.ID)
	if err != nil || !st.Connected || st.ConnID != "c2" || st.AgentVersion != "v2" || !st.ConnectedAt.Equal(c2.At) ||
		!st.DisconnectedAt.IsZero() || st.ReplacedNote != "c2 replaced c1" || st.LastApply == nil ||
		!reflect.DeepEqual(*st.LastApply, rep) || st.ReplicaID != "r1" {
		t.Fatalf("workspace one after the batch: %+v, %v", st, err)
	}
	st, err = s.AgentStatus(ctx, w2.ID)
	if err != nil || st.Connected || st.ConnID != "c1" || !st.DisconnectedAt.Equal(T0.Add(4*time.Second)) || st.ReplicaID != "" {
		t.Fatalf("workspace two, connected then disconnected in one batch: %+v, %v", st, err)
	}
	if _, err := s.AgentStatus(ctx, gone); err == nil {
		t.Fatalf("a batch created the status of a missing workspace")
	}

	// A batch of only missing workspaces changes nothing and says so.
	missing, err = s.RecordAgentEvents(ctx, []store.AgentEvent{{Kind: store.AgentEventApplied, WorkspaceID: gone, Apply: rep}})
	if err != nil || !reflect.DeepEqual(missing, []int{0}) {
		t.Fatalf("batch of a missing workspace: %v, %v", missing, err)
	}
	// An unknown kind is refused, and nothing of its batch is applied.
	if _, err := s.RecordAgentEvents(ctx, []store.AgentEvent{
		{Kind: store.AgentEventDisconnected, WorkspaceID: w.ID, ConnID: "c2", At: T0.Add(5 * time.Second)},
		{Kind: 0, WorkspaceID: w.ID}}); err == nil {
		t.Fatal("an event of kind 0 was accepted")
	}
	if st, _ := s.AgentStatus(ctx, w.ID); !st.Connected {
		t.Fatalf("a refused batch was applied in part: %+v", st)
	}
}
