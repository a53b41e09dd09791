package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// hostile are lookup keys no valid record has: NUL and bytes that are not
// UTF-8 (which some databases cannot even hold as text).
var hostile = []string{"\x00", "a\x00b", "\xff\xfe", "name-\xc3"}

// testHostileLookups: a lookup by a key holding NUL or invalid UTF-8 (a URL
// path segment, a login name as typed) is simply not found; it is not an
// error of the database.
func testHostileLookups(t *testing.T, s store.Store) {
	u := mkUser(t, s, "nora")
	w := mkWorkspace(t, s, u, "dev")
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("k", "K", "~/k")}, nil); err != nil {
		t.Fatal(err)
	}
	notFound := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: err = %v, want ErrNotFound", what, err)
		}
	}
	desc := "d"
	for _, h := range hostile {
		_, err := s.UserByID(ctx, h)
		notFound("UserByID", err)
		_, err = s.UserByUsername(ctx, h)
		notFound("UserByUsername", err)
		_, err = s.UserByEmail(ctx, h)
		notFound("UserByEmail", err)
		_, err = s.GetSecret(ctx, u.ID, h)
		notFound("GetSecret", err)
		_, err = s.GetSecret(ctx, h, "k")
		notFound("GetSecret of a hostile user", err)
		_, err = s.UpdateSecret(ctx, u.ID, h, store.SecretUpdate{Description: &desc}, nil)
		notFound("UpdateSecret", err)
		notFound("DeleteSecret", s.DeleteSecret(ctx, u.ID, h))
		_, err = s.WorkspaceByID(ctx, h)
		notFound("WorkspaceByID", err)
		_, err = s.WorkspaceByName(ctx, u.ID, h)
		notFound("WorkspaceByName", err)
		_, err = s.AgentStatus(ctx, h)
		notFound("AgentStatus", err)
		notFound("SetWorkspaceState", s.SetWorkspaceState(ctx, h, "ready", T0))
		if list, err := s.ListSecrets(ctx, h); err != nil || len(list) != 0 {
			t.Fatalf("ListSecrets of a hostile user = %d, %v", len(list), err)
		}
		if list, err := s.ListWorkspaces(ctx, h); err != nil || len(list) != 0 {
			t.Fatalf("ListWorkspaces of a hostile owner = %d, %v", len(list), err)
		}
		if ok, err := s.SwapSecretValue(ctx, h, []byte("v-k"), []byte("x"), store.FormatPlain); ok || err != nil {
			t.Fatalf("SwapSecretValue of a hostile id = %t, %v", ok, err)
		}
		// A login name as typed becomes a counter key: any bytes count.
		key := "account:" + h
		for want := 1; want <= 2; want++ {
			got, err := s.UpdateLoginCounters(ctx, []string{key}, bump(T0))
			if err != nil || len(got) != 1 || got[0].Failures != want {
				t.Fatalf("login counter %q = %+v, %v; want %d failures", key, got, err, want)
			}
		}
	}
	// Operator-facing text from an agent (its version, its address) may be
	// any bytes; it is stored, and the status still reads.
	if err := s.AgentConnected(ctx, w.ID, store.AgentConnection{ID: "c1", RemoteAddr: "\xff", AgentVersion: "v\x00\xfe", At: T0}); err != nil {
		t.Fatalf("AgentConnected with hostile text: %v", err)
	}
	if err := s.AgentReplaced(ctx, w.ID, T0, "note \xff"); err != nil {
		t.Fatalf("AgentReplaced with hostile text: %v", err)
	}
	if err := s.SetAgentApply(ctx, w.ID, proto.ApplyReport{}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.AgentStatus(ctx, w.ID); err != nil || !st.Connected || st.LastApply == nil {
		t.Fatalf("status after hostile text = %+v, %v", st, err)
	}
	if err := s.AgentDisconnected(ctx, w.ID, "c1", T0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// A template may hold NUL in an env value (JSON escapes it).
	tw := store.Workspace{ID: "w-nul", Name: "nul", OwnerID: u.ID, AgentTokenHash: []byte("nul-hash"), CreatedAt: T0,
		Template: store.Template{Env: map[string]string{"A": "x\x00y"}}}
	if err := s.CreateWorkspace(ctx, tw); err != nil {
		t.Fatalf("template with NUL: %v", err)
	}
	if got, err := s.WorkspaceByID(ctx, tw.ID); err != nil || got.Template.Env["A"] != "x\x00y" {
		t.Fatalf("template with NUL reads back %q, %v", got.Template.Env["A"], err)
	}
	// The store's own record is intact.
	if got, err := s.GetSecret(ctx, u.ID, "k"); err != nil || string(got.Value) != "v-k" {
		t.Fatalf("secret after hostile lookups = %v, %v", got, err)
	}
}
