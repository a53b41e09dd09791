package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// testExpireSessions: expired sessions are deleted oldest first, up to the
// limit, each with one audit record in the same transaction; a session not
// yet expired, and one without an expiry, stay.
func testExpireSessions(t *testing.T, s store.Store) {
	u := mkUser(t, s, "sleeper")
	hash := func(c byte) []byte { return bytes.Repeat([]byte{c}, 32) }
	for _, sess := range []store.Session{
		{TokenHash: hash('a'), UserID: u.ID, CreatedAt: T0, ExpiresAt: T0.Add(2 * time.Hour)}, // expired second
		{TokenHash: hash('b'), UserID: u.ID, CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)},     // expired first
		{TokenHash: hash('c'), UserID: u.ID, CreatedAt: T0, ExpiresAt: T0.Add(9 * time.Hour)}, // live
		{TokenHash: hash('d'), UserID: u.ID, CreatedAt: T0},                                   // never expires
	} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	now := T0.Add(3 * time.Hour)
	var seen []byte
	rec := func(sess store.Session) audit.Record {
		seen = append(seen, sess.TokenHash[0])
		if sess.UserID != u.ID || sess.ExpiresAt.IsZero() {
			t.Errorf("record built for %+v", sess)
		}
		return audit.Record{Time: now, Actor: audit.Actor{Kind: audit.ActorSystem}, Action: "session.expired",
			Outcome: audit.Success, Target: audit.Target{Kind: "user", ID: sess.UserID, OwnerID: sess.UserID}}
	}
	if n, err := s.ExpireSessions(ctx, now, 1, rec); err != nil || n != 1 {
		t.Fatalf("ExpireSessions limit 1: %d, %v", n, err)
	}
	if n, err := s.ExpireSessions(ctx, now, 10, rec); err != nil || n != 1 {
		t.Fatalf("ExpireSessions limit 10: %d, %v (want the one left)", n, err)
	}
	if n, err := s.ExpireSessions(ctx, now, 10, rec); err != nil || n != 0 {
		t.Fatalf("ExpireSessions with none expired: %d, %v", n, err)
	}
	if string(seen) != "ba" {
		t.Errorf("expired in order %q, want the oldest expiry first (ba)", seen)
	}
	for _, c := range []byte("cd") {
		if _, err := s.SessionByHash(ctx, hash(c), now); err != nil {
			t.Errorf("session %c gone: %v", c, err)
		}
	}
	if _, err := s.SessionByHash(ctx, hash('a'), T0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session a still there: %v", err)
	}
	rs, err := s.ListAudit(ctx, audit.Filter{Action: "session.expired"})
	if err != nil || len(rs) != 2 {
		t.Fatalf("ListAudit: %d records (want 2), %v", len(rs), err)
	}
	if rep := verify(t, s); !rep.OK {
		t.Fatalf("Verify: %+v", rep)
	}
}
