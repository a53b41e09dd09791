package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// Involves is the reference for audit.Filter.Involving: whether r is
// among user's own records.
func Involves(r audit.Record, user string) bool {
	return (r.Actor.Kind == audit.ActorUser && r.Actor.ID == user) ||
		(r.Target.Kind == "user" && r.Target.ID == user) || r.Target.OwnerID == user
}

// RandomRecords are n records from at on, a second apart, over the users
// u0..u4: actors of every kind (agents' IDs that look like users'),
// targets that are users, secrets and workspaces, some owned by nobody.
func RandomRecords(rng *rand.Rand, n int, at time.Time) []audit.Record {
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	pick := func() string { return users[rng.IntN(len(users))] }
	var out []audit.Record
	for i := range n {
		r := audit.Record{Time: at.Add(time.Duration(i) * time.Second), Outcome: audit.Success, Source: "192.0.2.7", Replica: "r1",
			Action: []string{"secret.create", "secret.delete", "agent.connect", "user.suspend"}[rng.IntN(4)]}
		switch rng.IntN(3) {
		case 0:
			r.Actor = audit.Actor{Kind: audit.ActorUser, ID: pick(), Name: "someone"}
		case 1:
			r.Actor = audit.Actor{Kind: audit.ActorAgent, ID: pick(), Name: "ws"}
		default:
			r.Actor = audit.Actor{Kind: audit.ActorSystem, Name: "retention"}
		}
		switch rng.IntN(4) {
		case 0:
			r.Target = audit.Target{Kind: "user", ID: pick(), Name: "who"}
		case 1:
			r.Target = audit.Target{Kind: "secret", ID: fmt.Sprint("s", i), Name: "key", OwnerID: pick()}
		case 2:
			r.Target = audit.Target{Kind: "workspace", ID: pick(), Name: "api", OwnerID: pick()}
		default:
			r.Target = audit.Target{Kind: "secret", ID: pick()} // owned by nobody; its ID is not a user
		}
		out = append(out, r)
	}
	return out
}

// CheckInvolving compares every user's records (audit.Filter.Involving)
// with a scan of the whole log, in both orders, at several page sizes
// following the cursors, and with other filters beside it.
func CheckInvolving(t *testing.T, s store.Store, stage string) {
	t.Helper()
	all, err := s.ListAudit(ctx, audit.Filter{Oldest: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"u0", "u1", "u2", "u3", "u4", "nobody", "'; --"} {
		for _, f := range []audit.Filter{
			{Involving: user},
			{Involving: user, Oldest: true},
			{Involving: user, Action: "secret.*"},
			{Involving: user, Since: T0.Add(40 * time.Second), Until: T0.Add(200 * time.Second), Oldest: true},
		} {
			var want []int64
			for _, r := range all {
				if Involves(r, user) && (f.Action == "" || strings.HasPrefix(r.Action, "secret.")) &&
					(f.Since.IsZero() || (!r.Time.Before(f.Since) && r.Time.Before(f.Until))) {
					want = append(want, r.Seq)
				}
			}
			if !f.Oldest {
				slices.Reverse(want)
			}
			for _, limit := range []int{1, 3, 7, 1000} {
				var got []int64
				g := f
				g.Limit = limit
				for range 1000 {
					page, err := s.ListAudit(ctx, g)
					if err != nil {
						t.Fatalf("%s: ListAudit(%+v): %v", stage, g, err)
					}
					if len(page) > limit {
						t.Fatalf("%s: a page of %d records, limit %d", stage, len(page), limit)
					}
					for _, r := range page {
						got = append(got, r.Seq)
					}
					if len(page) < limit {
						break
					}
					if f.Oldest {
						g.After = page[len(page)-1].Seq
					} else {
						g.Before = page[len(page)-1].Seq
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: Involving %q %+v, limit %d:\n got %v\nwant %v", stage, user, f, limit, got, want)
				}
			}
		}
	}
}

// testAuditInvolving appends records in several batches and checks each
// user's records against a scan, then again after pruning.
func testAuditInvolving(t *testing.T, s store.Store) {
	rng := rand.New(rand.NewPCG(3, 4))
	at := T0
	for range 8 {
		n := 1 + rng.IntN(40)
		if err := s.AppendAudit(ctx, RandomRecords(rng, n, at)); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Duration(n) * time.Second)
	}
	CheckInvolving(t, s, "appended")
	if _, err := s.PruneAudit(ctx, T0.Add(50*time.Second), 1000); err != nil {
		t.Fatal(err)
	}
	CheckInvolving(t, s, "pruned")
}
