package controlplane

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/store"
)

// sshProxies are the SSH sessions this replica proxies, so that access
// ends at once (R13): when a change notification names a proxy's user
// (every proxy on a resync), the user and the workspace are read again,
// and a proxy whose user was suspended or deleted, or whose workspace was
// deleted, is ended. Closing the agent's session ends the streams it
// carries too, but only on the replica that holds the agent; this ends the
// client's side here, whichever replica the agent is on, in one place.
type sshProxies struct {
	mu   sync.Mutex
	live map[*sshProxy]struct{}
}

// sshProxy is one proxied SSH session.
type sshProxy struct {
	userID, workspaceID string
	end                 context.CancelFunc
}

// track records a live proxy and returns the func that forgets it.
func (s *sshProxies) track(p *sshProxy) (untrack func()) {
	s.mu.Lock()
	if s.live == nil {
		s.live = map[*sshProxy]struct{}{}
	}
	s.live[p] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.live, p)
		s.mu.Unlock()
	}
}

// named returns the live proxies of the users b names (all on a resync).
func (s *sshProxies) named(b notify.Batch) []*sshProxy {
	users := map[string]bool{}
	for _, u := range b.Users {
		users[u] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*sshProxy
	for p := range s.live {
		if b.Resync || users[p.userID] {
			out = append(out, p)
		}
	}
	return out
}

// watchSSH re-checks the live SSH proxies on every batch of sub until ctx
// ends.
func (a *api) watchSSH(ctx context.Context, sub notify.Subscription) {
	for {
		b, err := sub.Next(ctx)
		if err != nil {
			return
		}
		a.recheckSSH(ctx, b)
	}
}

// recheckSSH ends the proxies b names whose user is suspended or deleted or
// whose workspace is deleted. A store failure ends nothing and is logged.
func (a *api) recheckSSH(ctx context.Context, b notify.Batch) {
	for _, p := range a.sshLive.named(b) {
		reason := ""
		u, err := a.store.UserByID(ctx, p.userID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			reason = "the user was deleted"
		case err == nil && u.Suspended():
			reason = "the user is suspended"
		case err == nil:
			_, err = a.store.WorkspaceByID(ctx, p.workspaceID)
			if errors.Is(err, store.ErrNotFound) {
				reason, err = "the workspace was deleted", nil
			}
		}
		if err != nil && reason == "" {
			a.log.Error("could not re-check an SSH session", zap.String("workspace_id", p.workspaceID), zap.Error(err))
			continue
		}
		if reason != "" {
			a.log.Warn("ending an SSH session whose access was revoked", zap.String("workspace_id", p.workspaceID),
				zap.String("user_id", p.userID), zap.String("reason", reason))
			p.end()
		}
	}
}
