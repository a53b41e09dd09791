package controlplane

import (
	"context"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// Two replicas on one PostgreSQL database: a token made through one works
// through the other, a revocation through one is refused by the other on
// the very next request, and when both write last uses the newer wins
// whichever replica writes last.
func TestAPITokenAcrossReplicas(t *testing.T) {
	base := time.Now()
	pgURL := pgtest.URL(t)
	// Replica B's clock is a minute behind A's.
	a := newTestServer(t, func(c *Config) { c.PostgresURL, c.Now = pgURL, func() time.Time { return base } })
	b := newTestServer(t, func(c *Config) {
		c.PostgresURL, c.Now = pgURL, func() time.Time { return base.Add(-time.Minute) }
	})
	p := a.setup()
	tok := a.createToken(p.alice, map[string]any{"name": "ci"}).Token
	b.want(b.do("GET", "/api/v2/users/me/secrets", tok, nil), 200)
	a.want(a.do("GET", "/api/v2/users/me/secrets", tok, nil), 200)

	// A's use is newer than B's; A writes first.
	b.want(b.do("GET", "/api/v2/users/me", tok, nil), 200)
	if err := a.api.uses.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.api.uses.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var list []APITokenResponse
	a.want(a.do("GET", "/api/v2/users/me/tokens", p.alice, nil), 200).json(t, &list)
	if len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(base.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("last use %+v, want replica A's newer one", list)
	}

	a.want(a.do("DELETE", "/api/v2/users/me/tokens/ci", p.alice, nil), 204)
	b.want(b.do("GET", "/api/v2/users/me/secrets", tok, nil), 401)
}
