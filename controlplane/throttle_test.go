package controlplane

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// passwordCanary is a wrong password that must never be logged.
const passwordCanary = "PWCANARY-91c2-never-log-me"

func loginBody(user, password string) map[string]string {
	return map[string]string{"username": user, "password": password}
}

func retryAfter(t *testing.T, r resp) int {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || n <= 0 {
		t.Fatalf("Retry-After = %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	return n
}

func TestLoginThrottlePerAccount(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	cfgFn := func(c *Config) { c.Now, c.DataDir = clock.Now, dir }
	ts := newTestServer(t, cfgFn)
	ts.setup()

	for i := range 30 {
		r := ts.do("POST", "/api/v2/users/login", "", loginBody("alice", passwordCanary))
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		ts.want(r, want)
	}
	locked := ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("alice", testPassword)), http.StatusTooManyRequests)
	if n := retryAfter(t, locked); n > 60 {
		t.Fatalf("Retry-After %d s after the first lock, want at most the base lockout (60 s)", n)
	}
	// The same answer for an account that does not exist.
	for range 10 {
		ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("nobody", passwordCanary)), http.StatusUnauthorized)
	}
	ghost := ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("nobody", testPassword)), http.StatusTooManyRequests)
	if string(ghost.body) != string(locked.body) || ghost.header.Get("Retry-After") != locked.header.Get("Retry-After") {
		t.Fatalf("locked real account answers %s (Retry-After %s), locked unknown account %s (Retry-After %s)",
			locked.body, locked.header.Get("Retry-After"), ghost.body, ghost.header.Get("Retry-After"))
	}
	// Bob, from the same address, is not locked out by alice's account.
	ts.login("bob", testPassword)

	logs := ts.logs.String()
	if strings.Contains(logs, passwordCanary) || strings.Contains(logs, testPassword) {
		t.Fatal("a password reached the log")
	}
	for _, want := range []string{`"login failed"`, `"login locked after repeated failures"`, `"login refused: too many failed logins"`,
		`"username":"alice"`, `"client_addr":"127.0.0.1"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}

	metrics := string(ts.want(ts.do("GET", "/metrics", "", nil), http.StatusOK).body)
	if !strings.Contains(metrics, `courier_http_requests_total{code="429",method="POST",route="POST /api/v2/users/login"} 22`) {
		t.Error("the refused logins are not counted in /metrics as 429s of the login route")
	}

	// The counters live in the database: a new server on the same data
	// directory still refuses alice.
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	ts2 := newTestServer(t, cfgFn)
	retryAfter(t, ts2.want(ts2.do("POST", "/api/v2/users/login", "", loginBody("alice", testPassword)), http.StatusTooManyRequests))

	// After the lock, the right password works and clears the count; the
	// next wrong one is again only a 401.
	clock.advance(61 * time.Second)
	ts2.login("alice", testPassword)
	ts2.want(ts2.do("POST", "/api/v2/users/login", "", loginBody("alice", passwordCanary)), http.StatusUnauthorized)
	ts2.login("alice", testPassword)
}

func TestLoginThrottleLockGrows(t *testing.T) {
	clock := newFakeClock()
	ts := newTestServer(t, func(c *Config) { c.Now = clock.Now })
	ts.setup()
	var last int
	for round := range 4 {
		for range 10 {
			r := ts.do("POST", "/api/v2/users/login", "", loginBody("alice", passwordCanary))
			if r.status == http.StatusTooManyRequests {
				break
			}
			ts.want(r, http.StatusUnauthorized)
		}
		n := retryAfter(t, ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("alice", testPassword)), http.StatusTooManyRequests))
		if round > 0 && n != 2*last {
			t.Fatalf("lock %d lasts %d s after one of %d s, want it doubled", round, n, last)
		}
		last = n
		clock.advance(time.Duration(n) * time.Second)
	}
	// A quiet window resets the count.
	clock.advance(16 * time.Minute)
	for range 9 {
		ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("alice", passwordCanary)), http.StatusUnauthorized)
	}
	ts.login("alice", testPassword)
}

func TestLoginThrottlePerAddress(t *testing.T) {
	clock := newFakeClock()
	ts := newTestServer(t, func(c *Config) {
		c.Now = clock.Now
		c.LoginThrottle.AddressFailures = 15
	})
	p := ts.setup()
	// Spread over many accounts, so no account locks, the address does.
	for i := range 15 {
		ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("user"+strconv.Itoa(i), passwordCanary)), http.StatusUnauthorized)
	}
	retryAfter(t, ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("bob", testPassword)), http.StatusTooManyRequests))
	// Sessions already open still work.
	ts.want(ts.do("GET", "/api/v2/users/me", p.bob, nil), http.StatusOK)
}

func TestLoginThrottleConcurrentGuessesAllCount(t *testing.T) {
	clock := newFakeClock()
	ts := newTestServer(t, func(c *Config) { c.Now = clock.Now })
	ts.setup()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.do("POST", "/api/v2/users/login", "", loginBody("alice", passwordCanary))
			mu.Lock()
			counts[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[http.StatusUnauthorized] != 10 || counts[http.StatusTooManyRequests] != 20 {
		t.Fatalf("30 parallel guesses answered %v, want exactly 10 checked (401) and 20 refused (429)", counts)
	}
}

func TestLoginThrottleConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*identity.LoginThrottle){
		"zero account limit": func(l *identity.LoginThrottle) { l.AccountFailures = 0 },
		"zero address limit": func(l *identity.LoginThrottle) { l.AddressFailures = 0 },
		"zero window":        func(l *identity.LoginThrottle) { l.Window = 0 },
		"max below base":     func(l *identity.LoginThrottle) { l.MaxLockout = time.Second },
	} {
		cfg := DefaultConfig()
		cfg.DataDir = "x"
		mut(&cfg.LoginThrottle)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoginCountersOfSprayedNamesArePruned(t *testing.T) {
	clock := newFakeClock()
	ts := newTestServer(t, func(c *Config) {
		c.Now = clock.Now
		c.LoginThrottle.AddressFailures = 1000
	})
	ts.setup()
	failures := func(key string) int {
		var n int
		_, err := ts.store.UpdateLoginCounters(context.Background(), []string{key}, func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
			n = cur[0].Failures
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("sprayed-0", passwordCanary)), http.StatusUnauthorized)
	if failures("account:name:sprayed-0") != 1 {
		t.Fatal("a failed login for an unknown name was not counted")
	}
	clock.advance(2 * time.Hour)
	for i := 1; i < pruneEvery; i++ {
		ts.want(ts.do("POST", "/api/v2/users/login", "", loginBody("sprayed-"+strconv.Itoa(i), passwordCanary)), http.StatusUnauthorized)
	}
	if failures("account:name:sprayed-0") != 0 {
		t.Fatal("an idle counter survived the prune")
	}
	if failures("account:name:sprayed-1") != 1 {
		t.Fatal("a recent counter was pruned")
	}
}
