package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
	"github.com/courierhq/courier/controlplane/store/storetest"
)

// TestPostgresAuditTamper edits the audit table behind the store's back
// and expects audit.Verify to name the record.
func TestPostgresAuditTamper(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.RunAuditTamper(t, func(t *testing.T) (store.Store, storetest.Tamperer) {
		url := pgtest.URL(t)
		return open(t, url), func(t *testing.T, q string) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
}

// TestPostgresAuditListSeesWhatCommittedBefore: a list returns every record
// whose change committed before it, even while other writers are chaining
// (they skip a locked head; a reader waits for it). Another store on the
// same database, as a second replica, appends records all along; each
// round stages a record with a secret write and lists it at once.
func TestPostgresAuditListSeesWhatCommittedBefore(t *testing.T) {
	pgtest.ServerURL(t)
	url := pgtest.URL(t)
	s, other := open(t, url), open(t, url)
	u := store.User{ID: uuid.NewString(), Username: "alice", Email: "alice@example.com", PasswordHash: []byte("h"), CreatedAt: time.Now()}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	rec := func(action, name string) audit.Record {
		return audit.Record{Time: time.Now(), Action: action, Actor: audit.Actor{Kind: audit.ActorUser, ID: u.ID},
			Target: audit.Target{Kind: "secret", Name: name, OwnerID: u.ID}, Outcome: audit.Success}
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := other.AppendAudit(ctx, []audit.Record{rec("agent.apply", "background")}); err != nil {
				done <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("background appends: %v", err)
		}
	}()
	for i := range 100 {
		name := fmt.Sprintf("s%d", i)
		c, p := audit.WithRecords(ctx, rec("secret.create", name))
		sec := store.Secret{ID: uuid.NewString(), Name: name, EnvName: "E" + name, Value: []byte("v"), Enabled: true,
			CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := s.CreateSecrets(c, u.ID, []store.Secret{sec}, nil); err != nil || !p.Written() {
			t.Fatalf("create %s: %v, written %t", name, err, p.Written())
		}
		recs, err := s.ListAudit(ctx, audit.Filter{Action: "secret.create", Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Target.Name != name {
			t.Fatalf("round %d: the newest secret.create listed is %+v, want the one for %s committed before the list", i, recs, name)
		}
	}
}
