package agentapi_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/controlplane/agentapi"
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

// countingStore counts the reads RecheckTokens makes, and the reads of a
// workspace by ID (the manifest's).
type countingStore struct {
	store.Store
	mu                                       sync.Mutex
	listUsers, listWorkspaces, users, wsByID int
}

func (c *countingStore) WorkspaceByID(ctx context.Context, id string) (store.Workspace, error) {
	c.mu.Lock()
	c.wsByID++
	c.mu.Unlock()
	return c.Store.WorkspaceByID(ctx, id)
}

// byID returns how many times a workspace and a user were read by ID.
func (c *countingStore) byID() (ws, users int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wsByID, c.users
}

func (c *countingStore) ListUsers(ctx context.Context) ([]store.User, error) {
	c.mu.Lock()
	c.listUsers++
	c.mu.Unlock()
	return c.Store.ListUsers(ctx)
}

func (c *countingStore) ListWorkspaces(ctx context.Context, owner string) ([]store.Workspace, error) {
	c.mu.Lock()
	c.listWorkspaces++
	c.mu.Unlock()
	return c.Store.ListWorkspaces(ctx, owner)
}

func (c *countingStore) UserByID(ctx context.Context, id string) (store.User, error) {
	c.mu.Lock()
	c.users++
	c.mu.Unlock()
	return c.Store.UserByID(ctx, id)
}

func (c *countingStore) counts() [3]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return [3]int{c.listUsers, c.listWorkspaces, c.users}
}

// TestRecheckTokensQueries: a recheck reads per owner, not per agent: a
// batch naming one owner of three connected agents is one UserByID and one
// ListWorkspaces; a resync of five agents of two owners is one ListUsers
// and one ListWorkspaces.
func TestRecheckTokensQueries(t *testing.T) {
	var cs *countingStore
	f := setupCfg(t, func(c *agentapi.Config) { cs = &countingStore{Store: c.Store}; c.Store = cs })
	ctx := context.Background()
	other := store.User{ID: "u2", Username: "other", Email: "o@x", CreatedAt: time.Now()}
	if err := f.st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	for i, owner := range []string{"u1", "u1", "u1", "u2", "u2"} {
		tok := fmt.Sprintf("token-%d-0123456789abcdefghijklmnop", i)
		sum := sha256.Sum256([]byte(tok))
		if i == 0 {
			tok, sum = agentToken, sha256.Sum256([]byte(agentToken)) // the fixture's w1
		} else if err := f.st.CreateWorkspace(ctx, store.Workspace{ID: fmt.Sprintf("w%d-extra", i), Name: fmt.Sprintf("ws%d", i),
			OwnerID: owner, AgentTokenHash: sum[:], CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		s, err := dial(t, f, tok)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	waitConnected(t, f.srv, 5)
	before := cs.counts()
	f.srv.RecheckTokens(ctx, notify.Batch{Users: []string{"u1"}})
	if d := diff(cs.counts(), before); d != [3]int{0, 1, 1} {
		t.Errorf("a batch naming one owner of three agents: ListUsers, ListWorkspaces, UserByID = %v, want [0 1 1]", d)
	}
	before = cs.counts()
	f.srv.RecheckTokens(ctx, notify.Batch{Resync: true})
	if d := diff(cs.counts(), before); d != [3]int{1, 1, 0} {
		t.Errorf("a resync of five agents: ListUsers, ListWorkspaces, UserByID = %v, want [1 1 0]", d)
	}
	if f.srv.Connected() != 5 {
		t.Fatalf("valid sessions were closed: %d left", f.srv.Connected())
	}
}

func diff(a, b [3]int) [3]int { return [3]int{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

// raceStore runs hook once, right after the agent token lookup of a
// connect, before the connect registers its session.
type raceStore struct {
	store.Store
	hook func()
	once sync.Once
}

func (r *raceStore) WorkspaceByAgentTokenHash(ctx context.Context, h []byte) (store.Workspace, store.User, error) {
	ws, owner, err := r.Store.WorkspaceByAgentTokenHash(ctx, h)
	if r.hook != nil {
		r.once.Do(r.hook)
	}
	return ws, owner, err
}

// TestConnectRacingARotation: a connect that looked its token up just
// before a rotation committed and whose session registers after the
// notification's recheck ran (which then saw no session to close) is still
// closed: the connect notices a recheck began meanwhile and checks again.
func TestConnectRacingARotation(t *testing.T) {
	var rs *raceStore
	f := setupCfg(t, func(c *agentapi.Config) { rs = &raceStore{Store: c.Store}; c.Store = rs })
	rs.hook = func() {
		rotate(t, f)
		f.srv.RecheckTokens(context.Background(), notify.Batch{Users: []string{f.owner.ID}})
	}
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("a session registered with a token rotated during its connect stays open")
	}
	if err := s.Err(); !errors.Is(err, conn.ErrRevoked) || !strings.Contains(err.Error(), "rotated") {
		t.Fatalf("session ended with %v", err)
	}
}

// TestSweepWithoutNotification: a revocation nobody announced (a lost
// notification) still closes the session within RecheckInterval.
func TestSweepWithoutNotification(t *testing.T) {
	f := setupCfg(t, func(c *agentapi.Config) { c.RecheckInterval = 50 * time.Millisecond })
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitConnected(t, f.srv, 1)
	suspend(t, f) // no RecheckTokens, no notification
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the periodic re-check did not close a revoked session")
	}
	if err := s.Err(); !errors.Is(err, conn.ErrRevoked) || !strings.Contains(err.Error(), "suspended") {
		t.Fatalf("session ended with %v", err)
	}
}

// byIDStore counts WorkspaceByID, which only a connect's own re-check
// (recheckIfMissed) calls.
type byIDStore struct {
	raceStore
	mu   sync.Mutex
	byID int
}

func (b *byIDStore) WorkspaceByID(ctx context.Context, id string) (store.Workspace, error) {
	b.mu.Lock()
	b.byID++
	b.mu.Unlock()
	return b.raceStore.WorkspaceByID(ctx, id)
}

func (b *byIDStore) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byID
}

// TestConnectRacingOtherChanges: rechecks that begin during a connect but
// name other owners do not make the connect check its token again (under a
// stream of secret changes that was every connect); one naming its owner
// does, reading only its owner and its workspace, and a valid token stays
// connected.
func TestConnectRacingOtherChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		batch  func(f *fixture) notify.Batch
		checks int
	}{
		{"other owners", func(*fixture) notify.Batch { return notify.Batch{Users: []string{"someone-else", "another"}} }, 0},
		{"its owner", func(f *fixture) notify.Batch { return notify.Batch{Users: []string{f.owner.ID}} }, 1},
		{"a resync", func(*fixture) notify.Batch { return notify.Batch{Resync: true} }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bs *byIDStore
			f := setupCfg(t, func(c *agentapi.Config) { bs = &byIDStore{raceStore: raceStore{Store: c.Store}}; c.Store = bs })
			bs.hook = func() { f.srv.RecheckTokens(context.Background(), tc.batch(f)) }
			s, err := dial(t, f, agentToken)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			waitConnected(t, f.srv, 1)
			deadline := time.Now().Add(2 * time.Second)
			for bs.count() < tc.checks && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // a check that should not come would have come
			if got := bs.count(); got != tc.checks {
				t.Fatalf("WorkspaceByID called %d times after the connect, want %d", got, tc.checks)
			}
			select {
			case <-s.Done():
				t.Fatalf("a valid session was closed: %v", s.Err())
			default:
			}
		})
	}
}
