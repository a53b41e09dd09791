package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
	"github.com/courierhq/courier/internal/cputime"
)

// BenchmarkAuditAppend measures what an audit record costs on PostgreSQL
// besides the change it describes: staging it in audit_pending, then
// chaining it (moved into audit_log, hashed, indexed for its users in
// audit_involves), in batches of 500 as the chainer takes them after a
// second of API writes. One op is one record. It reports the CPU time a
// record costs this process and the database's processes on this machine
// (the test cluster of .ci/postgres.sh).
func BenchmarkAuditAppend(b *testing.B) {
	pgtest.ServerURL(b)
	s := open(b, pgtest.URL(b))
	const batch = 500
	recs := make([]audit.Record, batch)
	b.ResetTimer()
	cpu0, db0 := cputime.Process(), cputime.Named("postgres")
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for i := range recs[:n] {
			owner := fmt.Sprintf("0b7e2f4c-5d1a-4c3e-9f2b-%012d", (done+i)%100)
			recs[i] = audit.Record{Time: time.Now(), Actor: audit.Actor{Kind: audit.ActorUser, ID: owner, Name: "bench"},
				Source: "192.0.2.10", UserAgent: "courier-cli/1.4.0 (linux; amd64)", Action: "secret.create",
				Target:  audit.Target{Kind: "secret", ID: fmt.Sprintf("s%d", done+i), Name: "deploy-key", OwnerID: owner},
				Outcome: audit.Success, Details: audit.Details(map[string]any{"env_name": "DEPLOY_KEY"}),
				RequestID: "5f0c7d1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f", Replica: "3c2b1a09-8f7e-4d6c-5b4a-392817161514"}
		}
		if err := s.AppendAudit(ctx, recs[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
	b.ReportMetric(float64((cputime.Named("postgres")-db0).Microseconds())/float64(b.N), "db-cpu-µs/record")
}
