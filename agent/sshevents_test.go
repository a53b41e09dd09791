package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
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

// eventsCP is a control plane that announces ssh-events or not (an older
// one, which has no such route), and records event reports; fail makes
// the route answer 500.
type eventsCP struct {
	*fakeCP

	mu       sync.Mutex // guards the fields that follow
	reports  []proto.SSHEventReport
	requests int
}

func newEventsCP(t *testing.T, announce, fail bool) *eventsCP {
	t.Helper()
	cp := &eventsCP{}
	features := ""
	if announce {
		features = proto.FeatureStartupLogs + "," + proto.FeatureSSHEvents
	}
	cp.fakeCP = newFakeCP(t, features, func(mux *http.ServeMux) {
		mux.HandleFunc("POST "+proto.PathSSHEvents, func(w http.ResponseWriter, r *http.Request) {
			var rep proto.SSHEventReport
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &rep)
			cp.mu.Lock()
			defer cp.mu.Unlock()
			cp.requests++
			if fail {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			cp.reports = append(cp.reports, rep)
			w.WriteHeader(http.StatusNoContent)
		})
	})
	return cp
}

// TestSSHEventsNegotiate: events go, in order and in batches of at most
// proto.MaxReportSSHEvents, to a control plane that announced ssh-events;
// an older one is sent nothing (the events are dropped, not kept for
// ever); a failed request keeps them queued.
func TestSSHEventsNegotiate(t *testing.T) {
	for _, tc := range []struct {
		name           string
		announce, fail bool
		wantSent       int
		wantRequests   int
		wantQueued     int
	}{
		{"announced", true, false, proto.MaxReportSSHEvents + 1, 2, 0},
		{"older control plane", false, false, 0, 0, 0},
		{"failing", true, true, 0, 1, proto.MaxReportSSHEvents + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := newEventsCP(t, tc.announce, tc.fail)
			s, err := conn.Dial(context.Background(), conn.Config{URL: cp.URL(), Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			e := newSSHEvents(func() *conn.Session { return s }, zap.NewNop())
			for i := range proto.MaxReportSSHEvents + 1 {
				e.add(proto.SSHEvent{Kind: proto.SSHForwardLocal, Target: fmt.Sprintf("127.0.0.1:%d", 1000+i)})
			}
			e.flush(context.Background())
			cp.mu.Lock()
			var sent []proto.SSHEvent
			for _, r := range cp.reports {
				sent = append(sent, r.Events...)
			}
			requests := cp.requests
			cp.mu.Unlock()
			e.mu.Lock()
			queued := len(e.queue)
			e.mu.Unlock()
			if len(sent) != tc.wantSent || requests != tc.wantRequests || queued != tc.wantQueued {
				t.Fatalf("sent %d in %d requests, %d left queued; want %d, %d, %d", len(sent), requests, queued,
					tc.wantSent, tc.wantRequests, tc.wantQueued)
			}
			if len(sent) > 0 && (sent[0].Target != "127.0.0.1:1000" || sent[len(sent)-1].Target != fmt.Sprintf("127.0.0.1:%d", 1000+proto.MaxReportSSHEvents)) {
				t.Errorf("out of order: first %q, last %q", sent[0].Target, sent[len(sent)-1].Target)
			}
		})
	}
}
