package agentapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/store/pgstore"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// TestAgentStatusSurvivesADatabaseOutage: a server on real PostgreSQL
// reached through a fault proxy. An agent that disconnects while the
// database cannot be reached is recorded disconnected once it is back
// (the change is kept and tried again, not dropped and left "connected"
// for ever), and the outage is logged once, not per attempt.
func TestAgentStatusSurvivesADatabaseOutage(t *testing.T) {
	ctx := context.Background()
	proxied, pgURL, px := pgtest.URLThroughProxy(t)
	st, err := pgstore.Open(ctx, proxied, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := setupStore(t, st, func(*agentapi.Config) {})
	direct, err := pgstore.Open(ctx, pgURL, nil) // reads past the proxy
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()

	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	waitConnected(t, f.srv, 1)
	if got, err := direct.AgentStatus(ctx, f.ws.ID); err != nil || !got.Connected {
		t.Fatalf("status once connected: %+v, %v", got, err)
	}

	px.SetRefuse(true)
	px.ResetAll()
	_ = s.Close()
	waitConnected(t, f.srv, 0)
	deadline := time.Now().Add(20 * time.Second)
	for f.logs.FilterMessageSnippet("could not record agent status changes").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the failed disconnection was not logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // a few retries, all failing
	if got, _ := direct.AgentStatus(ctx, f.ws.ID); !got.Connected {
		t.Fatal("the disconnection was recorded through a proxy refusing every connection")
	}
	if pending, dropped := f.srv.StatusBacklog(); pending != 1 || dropped != 0 {
		t.Fatalf("backlog during the outage: %d pending, %d dropped; want the disconnection waiting", pending, dropped)
	}

	px.SetRefuse(false)
	deadline = time.Now().Add(20 * time.Second)
	for {
		got, err := direct.AgentStatus(ctx, f.ws.ID)
		if err == nil && !got.Connected && !got.DisconnectedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after the database came back the agent is still recorded connected: %+v, %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := f.logs.FilterMessageSnippet("could not record agent status changes").Len(); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
	// The line follows the write the status just showed.
	deadline = time.Now().Add(5 * time.Second)
	for f.logs.FilterMessage("agent status changes are recorded again").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := f.logs.FilterMessage("agent status changes are recorded again").Len(); n != 1 {
		t.Errorf("the return was logged %d times, want once", n)
	}
	if pending, _ := f.srv.StatusBacklog(); pending != 0 {
		t.Errorf("%d status changes still pending after the database came back", pending)
	}
}

// TestConnectDuringADatabaseOutage: while the database cannot be reached,
// an agent's connect is answered 503 "the database is unavailable" with
// Retry-After (the agent waits instead of retrying at once), never 500,
// and a flood of attempts logs the outage once; the first connect after
// the database is back succeeds and logs its end once.
func TestConnectDuringADatabaseOutage(t *testing.T) {
	ctx := context.Background()
	proxied, _, px := pgtest.URLThroughProxy(t)
	st, err := pgstore.Open(ctx, proxied, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := setupStore(t, st, func(*agentapi.Config) {})
	px.SetRefuse(true)
	px.ResetAll()
	for range 5 {
		_, err := dial(t, f, agentToken)
		var ue *conn.UnavailableError
		if !errors.As(err, &ue) || ue.RetryAfter != 5*time.Second || !strings.Contains(ue.Message, "the database is unavailable") {
			t.Fatalf("connect during the outage: %v; want 503 with Retry-After 5", err)
		}
	}
	if n := f.logs.FilterMessageSnippet("the database is unavailable").Len(); n != 1 {
		t.Errorf("five refused connects logged the outage %d times, want once", n)
	}
	if n := f.logs.FilterMessage("looking up agent token").Len(); n != 0 {
		t.Errorf("%d per-request error lines", n)
	}
	px.SetRefuse(false)
	var s *conn.Session
	deadline := time.Now().Add(20 * time.Second)
	for s, err = dial(t, f, agentToken); err != nil; s, err = dial(t, f, agentToken) {
		if time.Now().After(deadline) {
			t.Fatalf("no connect once the database is back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer s.Close()
	if n := f.logs.FilterMessage("the database is available again for agent requests").Len(); n != 1 {
		t.Errorf("the outage's end was logged %d times, want once", n)
	}
}
