package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

func mkWorkspace(t *testing.T, s store.Store, owner store.User, name string) store.Workspace {
	t.Helper()
	w := store.Workspace{ID: uuid.NewString(), Name: name, OwnerID: owner.ID, AgentTokenHash: []byte("hash-" + uuid.NewString()),
		CreatedAt: T0}
	if err := s.CreateWorkspace(ctx, w); err != nil {
		t.Fatal(err)
	}
	return w
}

// testSecretEnabled: a paused secret is stored and updated like any other,
// keeps its env name and file path reserved and is seen by a CheckFunc.
func testSecretEnabled(t *testing.T, s store.Store) {
	u := mkUser(t, s, "gina")
	off := mkSecret("paused", "PAUSED", "~/paused")
	off.Enabled = false
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{off, mkSecret("on", "", "")}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSecret(ctx, u.ID, "paused")
	if err != nil || got.Enabled {
		t.Fatalf("paused secret = %v, %v; want enabled false", got, err)
	}
	if got, _ := s.GetSecret(ctx, u.ID, "on"); !got.Enabled {
		t.Fatalf("secret created enabled reads back disabled")
	}
	wantConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("two", "PAUSED", "")}, nil), "env_name")
	wantConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("two", "", "~/paused")}, nil), "file_path")

	var sawPaused bool
	on := true
	upd, err := s.UpdateSecret(ctx, u.ID, "paused", store.SecretUpdate{Enabled: &on, UpdatedAt: T0.Add(time.Hour)},
		func(after []store.Secret) error {
			for _, a := range after {
				sawPaused = sawPaused || (a.Name == "paused" && a.Enabled)
			}
			return nil
		})
	if err != nil || !upd.Enabled || !sawPaused || upd.EnvName != "PAUSED" || string(upd.Value) != "v-paused" {
		t.Fatalf("enable = %v, %v (check saw it enabled: %t)", upd, err, sawPaused)
	}
	off2 := false
	if _, err := s.UpdateSecret(ctx, u.ID, "paused", store.SecretUpdate{Enabled: &off2}, nil); err != nil {
		t.Fatal(err)
	}
	// An update that leaves Enabled nil keeps it.
	desc := "still paused"
	if got, err := s.UpdateSecret(ctx, u.ID, "paused", store.SecretUpdate{Description: &desc}, nil); err != nil || got.Enabled {
		t.Fatalf("update without Enabled = %v, %v; want still disabled", got, err)
	}
	list, _ := s.ListSecrets(ctx, u.ID)
	if len(list) != 2 || list[1].Name != "paused" || list[1].Enabled || !list[0].Enabled {
		t.Fatalf("list = %v", list)
	}
}

// testAgentStatus: the apply report and the replacement note round-trip,
// and every method refuses an unknown workspace.
func testAgentStatus(t *testing.T, s store.Store) {
	u := mkUser(t, s, "hugo")
	w := mkWorkspace(t, s, u, "dev")
	st, err := s.AgentStatus(ctx, w.ID)
	if err != nil || st.WorkspaceID != w.ID || st.Connected || st.LastApply != nil || !st.ConnectedAt.IsZero() {
		t.Fatalf("status before any connection = %+v, %v", st, err)
	}
	rep := proto.ApplyReport{At: T0.Add(time.Minute),
		Outcomes: []proto.Outcome{
			{Secret: "a", Path: "/home/coder/a", EnvName: "A", Outcome: proto.OutcomeWritten},
			{Secret: "b", Path: "/home/coder/a", Outcome: proto.OutcomeCollision, Winner: "a"},
			{Secret: "c", Outcome: proto.OutcomeFailed, Error: "permission denied"},
			{Secret: "d", Path: "/home/coder/d", Outcome: proto.OutcomeDisabled},
		},
		Warnings: []string{"secrets \"a\" and \"b\" both write /home/coder/a"}, LeftBehind: []string{"/home/coder/old"},
		SecretsRevision: 1 << 40}
	if err := s.SetAgentApply(ctx, w.ID, rep); err != nil {
		t.Fatal(err)
	}
	if err := s.AgentReplaced(ctx, w.ID, T0.Add(2*time.Minute), "another agent connected"); err != nil {
		t.Fatal(err)
	}
	st, err = s.AgentStatus(ctx, w.ID)
	if err != nil || st.LastApply == nil || !reflect.DeepEqual(*st.LastApply, rep) {
		t.Fatalf("last apply = %+v, %v; want %+v", st.LastApply, err, rep)
	}
	if !st.ReplacedAt.Equal(T0.Add(2*time.Minute)) || st.ReplacedNote != "another agent connected" || st.Connected {
		t.Fatalf("replaced = %v %q connected=%t", st.ReplacedAt, st.ReplacedNote, st.Connected)
	}
	rep2 := proto.ApplyReport{At: T0.Add(3 * time.Minute), Outcomes: []proto.Outcome{{Secret: "a", Outcome: proto.OutcomeUnchanged}}}
	if err := s.SetAgentApply(ctx, w.ID, rep2); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.AgentStatus(ctx, w.ID); !reflect.DeepEqual(*st.LastApply, rep2) {
		t.Fatalf("second report = %+v; want it to replace the first", st.LastApply)
	}

	missing := uuid.NewString()
	for name, err := range map[string]error{
		"AgentConnected": s.AgentConnected(ctx, missing, store.AgentConnection{ID: "c", At: T0}),
		"AgentReplaced":  s.AgentReplaced(ctx, missing, T0, "x"),
		"SetAgentApply":  s.SetAgentApply(ctx, missing, rep),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s on a missing workspace: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := s.AgentStatus(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AgentStatus of a missing workspace: %v, want ErrNotFound", err)
	}
	if err := s.AgentDisconnected(ctx, missing, "c", T0); err != nil {
		t.Errorf("AgentDisconnected of a missing workspace: %v, want nil (nothing to end)", err)
	}
}

// testAgentConnections: a replaced connection's end leaves its successor
// connected; DisconnectStaleAgents ends those of this replica and of
// dead ones, not a live replica's.
func testAgentConnections(t *testing.T, s store.Store) {
	u := mkUser(t, s, "ines")
	w, w2 := mkWorkspace(t, s, u, "one"), mkWorkspace(t, s, u, "two")
	c1 := store.AgentConnection{ID: "c1", RemoteAddr: "10.0.0.1:5000", AgentVersion: "v1.0.0", At: T0}
	c2 := store.AgentConnection{ID: "c2", RemoteAddr: "10.0.0.2:6000", AgentVersion: "v1.1.0", At: T0.Add(time.Second)}
	for _, c := range []store.AgentConnection{c1, c2} {
		if err := s.AgentConnected(ctx, w.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AgentDisconnected(ctx, w.ID, "c1", T0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	st, _ := s.AgentStatus(ctx, w.ID)
	if !st.Connected || st.ConnID != "c2" || st.RemoteAddr != c2.RemoteAddr || st.AgentVersion != "v1.1.0" ||
		!st.ConnectedAt.Equal(c2.At) || !st.DisconnectedAt.IsZero() {
		t.Fatalf("after the replaced connection ended: %+v; want c2 connected", st)
	}
	if err := s.AgentDisconnected(ctx, w.ID, "c2", T0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	st, _ = s.AgentStatus(ctx, w.ID)
	if st.Connected || !st.DisconnectedAt.Equal(T0.Add(3*time.Second)) || !st.ConnectedAt.Equal(c2.At) || st.AgentVersion != "v1.1.0" {
		t.Fatalf("after c2 ended: %+v", st)
	}
	// Replica r1 is alive, r2 stopped beating, r3 never registered; the
	// replica "me" is starting and resets its own agents and those of
	// the dead ones, never r1's.
	for _, r := range []store.Replica{{ID: "r1", RelayURL: "http://10.0.0.1:8080", HeartbeatAt: T0.Add(10 * time.Second)},
		{ID: "r2", HeartbeatAt: T0}, {ID: "me", HeartbeatAt: T0.Add(10 * time.Second)}} {
		if _, err := s.RegisterReplica(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w3, w4, w5 := mkWorkspace(t, s, u, "three"), mkWorkspace(t, s, u, "four"), mkWorkspace(t, s, u, "five")
	holders := map[string]string{w.ID: "me", w2.ID: "r1", w3.ID: "r2", w4.ID: "r3", w5.ID: ""}
	for id, rep := range holders {
		if err := s.AgentConnected(ctx, id, store.AgentConnection{ID: "c3-" + id, At: T0.Add(4 * time.Second), ReplicaID: rep}); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.AgentStatus(ctx, id); !st.Connected || st.ReplicaID != rep {
			t.Fatalf("connected through %q: %+v", rep, st)
		}
	}
	n, err := s.DisconnectStaleAgents(ctx, "me", T0.Add(5*time.Second), T0.Add(11*time.Second))
	if err != nil || n != 4 {
		t.Fatalf("DisconnectStaleAgents: %d, %v; want 4 (own, stale, unregistered, none)", n, err)
	}
	for id, rep := range holders {
		st, _ := s.AgentStatus(ctx, id)
		if rep == "r1" {
			if !st.Connected || st.ReplicaID != "r1" {
				t.Fatalf("a live replica's agent was reset: %+v", st)
			}
			continue
		}
		if st.Connected || st.ReplicaID != "" || !st.DisconnectedAt.Equal(T0.Add(11*time.Second)) {
			t.Fatalf("agent held by %q after DisconnectStaleAgents: %+v", rep, st)
		}
	}
	if _, err := s.Replica(ctx, "r2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the stale replica is still registered: %v", err)
	}
	// The live replica's agent disconnects: the holder is cleared.
	if err := s.AgentDisconnected(ctx, w2.ID, "c3-"+w2.ID, T0.Add(12*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.AgentStatus(ctx, w2.ID); st.Connected || st.ReplicaID != "" {
		t.Fatalf("after its disconnect: %+v", st)
	}
}

// testReplicas: registration, refresh, lookup and removal.
func testReplicas(t *testing.T, s store.Store) {
	if _, err := s.Replica(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Replica of an unknown id: %v, want ErrNotFound", err)
	}
	r := store.Replica{ID: "a", RelayURL: "http://10.0.0.1:8080", HeartbeatAt: T0}
	if existed, err := s.RegisterReplica(ctx, r); err != nil || existed {
		t.Fatalf("first registration: existed=%t, %v", existed, err)
	}
	r.RelayURL, r.HeartbeatAt = "https://10.0.0.2:8443", T0.Add(time.Minute)
	if existed, err := s.RegisterReplica(ctx, r); err != nil || !existed {
		t.Fatalf("heartbeat: existed=%t, %v; want true", existed, err)
	}
	got, err := s.Replica(ctx, "a")
	if err != nil || got.RelayURL != r.RelayURL || !got.HeartbeatAt.Equal(r.HeartbeatAt) || got.ID != "a" {
		t.Fatalf("Replica = %+v, %v; want %+v", got, err, r)
	}
	// A fresh heartbeat keeps a replica through a sweep by another.
	if _, err := s.DisconnectStaleAgents(ctx, "b", T0.Add(30*time.Second), T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replica(ctx, "a"); err != nil {
		t.Fatalf("a live replica was unregistered by another's sweep: %v", err)
	}
	for range 2 {
		if err := s.RemoveReplica(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Replica(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after RemoveReplica: %v", err)
	}
	// A replica swept by another (late heartbeat) learns it at its next
	// registration.
	if _, err := s.RegisterReplica(ctx, store.Replica{ID: "late", HeartbeatAt: T0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DisconnectStaleAgents(ctx, "b", T0.Add(time.Second), T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if existed, err := s.RegisterReplica(ctx, store.Replica{ID: "late", HeartbeatAt: T0.Add(time.Minute)}); err != nil || existed {
		t.Fatalf("registration after a sweep: existed=%t, %v; want false", existed, err)
	}
}
