package agent

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
)

// TestSSHEventsQueueIsBounded: without a connection the queue keeps the
// newest events, counts the dropped ones, and add never blocks.
func TestSSHEventsQueueIsBounded(t *testing.T) {
	e := newSSHEvents(func() *conn.Session { return nil }, zap.NewNop())
	for i := range maxQueuedSSHEvents + 6 {
		e.add(proto.SSHEvent{Kind: proto.SSHSFTP, Target: string(rune('a' + i%26))})
	}
	e.flush(context.Background()) // no session: nothing sent, nothing lost
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) != maxQueuedSSHEvents || e.dropped != 6 {
		t.Fatalf("queue %d, dropped %d; want %d and 6", len(e.queue), e.dropped, maxQueuedSSHEvents)
	}
	if e.queue[0].Target != string(rune('a'+6)) {
		t.Errorf("oldest kept = %q, want the 7th event", e.queue[0].Target)
	}
}
