package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/internal/benchload"
)

// BenchmarkAuditedWrites measures what appending an audit record in the
// change's own transaction costs SQLite's writer, without HTTP around it:
// 64 concurrent writers each create a secret and delete it, in rounds that
// alternate with a record armed per write (the API's shape: actor, source,
// user agent, target with owner, details, request ID) and without. The
// writer is serial (group commit), so its time per write is what bounds the
// API's write throughput; BenchmarkAuditOverhead in controlplane measures
// the whole request. It reports each arm's median writes per second and
// their ratio.
func BenchmarkAuditedWrites(b *testing.B) {
	const (
		writers = 64
		rounds  = 10 // on, off, on, ...
	)
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Each writer is its own user, as each client is in the API's
	// benchmark: a create reads its user's secrets (the caps).
	owners := make([]string, writers)
	for w := range owners {
		owners[w] = fmt.Sprintf("0b7e2f4c-5d1a-4c3e-9f2b-%012d", w)
		if err := s.CreateUser(ctx, store.User{ID: owners[w], Username: fmt.Sprintf("bench%d", w),
			Email: fmt.Sprintf("b%d@x", w), CreatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	record := func(owner, action, name, id string) audit.Record {
		return audit.Record{Time: time.Now(), Actor: audit.Actor{Kind: audit.ActorUser, ID: owner, Name: "bench"},
			Source: "192.0.2.10", UserAgent: "courier-cli/1.4.0 (linux; amd64)", Action: action,
			Target:  audit.Target{Kind: "secret", ID: id, Name: name, OwnerID: owner},
			Outcome: audit.Success, Details: audit.Details(map[string]any{"env_name": "E_" + name}),
			RequestID: "5f0c7d1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f", Replica: "3c2b1a09-8f7e-4d6c-5b4a-392817161514"}
	}
	round := func(id int, on bool) (rate, cpuPerWrite float64) {
		rate, cpuPerWrite, err := benchload.Run(writers, b.N, 2, func(w int, i int64) error {
			owner := owners[w]
			name := fmt.Sprintf("r%ds%d", id, i)
			secID := fmt.Sprintf("%08d-0000-4000-8000-%012d", id, i)
			cctx, dctx := ctx, ctx
			if on {
				cctx, _ = audit.WithRecords(ctx, record(owner, "secret.create", name, secID))
				dctx, _ = audit.WithRecords(ctx, record(owner, "secret.delete", name, secID))
			}
			sec := store.Secret{ID: secID, UserID: owner, Name: name, EnvName: "E_" + name,
				Value: []byte("sealed"), Enabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := s.CreateSecrets(cctx, owner, []store.Secret{sec}, nil); err != nil {
				return err
			}
			return s.DeleteSecret(dctx, owner, name)
		})
		if err != nil {
			b.Fatal(err)
		}
		return rate, cpuPerWrite
	}
	var on, off, cpuOn, cpuOff []float64
	b.ResetTimer()
	for r := range rounds {
		rate, cpu := round(r, r%2 == 0)
		if r%2 == 0 {
			on, cpuOn = append(on, rate), append(cpuOn, cpu)
		} else {
			off, cpuOff = append(off, rate), append(cpuOff, cpu)
		}
	}
	b.StopTimer()
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(median(on), "on-writes/s")
	b.ReportMetric(median(off), "off-writes/s")
	b.ReportMetric(median(on)/median(off), "on/off")
	b.ReportMetric(median(cpuOn), "on-cpu-µs/write")
	b.ReportMetric(median(cpuOff), "off-cpu-µs/write")
}
