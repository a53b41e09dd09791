package controlplane

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/audit"

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

// Two replicas serve a new token's first requests before either has
// written a use: each drafts a first-use record, and their last-use writes
// race; exactly one token.first_use record is left, naming one of the
// first requests, and nothing was written per request.
func TestAPITokenFirstUseOnceAcrossReplicas(t *testing.T) {
	pgURL := pgtest.URL(t)
	a := newTestServer(t, func(c *Config) { c.PostgresURL = pgURL })
	b := newTestServer(t, func(c *Config) { c.PostgresURL = pgURL })
	p := a.setup()
	tok := a.createToken(p.alice, map[string]any{"name": "ci"}).Token
	before, err := a.store.AuditState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i, ts := range []*testServer{a, b, a, b} {
		r := ts.want(ts.do("GET", "/api/v2/users/me/secrets", tok, nil), 200)
		ids[r.header.Get(headerRequestID)] = true
		if i == 1 {
			// Both replicas have served it; neither has written anything.
			if st, err := a.store.AuditState(context.Background()); err != nil || st.Head.Seq != before.Head.Seq {
				t.Fatalf("a request wrote to the audit log: head %d → %d, %v", before.Head.Seq, st.Head.Seq, err)
			}
		}
	}
	var wg sync.WaitGroup
	for _, ts := range []*testServer{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ts.api.uses.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// A later use leaves nothing more.
	b.want(b.do("GET", "/api/v2/users/me", tok, nil), 200)
	if err := b.api.uses.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var firsts []audit.Record
	for _, r := range a.waitAudit(p.admin, int(before.Head.Seq)+1) {
		if r.Action == actTokenFirstUse {
			firsts = append(firsts, r)
		}
	}
	if len(firsts) != 1 {
		t.Fatalf("%d token.first_use records, want 1: %+v", len(firsts), firsts)
	}
	f := firsts[0]
	if !ids[f.RequestID] || f.Actor.ID != p.aliceID || f.Target.Name != "ci" || f.Source != "127.0.0.1" || f.UserAgent == "" {
		t.Fatalf("first-use record %+v, want one of the requests %v by alice", f, ids)
	}
}
