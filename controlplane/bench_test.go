package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// BenchmarkCreateList runs 100 concurrent clients, each its own user,
// against a real server on SQLite (on PostgreSQL with
// COURIER_TEST_STORE=postgres). One op is a create, a list and a delete
// of the created secret (three requests). It reports requests per second
// and the p99 latency of a request.
//
// The clients send as fast as answers come (a closed loop), so by Little's
// law the mean latency is 100 / throughput: at 3,000 req/s it cannot be
// under 33 ms. BenchmarkCreateListAt3000 offers a fixed 3,000 req/s
// instead and measures the latency at that load.
func BenchmarkCreateList(b *testing.B) { benchCreateList(b, 0, 1) }

// BenchmarkCreateListAt3000 is BenchmarkCreateList with each of the 100
// clients starting an op every 100 ms: 3,000 requests a second offered.
// Latency counts from the scheduled start, so a server that falls behind
// pays for the queue (no coordinated omission).
func BenchmarkCreateListAt3000(b *testing.B) { benchCreateList(b, 100*time.Millisecond, 1) }

// BenchmarkCreateListAt3300 offers 10% more (an op every 90 ms per
// client, 3,333 req/s), so that the throughput achieved, which loses a
// little to the staggered start and the last ops' tail, stays above 3,000
// while the latency is measured at that load.
func BenchmarkCreateListAt3300(b *testing.B) { benchCreateList(b, 90*time.Millisecond, 1) }

// BenchmarkCreateListTwoReplicasAt3300 is BenchmarkCreateListAt3300 on
// PostgreSQL through two replicas sharing one schema: the clients
// alternate between them (client i uses replica i%2), as behind a
// balancer. It always runs on PostgreSQL (COURIER_TEST_POSTGRES_URL).
func BenchmarkCreateListTwoReplicasAt3300(b *testing.B) {
	benchCreateList(b, 90*time.Millisecond, 2)
}

// benchEnv is a running control plane (one or more replicas on one
// database) with 100 users signed in, for the API benchmarks. Its servers
// stop when the benchmark ends.
type benchEnv struct {
	srvs   []*Server
	hc     *http.Client
	tokens []string // one session per client, each its own user
}

// newBenchEnv starts replicas servers (on PostgreSQL when more than one,
// else on the test store) and signs in clients users.
func newBenchEnv(b *testing.B, clients, replicas int) *benchEnv {
	pgURL := ""
	if replicas > 1 {
		pgURL = pgtest.URL(b)
	}
	e := &benchEnv{srvs: make([]*Server, replicas)}
	for i := range e.srvs {
		cfg := DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.DataDir = b.TempDir()
		cfg.BcryptCost = bcrypt.MinCost
		cfg.PostgresURL = pgURL
		useTestStore(b, &cfg)
		srv, err := New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		b.Cleanup(func() {
			cancel()
			<-done
			_ = srv.Close()
		})
		e.srvs[i] = srv
	}
	e.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	b.Cleanup(e.hc.CloseIdleConnections)
	srv := e.srvs[0]
	login := func(user string) string {
		_, out, _ := e.call(srv, "POST", "/api/v2/users/login", "", map[string]string{"username": user, "password": testPassword})
		var lr LoginResponse
		_ = json.Unmarshal(out, &lr)
		return lr.SessionToken
	}
	if st, out, err := e.call(srv, "POST", "/api/v2/users/first", "", map[string]string{"username": "root", "email": "root@example.com", "password": testPassword}); st != 201 {
		b.Fatalf("first user: %d %s %v", st, out, err)
	}
	admin := login("root")
	e.tokens = make([]string, clients)
	for i := range e.tokens {
		name := fmt.Sprintf("user%03d", i)
		if st, out, _ := e.call(srv, "POST", "/api/v2/users", admin, map[string]string{"username": name, "email": name + "@example.com", "password": testPassword}); st != 201 {
			b.Fatalf("create user: %d %s", st, out)
		}
		e.tokens[i] = login(name)
	}
	return e
}

// call sends one JSON request to srv and returns the status and body.
func (e *benchEnv) call(srv *Server, method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, srv.URL()+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(HeaderSessionToken, token)
	}
	res, err := e.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

func benchCreateList(b *testing.B, every time.Duration, replicas int) {
	const clients = 100
	e := newBenchEnv(b, clients, replicas)
	srvs, tokens := e.srvs, e.tokens

	var (
		next atomic.Int64
		mu   sync.Mutex
		lats []time.Duration
		// readLats are the lists alone, from when each was sent: they
		// write nothing, so they wait on no fsync.
		readLats []time.Duration
		wg       sync.WaitGroup
		failure  atomic.Value
	)
	timed := func(srv *Server, local *[]time.Duration, t0 time.Time, want int, method, path, token string, body any) {
		st, out, err := e.call(srv, method, path, token, body)
		*local = append(*local, time.Since(t0))
		if err != nil || st != want {
			failure.CompareAndSwap(nil, fmt.Sprintf("%s %s: %d %s %v", method, path, st, out, err))
		}
	}
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local, reads []time.Duration
			mine := srvs[c%replicas]
			// Paced clients start staggered, then every `every`; a
			// request's latency runs from its scheduled start.
			sched := start.Add(every * time.Duration(c) / clients)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					break
				}
				name := fmt.Sprintf("s%d", i)
				at := func() time.Time {
					if every == 0 {
						return time.Now()
					}
					return sched
				}
				if every > 0 {
					time.Sleep(time.Until(sched))
				}
				timed(mine, &local, at(), 201, "POST", "/api/v2/users/me/secrets", tokens[c], map[string]string{"name": name, "value": "v", "env_name": "E" + name})
				if every > 0 {
					sched = sched.Add(every / 3)
					time.Sleep(time.Until(sched))
				}
				t0 := time.Now()
				timed(mine, &local, at(), 200, "GET", "/api/v2/users/me/secrets", tokens[c], nil)
				reads = append(reads, time.Since(t0))
				if every > 0 {
					sched = sched.Add(every / 3)
					time.Sleep(time.Until(sched))
				}
				timed(mine, &local, at(), 204, "DELETE", "/api/v2/users/me/secrets/"+name, tokens[c], nil)
				sched = sched.Add(every - 2*(every/3))
			}
			mu.Lock()
			lats = append(lats, local...)
			readLats = append(readLats, reads...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failure.Load(); f != nil {
		b.Fatal(f)
	}
	slices.Sort(lats)
	if len(lats) > 0 {
		b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
		slices.Sort(readLats)
		b.ReportMetric(float64(readLats[len(readLats)*99/100].Microseconds())/1000, "p99-list-ms")
	}
}
