package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/courierhq/courier/controlplane/store"
)

// scopeTests are the conformance tests of scoped secrets (migration 0010):
// the scope round-trips, and an env name or file path is shared only by
// secrets whose scopes cannot overlap, checked in the write transaction.
var scopeTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"SecretScopes", testSecretScopes},
	{"SecretScopeConflicts", testSecretScopeConflicts},
	{"SecretScopeConflictsConcurrent", testSecretScopeConflictsConcurrent},
}

func scoped(sec store.Secret, scope ...string) store.Secret {
	sec.Workspaces = scope
	return sec
}

func testSecretScopes(t *testing.T, s store.Store) {
	u := mkUser(t, s, "scoper")
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{
		mkSecret("everywhere", "ALL", ""),
		scoped(mkSecret("some", "SOME", ""), "api", "web-*"),
	}, nil); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSecrets(ctx, u.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListSecrets = %v, %v", list, err)
	}
	if list[0].Workspaces != nil {
		t.Fatalf("an unscoped secret reads back with workspaces %q, want nil (all)", list[0].Workspaces)
	}
	if !slices.Equal(list[1].Workspaces, []string{"api", "web-*"}) {
		t.Fatalf("scope read back as %q", list[1].Workspaces)
	}
	got, err := s.GetSecret(ctx, u.ID, "some")
	if err != nil || !slices.Equal(got.Workspaces, []string{"api", "web-*"}) {
		t.Fatalf("GetSecret scope = %q, %v", got.Workspaces, err)
	}
	// An update that does not name the scope keeps it; one that does
	// replaces it; an empty list resets it to every workspace.
	desc := "d"
	if got, err = s.UpdateSecret(ctx, u.ID, "some", store.SecretUpdate{Description: &desc}, nil); err != nil ||
		!slices.Equal(got.Workspaces, []string{"api", "web-*"}) {
		t.Fatalf("update without scope: %q, %v", got.Workspaces, err)
	}
	only := []string{"db", "db"}
	if got, err = s.UpdateSecret(ctx, u.ID, "some", store.SecretUpdate{Workspaces: &only}, nil); err != nil ||
		!slices.Equal(got.Workspaces, []string{"db"}) {
		t.Fatalf("update to [db db]: %q, %v (want repeated entries dropped)", got.Workspaces, err)
	}
	if got, _ = s.GetSecret(ctx, u.ID, "some"); !slices.Equal(got.Workspaces, []string{"db"}) {
		t.Fatalf("stored scope %q, want [db]", got.Workspaces)
	}
	all := []string{}
	if got, err = s.UpdateSecret(ctx, u.ID, "some", store.SecretUpdate{Workspaces: &all}, nil); err != nil || got.Workspaces != nil {
		t.Fatalf("reset to all: %q, %v", got.Workspaces, err)
	}
	if got, _ = s.GetSecret(ctx, u.ID, "some"); got.Workspaces != nil {
		t.Fatalf("stored scope %q after reset, want nil", got.Workspaces)
	}
	scan, err := s.ScanSecrets(ctx, "", 10)
	if err != nil || len(scan) != 2 {
		t.Fatalf("ScanSecrets = %v, %v", scan, err)
	}
}

func wantScopedConflict(t *testing.T, err error, field, other string) {
	t.Helper()
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Field != field || !ce.Scoped || !strings.Contains(ce.Message, other) {
		t.Fatalf("err = %v, want a scoped conflict on %s naming %q", err, field, other)
	}
}

func testSecretScopeConflicts(t *testing.T, s store.Store) {
	u := mkUser(t, s, "sharer")
	// Disjoint literal scopes may share an env name and a file path.
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{
		scoped(mkSecret("prod-token", "TOKEN", "~/.token"), "prod"),
		scoped(mkSecret("dev-token", "TOKEN", "~/.token"), "dev", "web-1"),
	}, nil); err != nil {
		t.Fatalf("disjoint scopes refused: %v", err)
	}
	// A glob matching a literal of the other overlaps; so does "all".
	wantScopedConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{scoped(mkSecret("p2", "TOKEN", ""), "pro*")}, nil), "env_name", "prod-token")
	wantScopedConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("all", "", "~/.token")}, nil), "file_path", "dev-token")
	// Two globs always overlap, even when no name could match both.
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{scoped(mkSecret("web-glob", "GLOB", ""), "web-*")}, nil); err != nil {
		t.Fatal(err)
	}
	wantScopedConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{scoped(mkSecret("api-glob", "GLOB", ""), "api-*")}, nil), "env_name", "web-glob")
	// A literal the other's glob does not match is disjoint.
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{scoped(mkSecret("ci-token", "TOKEN", ""), "ci")}, nil); err != nil {
		t.Fatalf("a literal no other scope matches was refused: %v", err)
	}
	// Within one batch the rule holds too, and nothing is stored.
	wantScopedConflict(t, s.CreateSecrets(ctx, u.ID, []store.Secret{
		scoped(mkSecret("b1", "BATCH", ""), "x"), scoped(mkSecret("b2", "BATCH", ""), "x", "y"),
	}, nil), "env_name", "b1")
	if _, err := s.GetSecret(ctx, u.ID, "b1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused batch stored b1: %v", err)
	}
	// Widening a scope into an overlap is refused and changes nothing.
	wide := []string{"prod", "ci"}
	_, err := s.UpdateSecret(ctx, u.ID, "dev-token", store.SecretUpdate{Workspaces: &wide}, nil)
	wantScopedConflict(t, err, "env_name", "ci-token")
	all := []string{}
	_, err = s.UpdateSecret(ctx, u.ID, "ci-token", store.SecretUpdate{Workspaces: &all}, nil)
	wantScopedConflict(t, err, "env_name", "dev-token")
	got, _ := s.GetSecret(ctx, u.ID, "dev-token")
	if !slices.Equal(got.Workspaces, []string{"dev", "web-1"}) {
		t.Fatalf("a refused update changed the scope to %q", got.Workspaces)
	}
	// Two unscoped secrets clash as before: a plain conflict.
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("plain", "PLAIN", "")}, nil); err != nil {
		t.Fatal(err)
	}
	err = s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("plain2", "PLAIN", "")}, nil)
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Field != "env_name" || ce.Scoped {
		t.Fatalf("err = %v, want an unscoped env_name conflict", err)
	}
	// Another user is unaffected.
	v := mkUser(t, s, "other")
	if err := s.CreateSecrets(ctx, v.ID, []store.Secret{mkSecret("t", "TOKEN", "~/.token")}, nil); err != nil {
		t.Fatalf("another user's secret clashed: %v", err)
	}
}

// testSecretScopeConflictsConcurrent races writers whose scopes overlap
// pairwise: the check runs inside each write transaction, so exactly one
// secret per env name survives.
func testSecretScopeConflictsConcurrent(t *testing.T, s store.Store) {
	u := mkUser(t, s, "racer")
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sec := scoped(mkSecret(fmt.Sprint("r", i), "RACE", ""), "shared", fmt.Sprint("own", i))
			err := s.CreateSecrets(ctx, u.ID, []store.Secret{sec}, nil)
			if err == nil {
				ok.Add(1)
				return
			}
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if list, _ := s.ListSecrets(ctx, u.ID); ok.Load() != 1 || len(list) != 1 {
		t.Fatalf("created %d (stored %d), want exactly 1", ok.Load(), len(list))
	}
}
