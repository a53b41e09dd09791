package controlplane

import (
	"fmt"
	"slices"
	"testing"

	"github.com/courierhq/courier/internal/benchload"
	"github.com/courierhq/courier/internal/cputime"
)

// BenchmarkAuditOverhead measures what the audit log costs the API: 100
// concurrent clients (each its own user) run create + list + delete (three
// requests, two audited changes written in their own transactions) against
// one real server, in rounds that alternate the audit on and off (a
// test-only switch; users cannot turn it off), so that both arms see the
// same machine, the same database and the same warm-up. One round is b.N
// ops. It reports the median requests per second of each arm, their ratio
// (on / off), and the median CPU time per request of each arm (server and
// clients together), which a loaded, shared machine disturbs far less than
// the throughput, and on PostgreSQL the median CPU time per request of the
// database's processes on this machine. SQLite by default; PostgreSQL with
// COURIER_TEST_STORE=postgres.
func BenchmarkAuditOverhead(b *testing.B) {
	const (
		clients = 100
		rounds  = 10 // on, off, on, off, ...
	)
	e := newBenchEnv(b, clients, 1)
	srv, tokens := e.srvs[0], e.tokens
	var dbCPU []float64 // per round, in round order (on, off, on, ...)
	call := func(method, path, token string, body any) (int, []byte, error) {
		return e.call(srv, method, path, token, body)
	}

	round := func(id int) (rate, cpuPerReq float64) {
		db0 := cputime.Named("postgres")
		rate, cpuPerReq, err := benchload.Run(clients, b.N, 3, func(c int, i int64) error {
			name := fmt.Sprintf("r%ds%d", id, i)
			for _, r := range []struct {
				method, path string
				body         any
				want         int
			}{
				{"POST", "/api/v2/users/me/secrets", map[string]string{"name": name, "value": "v", "env_name": "E" + name}, 201},
				{"GET", "/api/v2/users/me/secrets", nil, 200},
				{"DELETE", "/api/v2/users/me/secrets/" + name, nil, 204},
			} {
				st, out, err := call(r.method, r.path, tokens[c], r.body)
				if err != nil || st != r.want {
					return fmt.Errorf("%s %s: %d %s %v", r.method, r.path, st, out, err)
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		// The database's own processes, when it is PostgreSQL on this
		// machine (SQLite's CPU is the process's own).
		dbCPU = append(dbCPU, float64((cputime.Named("postgres")-db0).Microseconds())/float64(3*b.N))
		return rate, cpuPerReq
	}

	alternateAudit(b, srv, rounds, round)
	var on, off []float64
	for i, c := range dbCPU {
		if i%2 == 0 {
			on = append(on, c)
		} else {
			off = append(off, c)
		}
	}
	b.ReportMetric(median(on), "on-db-cpu-µs/req")
	b.ReportMetric(median(off), "off-db-cpu-µs/req")
}

// alternateAudit runs rounds rounds of round (given its index), the
// audit on in even ones and off in odd ones (srv's test-only switch), so
// that both arms share the machine, the database and the warm-up, and
// reports each arm's median rate and CPU per request, and their ratio.
func alternateAudit(b *testing.B, srv *Server, rounds int, round func(id int) (rate, cpuPerReq float64)) {
	var on, off, cpuOn, cpuOff []float64
	b.ResetTimer()
	for r := range rounds {
		recording := r%2 == 0
		srv.api.audit.off.Store(!recording)
		rate, c := round(r)
		if recording {
			on, cpuOn = append(on, rate), append(cpuOn, c)
		} else {
			off, cpuOff = append(off, rate), append(cpuOff, c)
		}
	}
	b.StopTimer()
	srv.api.audit.off.Store(false)
	medOn, medOff := median(on), median(off)
	b.ReportMetric(medOn, "on-req/s")
	b.ReportMetric(medOff, "off-req/s")
	b.ReportMetric(medOn/medOff, "on/off")
	b.ReportMetric(median(cpuOn), "on-cpu-µs/req")
	b.ReportMetric(median(cpuOff), "off-cpu-µs/req")
}

// median returns v's median (the upper one of an even count), sorting v;
// 0 when v is empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// BenchmarkRefusedCredentialFlood measures what recording refused
// credentials (session.refused, tallied per address and reason per
// minute) costs a flood of requests with garbage tokens: 100 concurrent
// clients on one address, in rounds alternating the audit on and off as
// BenchmarkAuditOverhead does. It reports each arm's median throughput and
// CPU time per request, their ratio, and the audit records the whole
// flood left once the tally was flushed (one per address and reason per
// window, whatever b.N). SQLite by default; PostgreSQL with
// COURIER_TEST_STORE=postgres.
func BenchmarkRefusedCredentialFlood(b *testing.B) {
	const (
		clients = 100
		rounds  = 6 // on, off, on, ...
	)
	e := newBenchEnv(b, 1, 1)
	srv := e.srvs[0]
	ctx := b.Context()
	st0, err := srv.store.AuditState(ctx)
	if err != nil {
		b.Fatal(err)
	}
	round := func() (rate, cpuPerReq float64) {
		rate, cpuPerReq, err := benchload.Run(clients, b.N, 1, func(c int, _ int64) error {
			st, out, err := e.call(srv, "GET", "/api/v2/users/me/secrets", fmt.Sprintf("garbage-%d", c), nil)
			if err != nil || st != 401 {
				return fmt.Errorf("%d %s %v", st, out, err)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return rate, cpuPerReq
	}
	alternateAudit(b, srv, rounds, func(int) (float64, float64) { return round() })
	srv.api.audit.refusals.Flush()
	srv.api.audit.batch.Flush(ctx)
	st1, err := srv.store.AuditState(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st1.Head.Seq-st0.Head.Seq), "records")
}
