package identity

import (
	"net/http"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// ClientAddr believes X-Forwarded-For only from trusted proxies, walks it
// from the right, stops at garbage, and counts IPv6 by its /64.
func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	th := LoginThrottle{TrustedProxies: proxies}
	for _, c := range []struct {
		name, remote, xff, want string
		trust                   bool
	}{
		{"peer, header ignored without trusted proxies", "203.0.113.5:4000", "198.51.100.1", "203.0.113.5", false},
		{"untrusted peer's header ignored", "203.0.113.5:4000", "198.51.100.1", "203.0.113.5", true},
		{"trusted proxy", "10.1.2.3:4000", "198.51.100.1", "198.51.100.1", true},
		{"forged left-most hop skipped", "10.1.2.3:4000", "1.1.1.1, 198.51.100.1", "198.51.100.1", true},
		{"chain of trusted proxies", "10.1.2.3:4000", "198.51.100.1, 192.0.2.7", "198.51.100.1", true},
		{"garbage hop stops the walk", "10.1.2.3:4000", "nonsense", "10.1.2.3", true},
		{"IPv6 counts by /64", "[2001:db8:1:2:3:4:5:6]:4000", "", "2001:db8:1:2::/64", false},
		{"IPv4-mapped", "[::ffff:203.0.113.9]:1", "", "203.0.113.9", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "/", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			tt := th
			if !c.trust {
				tt.TrustedProxies = nil
			}
			if got := tt.ClientAddr(r); got != c.want {
				t.Fatalf("ClientAddr = %q, want %q", got, c.want)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.1/x"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", bad)
		}
	}
	if got, _ := ParseTrustedProxies(""); len(got) != 0 {
		t.Errorf("empty list parsed as %v", got)
	}
}

// Begin counts every key and locks the one that reaches its limit, for a
// lock that doubles with each further failure up to the cap; a locked key
// refuses the next attempt with the wait, counting nothing; Succeed clears
// the account and takes one failure back from the address.
func TestLoginThrottleCounts(t *testing.T) {
	th := LoginThrottle{AccountFailures: 2, AddressFailures: 3, Window: time.Hour,
		BaseLockout: time.Minute, MaxLockout: 3 * time.Minute}
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	keys := []store.LoginCounter{{Key: AccountKey("u1")}, {Key: AddressKey("192.0.2.1")}}
	cur, err := th.Begin(now)(keys)
	if err != nil || cur[0].Failures != 1 || cur[1].Failures != 1 || !cur[0].LockedUntil.IsZero() {
		t.Fatalf("first attempt: %+v, %v", cur, err)
	}
	if _, ok := LockedNow(cur); ok {
		t.Fatal("locked after one failure")
	}
	cur, _ = th.Begin(now)(cur)
	if want := now.Add(time.Minute); !cur[0].LockedUntil.Equal(want) || !cur[1].LockedUntil.IsZero() {
		t.Fatalf("second attempt: account locked until %v (want %v), address until %v", cur[0].LockedUntil, want, cur[1].LockedUntil)
	}
	if c, ok := LockedNow(cur); !ok || c.Key != AccountKey("u1") {
		t.Fatalf("LockedNow = %+v, %v", c, ok)
	}
	_, err = th.Begin(now.Add(20 * time.Second))(cur)
	te, ok := err.(*ThrottledError)
	if !ok || te.RetryAfter != 40*time.Second || RetryAfterSeconds(te.RetryAfter) != "40" {
		t.Fatalf("attempt while locked: %v", err)
	}
	// Past the lock, each failure doubles it, up to MaxLockout.
	later := now.Add(2 * time.Minute)
	cur, _ = th.Begin(later)(cur)
	if got := cur[0].LockedUntil.Sub(later); got != 2*time.Minute {
		t.Errorf("third failure locks for %v, want 2m", got)
	}
	cur, _ = th.Begin(later.Add(5 * time.Minute))(cur)
	if got := cur[0].LockedUntil.Sub(later.Add(5 * time.Minute)); got != 3*time.Minute {
		t.Errorf("fourth failure locks for %v, want the 3m cap", got)
	}
	cur, _ = th.Succeed()(cur)
	if cur[0].Failures != 0 || !cur[0].LockedUntil.IsZero() || cur[1].Failures != 3 {
		t.Errorf("after Succeed: %+v", cur)
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {time.Hour, "3600"}} {
		if got := RetryAfterSeconds(c.d); got != c.want {
			t.Errorf("RetryAfterSeconds(%v) = %s, want %s", c.d, got, c.want)
		}
	}
}

func TestLoginThrottleValidate(t *testing.T) {
	if err := DefaultLoginThrottle().Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for name, mut := range map[string]func(*LoginThrottle){
		"zero account limit": func(l *LoginThrottle) { l.AccountFailures = 0 },
		"zero address limit": func(l *LoginThrottle) { l.AddressFailures = -1 },
		"zero window":        func(l *LoginThrottle) { l.Window = 0 },
		"zero base lockout":  func(l *LoginThrottle) { l.BaseLockout = 0 },
		"max below base":     func(l *LoginThrottle) { l.MaxLockout = time.Second },
	} {
		l := DefaultLoginThrottle()
		mut(&l)
		if err := l.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
