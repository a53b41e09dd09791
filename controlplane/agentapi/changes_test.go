package agentapi_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/store"
)

// acceptChange waits for the next stream from the control plane, which
// must be a secrets-changed one, and returns its message.
func acceptChange(t *testing.T, s *conn.Session) proto.SecretsChanged {
	t.Helper()
	type res struct {
		m   proto.SecretsChanged
		err error
	}
	ch := make(chan res, 1)
	go func() {
		st, kind, err := s.Accept()
		if err != nil {
			ch <- res{err: err}
			return
		}
		if kind != proto.StreamSecretsChanged {
			_ = st.Close()
			ch <- res{err: errKind}
			return
		}
		m, err := conn.ReadSecretsChanged(st)
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.m
	case <-time.After(30 * time.Second):
		_ = s.Close() // ends the Accept above
		t.Fatal("no secrets-changed stream")
	}
	return proto.SecretsChanged{}
}

var errKind = errors.New("a stream of another kind")

// TestSecretsChangedTellsOwnersAgents: a batch naming a user reaches that
// user's connected agent with the current revision, and not another
// user's agent; a Resync reaches every connected agent. The apply report
// is stored with the revision this session was served, whatever the agent
// claims.
func TestSecretsChangedTellsOwnersAgents(t *testing.T) {
	f := setup(t, false)
	ctx := context.Background()
	other := store.User{ID: "u2", Username: "other", Email: "o@x", CreatedAt: time.Now()}
	if err := f.st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	const otherToken = "other-agent-token-0123456789abcdef"
	sum := sha256.Sum256([]byte(otherToken))
	if err := f.st.CreateWorkspace(ctx, store.Workspace{ID: "w2", Name: "o", OwnerID: other.ID, AgentTokenHash: sum[:], CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mine, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	theirs, err := dial(t, f, otherToken)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	waitConnected(t, f.srv, 2)

	resp, err := mine.Secrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.DeleteSecret(ctx, f.owner.ID, "broken"); err != nil {
		t.Fatal(err)
	}
	f.srv.SecretsChanged(ctx, notify.Batch{Users: []string{f.owner.ID}})
	if m := acceptChange(t, mine); m.Revision != resp.Revision+1 {
		t.Fatalf("revision %d, want %d", m.Revision, resp.Revision+1)
	}

	// The other owner's revision moves to 1 before the Resync: had the
	// batch naming only the first owner reached the other agent, its first
	// message would carry 0.
	if err := f.st.CreateSecrets(ctx, other.ID, []store.Secret{{ID: "o1", Name: "o", Value: []byte("x"), Enabled: true,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}}, nil); err != nil {
		t.Fatal(err)
	}
	f.srv.SecretsChanged(ctx, notify.Batch{Resync: true})
	if m := acceptChange(t, theirs); m.Revision != 1 {
		t.Fatalf("the other owner's agent got revision %d first, want 1 from the Resync", m.Revision)
	}
	if m := acceptChange(t, mine); m.Revision != resp.Revision+1 {
		t.Fatalf("resync revision %d, want %d", m.Revision, resp.Revision+1)
	}

	// The apply report carries the revision served on this session.
	if err := mine.ReportApply(ctx, proto.ApplyReport{At: time.Now(), SecretsRevision: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	st, err := f.st.AgentStatus(ctx, f.ws.ID)
	if err != nil || st.LastApply == nil || st.LastApply.SecretsRevision != resp.Revision {
		t.Fatalf("stored apply %+v, %v: want revision %d", st.LastApply, err, resp.Revision)
	}
	for _, e := range f.logs.All() {
		if strings.Contains(e.Message+toStr(e.ContextMap()), canary) {
			t.Fatal("a log line holds a value")
		}
	}
}

// TestWatchSecrets: the watch loop relays a notifier's batches and ends
// cleanly with its context, or with ErrClosed when the notifier closes.
func TestWatchSecrets(t *testing.T) {
	f := setup(t, false)
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitConnected(t, f.srv, 1)
	n := notify.NewLocal(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	sub := n.Subscribe()
	go func() { done <- f.srv.WatchSecrets(ctx, sub) }()
	if err := n.Publish(ctx, f.owner.ID); err != nil {
		t.Fatal(err)
	}
	if m := acceptChange(t, s); m.Revision != 1 {
		t.Fatalf("revision %d, want 1", m.Revision)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("WatchSecrets after cancel: %v, want nil", err)
	}
	go func() { done <- f.srv.WatchSecrets(context.Background(), sub) }()
	_ = n.Close()
	if err := <-done; err != notify.ErrClosed {
		t.Fatalf("WatchSecrets after the notifier closed: %v, want ErrClosed", err)
	}
}
