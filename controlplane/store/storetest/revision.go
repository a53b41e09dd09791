package storetest

import (
	"errors"
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
}
