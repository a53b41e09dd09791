package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/courierhq/courier/controlplane/store"
)

// testSecretsRevision: every change of a user's secrets raises that user's
// revision, in the same transaction; a refused change, a value swap and
// another user's change do not.
func testSecretsRevision(t *testing.T, s store.Store) {
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	rev := func(u store.User) int64 {
		t.Helper()
		r, err := s.SecretsRevision(ctx, u.ID)
		if err != nil {
			t.Fatalf("SecretsRevision: %v", err)
		}
		return r
	}
	last := rev(alice)
	if last != 0 {
		t.Fatalf("a new user's revision is %d, want 0", last)
	}
	step := func(what string, changed bool, do func() error) {
		t.Helper()
		if err := do(); err != nil && changed {
			t.Fatalf("%s: %v", what, err)
		}
		now := rev(alice)
		switch {
		case changed && now <= last:
			t.Fatalf("%s: revision %d, want more than %d", what, now, last)
		case !changed && now != last:
			t.Fatalf("%s: revision moved from %d to %d", what, last, now)
		}
		last = now
	}
	sec := mkSecret("a", "A", "")
	step("create", true, func() error { return s.CreateSecrets(ctx, alice.ID, []store.Secret{sec}, nil) })
	step("refused create", false, func() error {
		return s.CreateSecrets(ctx, alice.ID, []store.Secret{mkSecret("b", "", "")}, func([]store.Secret) error { return errors.New("no") })
	})
	step("conflicting create", false, func() error {
		return s.CreateSecrets(ctx, alice.ID, []store.Secret{mkSecret("a", "", "")}, nil)
	})
	desc := "d"
	step("update", true, func() error {
		_, err := s.UpdateSecret(ctx, alice.ID, "a", store.SecretUpdate{Description: &desc, UpdatedAt: T0}, nil)
		return err
	})
	step("update of a missing secret", false, func() error {
		_, err := s.UpdateSecret(ctx, alice.ID, "nope", store.SecretUpdate{Description: &desc}, nil)
		return err
	})
	step("value swap", false, func() error {
		_, err := s.SwapSecretValue(ctx, sec.ID, sec.Value, []byte("other"), store.FormatPlain)
		return err
	})
	step("bob's create", false, func() error {
		return s.CreateSecrets(ctx, bob.ID, []store.Secret{mkSecret("x", "", "")}, nil)
	})
	step("delete of a missing secret", false, func() error { return s.DeleteSecret(ctx, alice.ID, "nope") })
	step("delete", true, func() error { return s.DeleteSecret(ctx, alice.ID, "a") })
	if rev(bob) == 0 {
		t.Fatal("bob's create did not raise bob's revision")
	}
	if _, err := s.SecretsRevision(ctx, "no-such-user"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SecretsRevision of an unknown user: %v, want ErrNotFound", err)
	}
	testSecretsAtRevision(t, s, alice, bob)
}

// testSecretsAtRevision: the list and revision read together are those
// read apart (the list in name order, every field), for a user with
// secrets and for one without; an unknown user is ErrNotFound.
func testSecretsAtRevision(t *testing.T, s store.Store, alice, bob store.User) {
	t.Helper()
	if err := s.CreateSecrets(ctx, bob.ID, []store.Secret{mkSecret("c", "C", ""), mkSecret("b", "", "~/b")}, nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []store.User{alice, bob} {
		list, err := s.ListSecrets(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := s.SecretsRevision(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, gotRev, err := s.SecretsAtRevision(ctx, u.ID)
		if err != nil || gotRev != rev || len(got) != len(list) {
			t.Fatalf("%s: SecretsAtRevision = %d secrets at %d, %v; want %d at %d", u.Username, len(got), gotRev, err, len(list), rev)
		}
		for i := range got {
			if !sameSecret(got[i], list[i]) {
				t.Fatalf("%s: secret %d read together %+v, apart %+v", u.Username, i, got[i], list[i])
			}
		}
	}
	if got, _, _ := s.SecretsAtRevision(ctx, bob.ID); len(got) != 3 || got[0].Name != "b" || got[1].Name != "c" || got[2].Name != "x" {
		t.Fatalf("bob's secrets not in name order: %+v", got)
	}
	if _, _, err := s.SecretsAtRevision(ctx, "no-such-user"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SecretsAtRevision of an unknown user: %v, want ErrNotFound", err)
	}
}

// sameSecret compares every field of two secrets.
func sameSecret(a, b store.Secret) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Name == b.Name && a.Description == b.Description &&
		a.EnvName == b.EnvName && a.FilePath == b.FilePath && string(a.Value) == string(b.Value) &&
		a.Format == b.Format && a.Enabled == b.Enabled && a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt) && slices.Equal(a.Workspaces, b.Workspaces)
}
