package controlplane

import (
	"context"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
)

// TestSessionExpiryAudited: a login session that reaches its end of life
// is refused (401) and then swept: deleted with exactly one
// session.expired record for its user, by the system, in a chain that
// still verifies. A session still alive is left alone.
func TestSessionExpiryAudited(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var skew atomic.Int64
	ts := newTestServer(t, func(c *Config) {
		c.Now = func() time.Time { return now.Add(time.Duration(skew.Load())) }
		c.SessionLifetime = time.Hour
		c.SessionSweepInterval = 10 * time.Millisecond
	})
	p := ts.setup()
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 200)
	skew.Store(int64(90 * time.Minute))
	late := ts.login("alice", testPassword) // signed in after the others expired
	ts.want(ts.do("GET", "/api/v2/users/me", p.alice, nil), 401)
	ts.want(ts.do("GET", "/api/v2/users/me", late, nil), 200)

	want := []string{p.adminID, p.aliceID, p.bobID}
	sort.Strings(want)
	var got []audit.Record
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		got, err = ts.store.ListAudit(context.Background(), audit.Filter{Action: actSessionExpired, Oldest: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // several more sweeps: none may record again
	got, err := ts.store.ListAudit(context.Background(), audit.Filter{Action: actSessionExpired, Oldest: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		if r.Actor.Kind != audit.ActorSystem || r.Outcome != audit.Success || r.Target.Kind != targetUser || r.Target.OwnerID != r.Target.ID {
			t.Errorf("expiry record %+v", r)
		}
		ids = append(ids, r.Target.ID)
	}
	sort.Strings(ids)
	if len(ids) != len(want) || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Fatalf("session.expired for users %v, want one each for %v", ids, want)
	}
	ts.want(ts.do("GET", "/api/v2/users/me", late, nil), 200)
	st, err := ts.store.AuditState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(context.Background(), st, func(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
		return ts.store.ListAudit(ctx, audit.Filter{After: after, Limit: limit, Oldest: true})
	})
	if err != nil || !rep.OK {
		t.Fatalf("verify after the sweep: %+v, %v", rep, err)
	}
}
