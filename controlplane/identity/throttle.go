package identity

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// LoginThrottle limits password guessing. Failed logins are counted per
// account and per client address in the store, so every replica shares the
// counts and they survive a restart. When a count reaches its limit the key
// is locked for BaseLockout; each further failure after a lock doubles the
// lock, up to MaxLockout. A key with no failure and no lock for Window
// starts again from zero. A successful login clears its account's count
// (not its address's: one valid account must not launder an address).
//
// A login that names an account that does not exist is counted exactly like
// one that does, so the answers (401, then 429 with Retry-After) tell
// nothing about which accounts exist.
type LoginThrottle struct {
	// AccountFailures is how many failures lock an account. Default 10.
	AccountFailures int
	// AddressFailures is how many failures lock a client address (an IPv4
	// address, or the /64 of an IPv6 address). Default 100.
	AddressFailures int
	// Window is how long a key must stay quiet (no failure, no lock) before
	// its count starts again. Default 15 minutes.
	Window time.Duration
	// BaseLockout is the first lock. Default 1 minute.
	BaseLockout time.Duration
	// MaxLockout caps the growing lock. Default 1 hour.
	MaxLockout time.Duration
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For header is believed. Default none: the client address
	// is the TCP peer's, and X-Forwarded-For is ignored (any client could
	// forge it to escape its address's count).
	TrustedProxies []netip.Prefix
}

// DefaultLoginThrottle returns the defaults documented on LoginThrottle.
func DefaultLoginThrottle() LoginThrottle {
	return LoginThrottle{AccountFailures: 10, AddressFailures: 100, Window: 15 * time.Minute,
		BaseLockout: time.Minute, MaxLockout: time.Hour}
}

// Validate reports the first setting that cannot work.
func (t LoginThrottle) Validate() error {
	switch {
	case t.AccountFailures <= 0 || t.AddressFailures <= 0:
		return fmt.Errorf("login throttle limits must be positive")
	case t.Window <= 0 || t.BaseLockout <= 0 || t.MaxLockout < t.BaseLockout:
		return fmt.Errorf("login throttle window and lockouts must be positive, max lockout at least the base")
	}
	return nil
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes or
// single addresses (for the --trusted-proxies flag).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ThrottledError is a login refused because its account or address is
// locked (Begin returns it).
type ThrottledError struct {
	// RetryAfter is how long until every key the login counts against is
	// unlocked.
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string { return "too many failed logins" }

// RetryAfterSeconds is a Retry-After header's value for a wait of d: whole
// seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// ClientAddr is the address a login is counted against: the TCP peer, or,
// when the peer is a trusted proxy, the right-most X-Forwarded-For entry
// that is not itself a trusted proxy. IPv6 addresses count by their /64.
func (t LoginThrottle) ClientAddr(r *http.Request) string {
	addr, _ := t.ClientIP(r)
	if !addr.IsValid() {
		return "unknown"
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// ClientIP is the client's address as ClientAddr chooses it, whole, and
// whether it is the TCP peer itself (direct) rather than a proxy's word.
// The zero Addr when the peer's address does not parse. The audit log and
// the SSH relay name clients by it.
func (t LoginThrottle) ClientIP(r *http.Request) (addr netip.Addr, direct bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err = netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	addr, direct = addr.Unmap(), true
	if t.trusted(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: stop at the last address we trust
			}
			addr, direct = hop.Unmap(), false
			if !t.trusted(addr) {
				break
			}
		}
	}
	return addr, direct
}

func (t LoginThrottle) trusted(a netip.Addr) bool {
	for _, p := range t.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limit is the failure count that locks key.
func (t LoginThrottle) limit(key string) int {
	if strings.HasPrefix(key, addressKeyPrefix) {
		return t.AddressFailures
	}
	return t.AccountFailures
}

const (
	accountKeyPrefix = "account:"
	addressKeyPrefix = "address:"
)

// AccountKey is the counter key of the account with ID id, or, for a name
// that matches no account, of "name:" and the lower-cased name (counted
// just the same, so that the answers do not tell which accounts exist).
func AccountKey(id string) string { return accountKeyPrefix + id }

// AddressKey is the counter key of a client address (ClientAddr).
func AddressKey(addr string) string { return addressKeyPrefix + addr }

// lockFor is the lock after the failures-th failure (failures >= limit):
// BaseLockout doubled once per failure past the limit, capped.
func (t LoginThrottle) lockFor(failures, limit int) time.Duration {
	d := t.BaseLockout
	for i := limit; i < failures && d < t.MaxLockout; i++ {
		d *= 2
	}
	return min(d, t.MaxLockout)
}

// Begin counts one attempt against every key before the password is
// checked, so that parallel guesses are counted too. If any key is locked at
// now it counts nothing and returns *ThrottledError. The attempt is taken
// back by Succeed when the password is right.
func (t LoginThrottle) Begin(now time.Time) store.LoginCounterFunc {
	return func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		var wait time.Duration
		for _, c := range cur {
			if c.LockedUntil.After(now) {
				wait = max(wait, c.LockedUntil.Sub(now))
			}
		}
		if wait > 0 {
			return nil, &ThrottledError{RetryAfter: wait}
		}
		for i := range cur {
			c := &cur[i]
			quiet := c.LastAt
			if c.LockedUntil.After(quiet) {
				quiet = c.LockedUntil
			}
			if now.Sub(quiet) > t.Window {
				c.Failures = 0
			}
			c.Failures++
			c.LastAt, c.LockedUntil = now, time.Time{}
			if lim := t.limit(c.Key); c.Failures >= lim {
				c.LockedUntil = now.Add(t.lockFor(c.Failures, lim))
			}
		}
		return cur, nil
	}
}

// Succeed takes back the attempt Begin counted: the account's counter is
// cleared, the address's loses one failure (and its lock, if that brings it
// under the limit).
func (t LoginThrottle) Succeed() store.LoginCounterFunc {
	return func(cur []store.LoginCounter) ([]store.LoginCounter, error) {
		for i := range cur {
			c := &cur[i]
			if strings.HasPrefix(c.Key, accountKeyPrefix) {
				*c = store.LoginCounter{Key: c.Key}
				continue
			}
			c.Failures = max(c.Failures-1, 0)
			if c.Failures < t.limit(c.Key) {
				c.LockedUntil = time.Time{}
			}
		}
		return cur, nil
	}
}

// LockedNow reports the lock that Begin's counters set, if any (for the
// operator's log).
func LockedNow(cs []store.LoginCounter) (store.LoginCounter, bool) {
	for _, c := range cs {
		if !c.LockedUntil.IsZero() {
			return c, true
		}
	}
	return store.LoginCounter{}, false
}
