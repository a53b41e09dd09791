package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
	"github.com/courierhq/courier/internal/benchload"
	"github.com/courierhq/courier/internal/cputime"
)

// BenchmarkSecretWrites measures the API's busiest writes on PostgreSQL
// without HTTP: 64 writers, each its own user, create a secret and delete
// it, each write with its audit record armed as the API arms it. One op is
// one write. It reports writes a second and the CPU time a write costs
// this process and the database's processes on this machine, which is
// where the round trips a write takes show (see secrettx.go).
func BenchmarkSecretWrites(b *testing.B) {
	pgtest.ServerURL(b)
	s := open(b, pgtest.URL(b))
	const writers = 64
	users := make([]store.User, writers)
	for i := range users {
		users[i] = store.User{ID: uuid.NewString(), Username: fmt.Sprintf("writer%d", i), Email: fmt.Sprintf("w%d@example.com", i),
			PasswordHash: []byte("h"), CreatedAt: time.Now()}
		if err := s.CreateUser(ctx, users[i]); err != nil {
			b.Fatal(err)
		}
	}
	armed := func(u store.User, action, name string) audit.Record {
		return audit.Record{Time: time.Now(), Actor: audit.Actor{Kind: audit.ActorUser, ID: u.ID, Name: u.Username},
			Source: "192.0.2.10", UserAgent: "courier-cli/1.4.0 (linux; amd64)", Action: action,
			Target: audit.Target{Kind: "secret", Name: name, OwnerID: u.ID}, Outcome: audit.Success,
			RequestID: "5f0c7d1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f", Replica: "3c2b1a09-8f7e-4d6c-5b4a-392817161514"}
	}
	b.ResetTimer()
	db0 := cputime.Named("postgres")
	rate, cpu, err := benchload.Run(writers, (b.N+1)/2, 2, func(w int, i int64) error {
		u, name := users[w], fmt.Sprintf("s%d", i)
		sec := store.Secret{ID: uuid.NewString(), Name: name, EnvName: "E" + name, Value: []byte("v"), Enabled: true,
			CreatedAt: time.Now(), UpdatedAt: time.Now()}
		c, _ := audit.WithRecords(ctx, armed(u, "secret.create", name))
		if err := s.CreateSecrets(c, u.ID, []store.Secret{sec}, nil); err != nil {
			return err
		}
		c, _ = audit.WithRecords(ctx, armed(u, "secret.delete", name))
		return s.DeleteSecret(c, u.ID, name)
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "writes/s")
	b.ReportMetric(cpu, "cpu-µs/write")
	b.ReportMetric(float64((cputime.Named("postgres")-db0).Microseconds())/float64(2*((b.N+1)/2)), "db-cpu-µs/write")
}
