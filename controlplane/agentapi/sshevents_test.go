package agentapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/store"
)

// sshEventSink collects what OnSSHEvent is given.
type sshEventSink struct {
	mu  sync.Mutex
	got []proto.SSHEvent
	ws  []string
}

func (s *sshEventSink) add(ws store.Workspace, ev proto.SSHEvent) {
	s.mu.Lock()
	s.got = append(s.got, ev)
	s.ws = append(s.ws, ws.ID)
	s.mu.Unlock()
}

func (s *sshEventSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// TestSSHEventsRoute: a control plane with OnSSHEvent announces
// ssh-events, passes each event on with the session's workspace and its
// strings clipped, and refuses a report of an unknown kind or too many
// events whole.
func TestSSHEventsRoute(t *testing.T) {
	sink := &sshEventSink{}
	f := setupCfg(t, func(c *agentapi.Config) { c.OnSSHEvent = sink.add })
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.ControlHas(proto.FeatureSSHEvents) {
		t.Fatal("the control plane did not announce ssh-events")
	}
	ctx := context.Background()
	long := strings.Repeat("é", proto.MaxSSHEventTarget) // 2 bytes each
	err = s.ReportSSHEvents(ctx, proto.SSHEventReport{Events: []proto.SSHEvent{
		{Kind: proto.SSHForwardLocal, Target: "127.0.0.1:5432", Client: "203.0.113.9:50000", User: "dev"},
		{Kind: proto.SSHSFTP, Target: long, Client: long, User: long},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	got, ws := append([]proto.SSHEvent(nil), sink.got...), append([]string(nil), sink.ws...)
	sink.mu.Unlock()
	if len(got) != 2 || got[0].Target != "127.0.0.1:5432" || got[0].Client != "203.0.113.9:50000" || got[0].User != "dev" ||
		ws[0] != "w1" || ws[1] != "w1" {
		t.Fatalf("events passed on: %+v for %v", got, ws)
	}
	if e := got[1]; len(e.Target) > proto.MaxSSHEventTarget || len(e.Client) > proto.MaxSSHEventClient ||
		len(e.User) > proto.MaxSSHEventUser || !strings.HasPrefix(long, e.Target) || e.Target == "" {
		t.Errorf("long strings not clipped on a character boundary: %d, %d, %d bytes", len(e.Target), len(e.Client), len(e.User))
	}
	for name, bad := range map[string]proto.SSHEventReport{
		"unknown kind": {Events: []proto.SSHEvent{{Kind: proto.SSHSFTP}, {Kind: "shell\x00evil"}}},
		"empty kind":   {Events: []proto.SSHEvent{{Kind: ""}}},
		"too many":     {Events: make([]proto.SSHEvent, proto.MaxReportSSHEvents+1)},
	} {
		if err := s.ReportSSHEvents(ctx, bad); err == nil {
			t.Errorf("%s: report accepted", name)
		}
	}
	if n := sink.len(); n != 2 {
		t.Errorf("a refused report passed %d events on", n-2)
	}
}

// TestSSHEventsBadBody: a body that is not an event report is a 400.
func TestSSHEventsBadBody(t *testing.T) {
	sink := &sshEventSink{}
	f := setupCfg(t, func(c *agentapi.Config) { c.OnSSHEvent = sink.add })
	c := oldAgent(t, f)
	for _, body := range []string{`{"events":`, `{"events":[{"kind":"sftp","kind":"forward_local"}]}`, `{"events":"x"}`, "\xff"} {
		req, _ := http.NewRequest("POST", proto.BaseURL+proto.PathSSHEvents, strings.NewReader(body))
		req.Header.Set(proto.HeaderVersion, proto.Version)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("body %q: status %d, want 400", body, res.StatusCode)
		}
	}
	if sink.len() != 0 {
		t.Error("events passed on from bad bodies")
	}
}

// TestSSHEventsNotAnnouncedWithoutHook: without OnSSHEvent the control
// plane does not ask agents for events.
func TestSSHEventsNotAnnouncedWithoutHook(t *testing.T) {
	f := setup(t, false)
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ControlHas(proto.FeatureSSHEvents) {
		t.Fatal("ssh-events announced with nothing to take them")
	}
}
