// Package storetest is the conformance suite every store.Store must pass:
// the embedded SQLite store and the PostgreSQL store (pgstore). Run it
// from the implementation's tests with a function that opens a fresh, empty
// store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/google/uuid"
)

// Opener returns a fresh, empty store; the suite closes it.
type Opener func(t *testing.T) store.Store

// Run runs every conformance test against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testUsers},
		{"FirstUserOnlyOnce", testFirstUser},
		{"Sessions", testSessions},
		{"Workspaces", testWorkspaces},
		{"SecretsCRUD", testSecretsCRUD},
		{"SecretConflicts", testSecretConflicts},
		{"CreateAllOrNothing", testAllOrNothing},
		{"CheckSeesAfterSet", testCheckSeesAfter},
		{"ConcurrentCapHolds", testConcurrentCap},
		{"LoginCounters", testLoginCounters},
		{"LoginCountersConcurrent", testLoginCountersConcurrent},
		{"PruneLoginCounters", testPruneLoginCounters},
		{"ValueFormat", testValueFormat},
		{"ScanSecrets", testScanSecrets},
		{"SwapSecretValue", testSwapSecretValue},
		{"SecretEnabled", testSecretEnabled},
		{"SecretsRevision", testSecretsRevision},
		{"AgentStatus", testAgentStatus},
		{"AgentStatusConnections", testAgentConnections},
		{"AgentEvents", testAgentEvents},
		{"Replicas", testReplicas},
		{"OIDCFlows", testOIDCFlows},
		{"HostileLookups", testHostileLookups},
		{"Closed", testClosed},
	}
	tests = append(tests, lifecycleTests...)
	tests = append(tests, scopeTests...)
	tests = append(tests, startLogsTests...)
	tests = append(tests, auditTests...)
	tests = append(tests, replicaLoadTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			tt.fn(t, s)
		})
	}
}

var ctx = context.Background()

// T0 is the suite's fixed clock origin.
var T0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func mkUser(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	u := store.User{ID: uuid.NewString(), Username: name, Email: name + "@example.com",
		PasswordHash: []byte("hash"), CreatedAt: T0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func mkSecret(name, env, file string) store.Secret {
	return store.Secret{ID: uuid.NewString(), Name: name, EnvName: env, FilePath: file,
		Value: []byte("v-" + name), Enabled: true, CreatedAt: T0, UpdatedAt: T0}
}

func wantConflict(t *testing.T, err error, field string) {
	t.Helper()
	var ce *store.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, store.ErrConflict) || ce.Field != field {
		t.Fatalf("err = %v, want conflict on %s", err, field)
	}
}

func testUsers(t *testing.T, s store.Store) {
	u := mkUser(t, s, "Alice")
	for _, get := range []func() (store.User, error){
		func() (store.User, error) { return s.UserByID(ctx, u.ID) },
		func() (store.User, error) { return s.UserByUsername(ctx, "alice") },
		func() (store.User, error) { return s.UserByEmail(ctx, "ALICE@example.com") },
	} {
		got, err := get()
		if err != nil || got.ID != u.ID || got.Username != "Alice" || !got.CreatedAt.Equal(T0) {
			t.Fatalf("lookup = %+v, %v", got, err)
		}
	}
	if _, err := s.UserByUsername(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	dup := store.User{ID: uuid.NewString(), Username: "ALICE", Email: "x@example.com", CreatedAt: T0}
	wantConflict(t, s.CreateUser(ctx, dup), "username")
	dup.Username, dup.Email = "bob", "Alice@Example.com"
	wantConflict(t, s.CreateUser(ctx, dup), "email")
	mkUser(t, s, "bob")
	all, err := s.ListUsers(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("ListUsers = %d, %v", len(all), err)
	}
}

func testFirstUser(t *testing.T, s store.Store) {
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateFirstUser(ctx, store.User{ID: uuid.NewString(), Username: fmt.Sprint("u", i),
				Email: fmt.Sprint("u", i, "@x"), Role: store.RoleAdmin, CreatedAt: T0})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d first users created, want 1", wins.Load())
	}
}

func testSessions(t *testing.T, s store.Store) {
	u := mkUser(t, s, "carol")
	h := []byte("0123456789abcdef0123456789abcdef")
	if err := s.CreateSession(ctx, store.Session{TokenHash: h, UserID: u.ID, CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByHash(ctx, h, T0.Add(time.Minute))
	if err != nil || got.UserID != u.ID {
		t.Fatalf("SessionByHash = %+v, %v", got, err)
	}
	if _, err := s.SessionByHash(ctx, h, T0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	// SessionUser: the same session and the user as UserByID reads it.
	sess, su, err := s.SessionUser(ctx, h, T0.Add(time.Minute))
	want, _ := s.UserByID(ctx, u.ID)
	if err != nil || !reflect.DeepEqual(sess, got) || !reflect.DeepEqual(su, want) || su.ID != u.ID {
		t.Fatalf("SessionUser = %+v, %+v, %v; want %+v, %+v", sess, su, err, got, want)
	}
	if _, _, err := s.SessionUser(ctx, h, T0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SessionUser of an expired session: %v", err)
	}
	if _, _, err := s.SessionUser(ctx, []byte("no such hash"), T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SessionUser of an unknown session: %v", err)
	}
	if err := s.DeleteSession(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, h, T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	if _, _, err := s.SessionUser(ctx, h, T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SessionUser of a deleted session: %v", err)
	}
}

func testWorkspaces(t *testing.T, s store.Store) {
	u := mkUser(t, s, "dave")
	w := store.Workspace{ID: uuid.NewString(), Name: "dev", OwnerID: u.ID, AgentTokenHash: []byte("tok-hash-1"), CreatedAt: T0,
		Template: store.Template{Env: map[string]string{"A": "1"}, Scripts: []proto.Script{{Name: "s", Script: "true", TimeoutSeconds: 5}},
			Apps: []proto.App{{Slug: "app", Command: "sleep 1"}}}}
	if err := s.CreateWorkspace(ctx, w); err != nil {
		t.Fatal(err)
	}
	w2 := w
	w2.ID, w2.AgentTokenHash = uuid.NewString(), []byte("tok-hash-2")
	wantConflict(t, s.CreateWorkspace(ctx, w2), "name")
	for _, get := range []func() (store.Workspace, error){
		func() (store.Workspace, error) { return s.WorkspaceByID(ctx, w.ID) },
		func() (store.Workspace, error) { return s.WorkspaceByName(ctx, u.ID, "dev") },
	} {
		got, err := get()
		if err != nil || got.ID != w.ID || got.Template.Env["A"] != "1" || len(got.Template.Scripts) != 1 || got.Template.Apps[0].Slug != "app" {
			t.Fatalf("lookup = %+v, %v", got, err)
		}
	}
	// The agent's connect lookup reads the whole workspace, its template
	// included (the agent's first manifest is answered from it), and its
	// owner (the connect admits the token on it).
	got, owner, err := s.WorkspaceByAgentTokenHash(ctx, []byte("tok-hash-1"))
	if err != nil || got.ID != w.ID || got.Name != "dev" || got.OwnerID != u.ID || string(got.AgentTokenHash) != "tok-hash-1" ||
		got.Template.Env["A"] != "1" || len(got.Template.Scripts) != 1 || len(got.Template.Apps) != 1 || !got.CreatedAt.Equal(T0) {
		t.Fatalf("lookup by token = %+v, %v", got, err)
	}
	if owner.ID != u.ID || owner.Username != "dave" || owner.Email != u.Email || !owner.CreatedAt.Equal(u.CreatedAt) || owner.Suspended() {
		t.Fatalf("lookup by token: owner %+v, want %+v", owner, u)
	}
	if _, _, err := s.WorkspaceByAgentTokenHash(ctx, []byte("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	// A suspended owner comes back suspended, which is what refuses the
	// connect.
	suspend := func(at time.Time) {
		t.Helper()
		if _, err := s.UpdateUser(ctx, u.ID, func(x *store.User) error { x.SuspendedAt = at; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	suspend(T0.Add(time.Hour))
	if _, owner, err := s.WorkspaceByAgentTokenHash(ctx, []byte("tok-hash-1")); err != nil || !owner.SuspendedAt.Equal(T0.Add(time.Hour)) {
		t.Fatalf("lookup by token, owner suspended: %+v, %v", owner, err)
	}
	suspend(time.Time{})
	if err := s.SetWorkspaceState(ctx, w.ID, proto.StateReady, T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.WorkspaceByID(ctx, w.ID)
	if got.State != proto.StateReady || !got.StateAt.Equal(T0.Add(time.Minute)) {
		t.Fatalf("state = %q at %v", got.State, got.StateAt)
	}
	if err := s.SetWorkspaceState(ctx, "missing", "ready", T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("state of missing workspace: %v", err)
	}
	other := mkUser(t, s, "erin")
	w3 := store.Workspace{ID: uuid.NewString(), Name: "dev", OwnerID: other.ID, AgentTokenHash: []byte("tok-hash-3"), CreatedAt: T0}
	if err := s.CreateWorkspace(ctx, w3); err != nil {
		t.Fatalf("same name, other owner: %v", err)
	}
	mine, _ := s.ListWorkspaces(ctx, u.ID)
	all, _ := s.ListWorkspaces(ctx, "")
	if len(mine) != 1 || len(all) != 2 {
		t.Fatalf("list: mine=%d all=%d", len(mine), len(all))
	}
}

func testSecretsCRUD(t *testing.T, s store.Store) {
	u := mkUser(t, s, "frank")
	a, b := mkSecret("b-secret", "B", ""), mkSecret("a-secret", "", "~/a")
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSecrets(ctx, u.ID)
	if err != nil || len(list) != 2 || list[0].Name != "a-secret" || string(list[1].Value) != "v-b-secret" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	desc, empty := "new description", ""
	got, err := s.UpdateSecret(ctx, u.ID, "b-secret", store.SecretUpdate{Description: &desc, EnvName: &empty, UpdatedAt: T0.Add(time.Second)}, nil)
	if err != nil || got.Description != desc || got.EnvName != "" || string(got.Value) != "v-b-secret" || got.FilePath != "" {
		t.Fatalf("update = %+v, %v", got, err)
	}
	got, _ = s.GetSecret(ctx, u.ID, "b-secret")
	if !got.UpdatedAt.Equal(T0.Add(time.Second)) || !got.CreatedAt.Equal(T0) || got.Description != desc {
		t.Fatalf("stored after update = %+v", got)
	}
	got, err = s.UpdateSecret(ctx, u.ID, "b-secret", store.SecretUpdate{Value: []byte("v2")}, nil)
	if err != nil || string(got.Value) != "v2" || got.Description != desc {
		t.Fatalf("value update = %+v, %v", got, err)
	}
	if _, err := s.UpdateSecret(ctx, u.ID, "missing", store.SecretUpdate{Description: &desc}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.DeleteSecret(ctx, u.ID, "a-secret"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSecret(ctx, u.ID, "a-secret"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.GetSecret(ctx, u.ID, "a-secret"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	other := mkUser(t, s, "gina")
	if list, _ := s.ListSecrets(ctx, other.ID); len(list) != 0 {
		t.Fatalf("another user sees %d secrets", len(list))
	}
}

func testSecretConflicts(t *testing.T, s store.Store) {
	u := mkUser(t, s, "hank")
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("one", "ENV1", "~/f1")}, nil); err != nil {
		t.Fatal(err)
	}
	wantConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("one", "", "")}, nil), "name")
	wantConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("two", "ENV1", "")}, nil), "env_name")
	wantConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("two", "", "~/f1")}, nil), "file_path")
	// File paths are compared cleaned, as the agent will write them, and
	// one may not be a directory of another: the agent could never write
	// both.
	for _, p := range []string{"~/./f1", "~/sub/../f1", "~//f1", "~/f1/inside", "~/nested/f"} {
		if p == "~/nested/f" {
			if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("nest", "", "~/nested/f/deeper")}, nil); err != nil {
				t.Fatal(err)
			}
		}
		wantConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("two", "", p)}, nil), "file_path")
	}
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("sibling", "", "~/f10")}, nil); err != nil {
		t.Fatalf("a sibling path that shares a prefix is no conflict: %v", err)
	}
	// Empty targets never clash.
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("two", "", ""), mkSecret("three", "", "")}, nil); err != nil {
		t.Fatal(err)
	}
	env := "ENV1"
	_, err := s.UpdateSecret(ctx, u.ID, "two", store.SecretUpdate{EnvName: &env}, nil)
	wantConflict(t, err, "env_name")
	// Renaming a secret's own target to itself is not a conflict.
	if _, err := s.UpdateSecret(ctx, u.ID, "one", store.SecretUpdate{EnvName: &env}, nil); err != nil {
		t.Fatal(err)
	}
	other := mkUser(t, s, "ivy")
	if err := s.CreateSecrets(ctx, other.ID, []store.Secret{mkSecret("one", "ENV1", "~/f1")}, nil); err != nil {
		t.Fatalf("other users may reuse names and targets: %v", err)
	}
}

func testAllOrNothing(t *testing.T, s store.Store) {
	u := mkUser(t, s, "jack")
	err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("x", "X", ""), mkSecret("y", "X", "")}, nil)
	wantConflict(t, err, "env_name")
	if list, _ := s.ListSecrets(ctx, u.ID); len(list) != 0 {
		t.Fatalf("a failed batch left %d secrets", len(list))
	}
}

func testCheckSeesAfter(t *testing.T, s store.Store) {
	u := mkUser(t, s, "kate")
	_ = s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("a", "", "")}, nil)
	refuse := errors.New("refused by check")
	var seen []string
	err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("b", "", "")}, func(after []store.Secret) error {
		for _, x := range after {
			seen = append(seen, x.Name)
		}
		return refuse
	})
	if !errors.Is(err, refuse) || len(seen) != 2 {
		t.Fatalf("err = %v, check saw %v", err, seen)
	}
	_, err = s.UpdateSecret(ctx, u.ID, "a", store.SecretUpdate{Value: []byte("bigger")}, func(after []store.Secret) error {
		if len(after) != 1 || string(after[0].Value) != "bigger" {
			t.Errorf("update check saw %+v", after)
		}
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("update err = %v", err)
	}
	got, _ := s.GetSecret(ctx, u.ID, "a")
	if string(got.Value) != "v-a" {
		t.Fatalf("refused update changed the value")
	}
	if list, _ := s.ListSecrets(ctx, u.ID); len(list) != 1 {
		t.Fatalf("refused create left %d secrets", len(list))
	}
}

func testConcurrentCap(t *testing.T, s store.Store) {
	u := mkUser(t, s, "liam")
	capErr := errors.New("cap")
	check := func(after []store.Secret) error {
		if len(after) > 50 {
			return capErr
		}
		return nil
	}
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret(fmt.Sprint("s", i), "", "")}, check); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, capErr) {
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	list, _ := s.ListSecrets(ctx, u.ID)
	if ok.Load() != 50 || len(list) != 50 {
		t.Fatalf("created %d (stored %d), want exactly 50", ok.Load(), len(list))
	}
}

func testClosed(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.ListUsers(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := s.CreateUser(ctx, store.User{ID: "x"}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}
