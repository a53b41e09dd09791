package agentapi_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
	"github.com/courierhq/courier/internal/cputime"
)

// BenchmarkReconnect measures what one agent's reconnect costs, both ends
// in this process over loopback TCP: the websocket upgrade and token check,
// the manifest, the secrets, the apply report and the close — what each of
// a restart storm's agents does. 32 agents reconnect at once; it reports
// the CPU time of a reconnect (the whole process: server and agents), which
// other processes on a shared machine disturb far less than wall time.
func BenchmarkReconnect(b *testing.B) {
	benchReconnect(b, setupCfg(b, func(c *agentapi.Config) { c.Logger = zap.NewNop() }))
}

// BenchmarkReconnectPostgres is BenchmarkReconnect on PostgreSQL (a schema
// of its own in $COURIER_TEST_POSTGRES_URL's server; start one with fsync
// on, COURIER_PG_FSYNC=on .ci/postgres.sh, for commits that cost what they
// do in production). It also reports the server's CPU a reconnect, summed
// over its processes: the status writes are most of what a reconnect
// commits.
func BenchmarkReconnectPostgres(b *testing.B) {
	st, err := pgstore.Open(context.Background(), pgtest.URL(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	f := setupStore(b, st, func(c *agentapi.Config) { c.Logger = zap.NewNop() })
	db0 := cputime.Named("postgres")
	benchReconnect(b, f)
	b.ReportMetric(float64((cputime.Named("postgres")-db0).Microseconds())/float64(b.N), "db-cpu-µs/reconnect")
}

func benchReconnect(b *testing.B, f *fixture) {
	const agents = 32
	ctx := context.Background()
	// A workspace each: a second connection of one workspace replaces the
	// first.
	for i := range agents {
		sum := sha256.Sum256([]byte(benchToken(i)))
		ws := store.Workspace{ID: fmt.Sprintf("rw%d", i), Name: fmt.Sprintf("reconnect-%d", i), OwnerID: f.owner.ID,
			AgentTokenHash: sum[:], CreatedAt: time.Now(), Template: f.ws.Template}
		if err := f.st.CreateWorkspace(ctx, ws); err != nil {
			b.Fatal(err)
		}
	}
	reconnect := func(token string) error {
		s, err := conn.Dial(ctx, conn.Config{URL: f.http.URL, Token: token})
		if err != nil {
			return err
		}
		defer s.Close()
		if _, err := s.Manifest(ctx); err != nil {
			return err
		}
		if _, err := s.Secrets(ctx); err != nil {
			return err
		}
		return s.ReportApply(ctx, proto.ApplyReport{Outcomes: []proto.Outcome{{Secret: "tok", Outcome: proto.OutcomeUnchanged}}})
	}
	if err := reconnect(benchToken(0)); err != nil { // warm: pools, statement caches
		b.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
		next = make(chan struct{})
	)
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if err := reconnect(benchToken(i)); err != nil {
					mu.Lock()
					ferr = err
					mu.Unlock()
				}
			}
		}()
	}
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	b.StopTimer()
	if ferr != nil {
		b.Fatal(ferr)
	}
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/reconnect")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reconnects/s")
}
