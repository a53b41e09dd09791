package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// TestFailedSecretWritesLeaveNothingOpen: a secret write fails on the
// server in its last batch, the one carrying COMMIT (a missing secret's
// delete, a duplicate name), or in Go between its batches (a refused
// check); each changes nothing, records nothing, and gives its connection
// back idle, so the pool never fills with connections left in a
// transaction. More failures than the pool has connections, then a write
// that must succeed.
func TestFailedSecretWritesLeaveNothingOpen(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.URL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	t0 := time.Unix(1_700_000_000, 0).UTC()
	u := store.User{ID: uuid.NewString(), Username: "alice", Email: "alice@example.com", PasswordHash: []byte("h"), CreatedAt: t0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	secret := func(name, env string) store.Secret {
		return store.Secret{ID: uuid.NewString(), Name: name, EnvName: env, Value: []byte("v"), Enabled: true, CreatedAt: t0, UpdatedAt: t0}
	}
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{secret("a", "A")}, nil); err != nil {
		t.Fatal(err)
	}
	rev0, err := s.SecretsRevision(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused by the check")
	rec := audit.Record{Time: t0, Action: "secret.delete", Actor: audit.Actor{Kind: audit.ActorUser, ID: u.ID},
		Target: audit.Target{Kind: "secret", Name: "x", OwnerID: u.ID}, Outcome: audit.Success}
	for i := range 3 * int(s.pool.Config().MaxConns) {
		c, p := audit.WithRecords(ctx, rec)
		switch i % 3 {
		case 0:
			err = s.DeleteSecret(c, u.ID, "missing")
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("delete of a missing secret: %v, want ErrNotFound", err)
			}
		case 1:
			err = s.CreateSecrets(c, u.ID, []store.Secret{secret("a", "B")}, nil)
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("duplicate create: %v, want ErrConflict", err)
			}
		case 2:
			err = s.CreateSecrets(c, u.ID, []store.Secret{secret("b", "B")}, func([]store.Secret) error { return refused })
			if !errors.Is(err, refused) {
				t.Fatalf("refused create: %v, want the check's error", err)
			}
		}
		if p.Written() {
			t.Fatalf("failure %d: its records are marked written", i)
		}
	}
	if st := s.pool.Stat(); st.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after the failures", st.AcquiredConns())
	}
	for _, c := range s.pool.AcquireAllIdle(ctx) {
		status := c.Conn().PgConn().TxStatus()
		c.Release()
		if status != 'I' {
			t.Fatalf("a pooled connection is in transaction state %q", status)
		}
	}
	if rev, err := s.SecretsRevision(ctx, u.ID); err != nil || rev != rev0 {
		t.Fatalf("revision %d after the failures (%v), want %d: a failed write moved it", rev, err, rev0)
	}
	if recs, err := s.ListAudit(ctx, audit.Filter{}); err != nil || len(recs) != 0 {
		t.Fatalf("%d audit records after failed writes (%v), want 0", len(recs), err)
	}
	if err := s.DeleteSecret(ctx, u.ID, "a"); err != nil {
		t.Fatalf("delete after the failures: %v", err)
	}
	if rev, _ := s.SecretsRevision(ctx, u.ID); rev != rev0+1 {
		t.Fatalf("revision %d after a delete, want %d", rev, rev0+1)
	}
}
