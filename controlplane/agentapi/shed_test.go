package agentapi_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/controlplane/agentapi"
)

// TestShedOne: a session younger than 10 s is spared; an older one is
// closed in a way the agent treats as a lost connection (not a revoked
// token, not a replacement: it reconnects at once); with no session left
// there is nothing to shed.
func TestShedOne(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC).UnixNano())
	f := setupCfg(t, func(c *agentapi.Config) { c.Now = func() time.Time { return time.Unix(0, now.Load()) } })
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitConnected(t, f.srv, 1)
	if f.srv.ShedOne() {
		t.Fatal("a session connected just now was shed")
	}
	now.Add(int64(11 * time.Second))
	if !f.srv.ShedOne() {
		t.Fatal("no session shed")
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the shed session did not end")
	}
	if err := s.Err(); errors.Is(err, conn.ErrRevoked) || errors.Is(err, conn.ErrReplaced) {
		t.Fatalf("the shed session ended with %v: the agent would wait the longest backoff", err)
	}
	waitConnected(t, f.srv, 0)
	if f.srv.ShedOne() {
		t.Fatal("shed a session with none connected")
	}
}
