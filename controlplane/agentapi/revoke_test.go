package agentapi_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/store"
)

// mustNotLog fails when the agent token appears in any log entry.
func mustNotLog(t *testing.T, f *fixture) {
	t.Helper()
	for _, e := range f.logs.All() {
		if strings.Contains(e.Message, agentToken) {
			t.Fatalf("the agent token is in a log message: %q", e.Message)
		}
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, agentToken) {
				t.Fatalf("the agent token is in log field %s", k)
			}
		}
	}
}

// TestConnectRefusals: each way an agent token stops being valid is
// refused at connect with its own reason, and never a websocket.
func TestConnectRefusals(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		token  string
		change func(t *testing.T, f *fixture)
		want   string
	}{
		{"unknown token", "not-the-token-0123456789", nil, "not valid (revoked or rotated?)"},
		{"blank token", " ", nil, "token is required"},
		{"unicode token", "tök\u202e-0123456789", nil, "not valid"},
		{"rotated", agentToken, func(t *testing.T, f *fixture) {
			sum := sha256.Sum256([]byte("the-new-token"))
			if _, err := f.st.RotateAgentToken(ctx, f.ws.ID, sum[:], time.Time{}); err != nil {
				t.Fatal(err)
			}
		}, "not valid (revoked or rotated?)"},
		{"expired", agentToken, func(t *testing.T, f *fixture) {
			sum := sha256.Sum256([]byte(agentToken))
			if _, err := f.st.RotateAgentToken(ctx, f.ws.ID, sum[:], time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
		}, "the agent token expired at"},
		{"owner suspended", agentToken, func(t *testing.T, f *fixture) {
			if _, err := f.st.UpdateUser(ctx, f.owner.ID, func(u *store.User) error { u.SuspendedAt = time.Now(); return nil }); err != nil {
				t.Fatal(err)
			}
		}, "suspended"},
		{"workspace deleted", agentToken, func(t *testing.T, f *fixture) {
			if err := f.st.DeleteWorkspace(ctx, f.ws.ID); err != nil {
				t.Fatal(err)
			}
		}, "not valid"},
		{"owner deleted", agentToken, func(t *testing.T, f *fixture) {
			if err := f.st.DeleteUser(ctx, f.owner.ID); err != nil {
				t.Fatal(err)
			}
		}, "not valid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t, false)
			if c.change != nil {
				c.change(t, f)
			}
			s, err := dial(t, f, c.token)
			if err == nil {
				_ = s.Close()
				t.Fatal("connected with a token that is not valid")
			}
			if !errors.Is(err, conn.ErrTokenRejected) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("dial: %v; want ErrTokenRejected saying %q", err, c.want)
			}
			if c.name == "expired" && !strings.Contains(err.Error(), "courier workspaces rotate-token") {
				t.Errorf("an expired token's refusal does not say how to fix it: %v", err)
			}
			if f.srv.Connected() != 0 {
				t.Fatal("a refused agent is registered")
			}
			mustNotLog(t, f)
		})
	}
}

// TestRecheckTokensClosesRevokedSessions: a notification naming the owner
// (or a resync) closes a session whose token stopped being valid, with
// close code 4003 and the reason; a notification naming someone else, or
// a still-valid token, closes nothing.
func TestRecheckTokensClosesRevokedSessions(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		change func(t *testing.T, f *fixture)
		batch  notify.Batch
		reason string // "" : the session stays
	}{
		{"unchanged", nil, notify.Batch{Users: []string{"u1"}}, ""},
		{"rotated, another user named", rotate, notify.Batch{Users: []string{"someone-else"}}, ""},
		{"rotated", rotate, notify.Batch{Users: []string{"u1"}}, "the token was rotated"},
		{"rotated, resync", rotate, notify.Batch{Resync: true}, "the token was rotated"},
		{"workspace deleted", func(t *testing.T, f *fixture) {
			if err := f.st.DeleteWorkspace(ctx, f.ws.ID); err != nil {
				t.Fatal(err)
			}
		}, notify.Batch{Users: []string{"u1"}}, "the workspace was deleted"},
		{"owner suspended", suspend, notify.Batch{Users: []string{"x", "u1"}}, "the owner is suspended"},
		{"owner suspended, resync", suspend, notify.Batch{Resync: true}, "the owner is suspended"},
		{"owner deleted", func(t *testing.T, f *fixture) {
			if err := f.st.DeleteUser(ctx, f.owner.ID); err != nil {
				t.Fatal(err)
			}
		}, notify.Batch{Users: []string{"u1"}}, "the owner was deleted"},
		{"owner deleted, resync", func(t *testing.T, f *fixture) {
			if err := f.st.DeleteUser(ctx, f.owner.ID); err != nil {
				t.Fatal(err)
			}
		}, notify.Batch{Resync: true}, "the owner was deleted"},
		{"expired meanwhile", func(t *testing.T, f *fixture) {
			sum := sha256.Sum256([]byte(agentToken))
			if _, err := f.st.RotateAgentToken(ctx, f.ws.ID, sum[:], time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
		}, notify.Batch{Users: []string{"u1"}}, "the token expired at"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t, false)
			s, err := dial(t, f, agentToken)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			waitConnected(t, f.srv, 1)
			if c.change != nil {
				c.change(t, f)
			}
			start := time.Now()
			f.srv.RecheckTokens(ctx, c.batch)
			if c.reason == "" {
				select {
				case <-s.Done():
					t.Fatalf("a valid session was closed: %v", s.Err())
				case <-time.After(200 * time.Millisecond):
				}
				if f.srv.Connected() != 1 {
					t.Fatal("the session is gone")
				}
				return
			}
			select {
			case <-s.Done():
			case <-time.After(time.Second):
				t.Fatal("the revoked session is still open a second later")
			}
			t.Logf("closed %v after the recheck", time.Since(start))
			if err := s.Err(); !errors.Is(err, conn.ErrRevoked) || !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), "4003") {
				t.Fatalf("session ended with %v; want ErrRevoked (4003) saying %q", err, c.reason)
			}
			waitConnected(t, f.srv, 0)
			if n := f.logs.FilterMessageSnippet("no longer valid").Len(); n != 1 {
				t.Errorf("the revocation is logged %d times, want once", n)
			}
			// A second notification finds nothing more to do.
			f.srv.RecheckTokens(ctx, c.batch)
			if n := f.logs.FilterMessageSnippet("no longer valid").Len(); n != 1 {
				t.Errorf("after a second recheck the revocation is logged %d times, want once", n)
			}
			mustNotLog(t, f)
		})
	}
}

func rotate(t *testing.T, f *fixture) {
	t.Helper()
	sum := sha256.Sum256([]byte("the-new-token"))
	if _, err := f.st.RotateAgentToken(context.Background(), f.ws.ID, sum[:], time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func suspend(t *testing.T, f *fixture) {
	t.Helper()
	if _, err := f.st.UpdateUser(context.Background(), f.owner.ID, func(u *store.User) error {
		u.SuspendedAt = time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestWatchSecretsRechecks: the notification stream the server runs
// (WatchSecrets) re-checks tokens, so a published rotation closes the
// session without anyone calling RecheckTokens.
func TestWatchSecretsRechecks(t *testing.T) {
	f := setup(t, false)
	n := notify.NewLocal(0)
	defer n.Close()
	sub := n.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.WatchSecrets(ctx, sub) }()
	defer func() { cancel(); <-done; sub.Close() }()
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitConnected(t, f.srv, 1)
	rotate(t, f)
	if err := n.Publish(ctx, f.owner.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(time.Second):
		t.Fatal("a published rotation did not close the session within a second")
	}
	if !errors.Is(s.Err(), conn.ErrRevoked) {
		t.Fatalf("session ended with %v", s.Err())
	}
	// The revoked session is not told of secret changes and no error is
	// logged for it.
	if n := f.logs.FilterMessageSnippet("could not read a secrets revision").Len(); n != 0 {
		t.Errorf("%d secrets-revision errors for a revoked session", n)
	}
}

// TestExpiryWhileConnected: a session whose token expires while it is
// connected is closed when it does, without any notification.
func TestExpiryWhileConnected(t *testing.T) {
	f := setup(t, false)
	sum := sha256.Sum256([]byte(agentToken))
	expires := time.Now().Add(400 * time.Millisecond)
	if _, err := f.st.RotateAgentToken(context.Background(), f.ws.ID, sum[:], expires); err != nil {
		t.Fatal(err)
	}
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session outlived its token's expiry")
	}
	if time.Now().Before(expires) {
		t.Fatal("closed before the expiry")
	}
	if err := s.Err(); !errors.Is(err, conn.ErrRevoked) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("session ended with %v", err)
	}
	if _, err := dial(t, f, agentToken); !errors.Is(err, conn.ErrTokenRejected) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("reconnect: %v", err)
	}
}
