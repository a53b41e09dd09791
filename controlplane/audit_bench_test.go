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
)

// BenchmarkAuditOverhead measures what the audit log costs the API: 100
// concurrent clients (each its own user) run create + list + delete (three
// requests, two audited changes written in their own transactions) against
// one real server, in rounds that alternate the audit on and off (a
// test-only switch; users cannot turn it off), so that both arms see the
// same machine, the same database and the same warm-up. One round is b.N
// ops. It reports the median requests per second of each arm and their
// ratio (on / off). SQLite by default; PostgreSQL with
// COURIER_TEST_STORE=postgres.
func BenchmarkAuditOverhead(b *testing.B) {
	const (
		clients = 100
		rounds  = 6 // on, off, on, off, on, off
	)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = b.TempDir()
	cfg.BcryptCost = bcrypt.MinCost
	useTestStore(b, &cfg)
	srv, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		_ = srv.Close()
	}()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	defer hc.CloseIdleConnections()
	call := func(method, path, token string, body any) (int, []byte, error) {
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
		res, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		out, err := io.ReadAll(res.Body)
		return res.StatusCode, out, err
	}
	login := func(user string) string {
		_, out, _ := call("POST", "/api/v2/users/login", "", map[string]string{"username": user, "password": testPassword})
		var lr LoginResponse
		_ = json.Unmarshal(out, &lr)
		return lr.SessionToken
	}
	if st, out, err := call("POST", "/api/v2/users/first", "", map[string]string{"username": "root", "email": "root@example.com", "password": testPassword}); st != 201 {
		b.Fatalf("first user: %d %s %v", st, out, err)
	}
	admin := login("root")
	tokens := make([]string, clients)
	for i := range tokens {
		name := fmt.Sprintf("user%03d", i)
		if st, out, _ := call("POST", "/api/v2/users", admin, map[string]string{"username": name, "email": name + "@example.com", "password": testPassword}); st != 201 {
			b.Fatalf("create user: %d %s", st, out)
		}
		tokens[i] = login(name)
	}

	round := func(id int) float64 {
		var (
			next    atomic.Int64
			wg      sync.WaitGroup
			failure atomic.Value
			reqs    atomic.Int64
		)
		start := time.Now()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
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
						reqs.Add(1)
						if err != nil || st != r.want {
							failure.CompareAndSwap(nil, fmt.Sprintf("%s %s: %d %s %v", r.method, r.path, st, out, err))
						}
					}
				}
			}()
		}
		wg.Wait()
		if f := failure.Load(); f != nil {
			b.Fatal(f)
		}
		return float64(reqs.Load()) / time.Since(start).Seconds()
	}

	var on, off []float64
	b.ResetTimer()
	for r := range rounds {
		recording := r%2 == 0
		srv.api.audit.off.Store(!recording)
		rate := round(r)
		if recording {
			on = append(on, rate)
		} else {
			off = append(off, rate)
		}
	}
	b.StopTimer()
	srv.api.audit.off.Store(false)
	slices.Sort(on)
	slices.Sort(off)
	medOn, medOff := on[len(on)/2], off[len(off)/2]
	b.ReportMetric(medOn, "on-req/s")
	b.ReportMetric(medOff, "off-req/s")
	b.ReportMetric(medOn/medOff, "on/off")
}
