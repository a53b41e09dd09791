package agentapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/store"
)

// This file ends access at once (R13): an agent token that stops being
// valid — its workspace deleted, the token rotated or expired, the owner
// suspended or deleted — is refused at connect, and a session already
// connected with it is closed with proto.CloseRevoked when a change
// notification names the owner (every session on a Resync) or when the
// token's expiry passes.

// Reasons a session is revoked, sent after proto.CloseRevokedReason and
// logged. None carries a token.
const (
	reasonWorkspaceDeleted = "the workspace was deleted"
	reasonRotated          = "the token was rotated"
	reasonOwnerSuspended   = "the owner is suspended"
	reasonOwnerDeleted     = "the owner was deleted"
)

// Messages of a refused connect.
const (
	msgTokenInvalid   = "the agent token is not valid (revoked or rotated?)"
	msgOwnerSuspended = "the owner of this workspace is suspended; the agent may connect again once an admin reactivates them"
)

// expired reports whether a token that expires at exp (zero: never) has
// expired at now.
func expired(exp, now time.Time) bool {
	return !exp.IsZero() && !now.Before(exp)
}

func expiredReason(exp time.Time) string {
	return "the token expired at " + exp.UTC().Format(time.RFC3339)
}

// refusal is why a connect is refused: an HTTP status and message.
type refusal struct {
	status  int
	message string
}

// admitToken checks, at connect, what the token hash lookup did not: that
// the token has not expired and that its owner (read with it) is not
// suspended. It returns nil when the agent may connect. An owner deleted
// takes their workspaces with them, so the lookup already failed.
func (s *Server) admitToken(ws store.Workspace, owner store.User) *refusal {
	switch {
	case expired(ws.AgentTokenExpiresAt, s.cfg.Now()):
		return &refusal{http.StatusUnauthorized, fmt.Sprintf(
			"the agent token expired at %s; rotate it with courier workspaces rotate-token",
			ws.AgentTokenExpiresAt.UTC().Format(time.RFC3339))}
	case owner.Suspended():
		return &refusal{http.StatusForbidden, msgOwnerSuspended}
	}
	return nil
}

// RecheckTokens re-checks, against the store, each connected session whose
// owner b names (every session when b.Resync) and closes, with
// proto.CloseRevoked, those whose workspace is gone, whose token hash
// changed or expired, or whose owner is suspended or deleted. It reads each
// named owner and their workspaces once (a Resync: every user and every
// workspace, one query each), never once per session. A store failure is
// logged and closes nothing; the next notification checks again.
func (s *Server) RecheckTokens(ctx context.Context, b notify.Batch) {
	s.rechecks.begin(b) // before the sessions are read: see recheckIfMissed
	s.recheck(ctx, b)
}

// recheck is RecheckTokens without recording it.
func (s *Server) recheck(ctx context.Context, b notify.Batch) {
	named := map[string]bool{}
	for _, u := range b.Users {
		named[u] = true
	}
	s.mu.Lock()
	var targets []*session
	for _, sess := range s.sessions {
		if b.Resync || named[sess.ws.OwnerID] {
			targets = append(targets, sess)
		}
	}
	s.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	users := map[string]store.User{}
	workspaces := map[string]store.Workspace{}
	add := func(wss []store.Workspace) {
		for _, ws := range wss {
			workspaces[ws.ID] = ws
		}
	}
	if b.Resync {
		us, err := s.cfg.Store.ListUsers(ctx)
		if err != nil {
			s.log.Error("could not re-check agent tokens after a resync", zap.Error(err))
			return
		}
		for _, u := range us {
			users[u.ID] = u
		}
		wss, err := s.cfg.Store.ListWorkspaces(ctx, "")
		if err != nil {
			s.log.Error("could not re-check agent tokens after a resync", zap.Error(err))
			return
		}
		add(wss)
	} else {
		owners := map[string]bool{}
		for _, sess := range targets {
			owners[sess.ws.OwnerID] = true
		}
		for owner := range owners {
			u, err := s.cfg.Store.UserByID(ctx, owner)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted: absent from users
			}
			if err == nil {
				users[owner] = u
				var wss []store.Workspace
				wss, err = s.cfg.Store.ListWorkspaces(ctx, owner)
				add(wss)
			}
			if err != nil {
				s.log.Error("could not re-check the agent tokens of a user", zap.String("owner_id", owner), zap.Error(err))
				delete(owners, owner)
				delete(users, owner)
			}
		}
		// Sessions of owners whose check failed are left alone.
		kept := targets[:0]
		for _, sess := range targets {
			if owners[sess.ws.OwnerID] {
				kept = append(kept, sess)
			}
		}
		targets = kept
	}
	now := s.cfg.Now()
	for _, sess := range targets {
		if reason := revokedReason(sess.ws, users, workspaces, now); reason != "" {
			s.revoke(sess, reason)
		}
	}
}

// sweep re-checks every connected agent's token each RecheckInterval until
// the Server closes: a revocation whose notification was lost (a failed
// Publish) is noticed within that interval.
func (s *Server) sweep() {
	defer s.wg.Done()
	if s.cfg.RecheckInterval < 0 {
		return
	}
	t := time.NewTicker(s.cfg.RecheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-t.C:
			if s.Connected() > 0 {
				s.RecheckTokens(s.base, notify.Batch{Resync: true})
			}
		}
	}
}

// recheckIfMissed closes the race between a connect and a revocation: a
// connect that looked its token up just before a rotation committed, and
// registered its session just after the notification's recheck had read the
// sessions, would keep a revoked token connected. rechecks is the number of
// the last recheck begun before the token was looked up; if one that began
// since named the session's owner (or was a resync, or is forgotten), this
// session is checked again. (A recheck that began before the lookup ran
// after the change it was told of had committed, so the lookup saw that
// change.) Rechecks that named other owners are no concern of this
// session's, and under a stream of secret changes they are most of them.
func (s *Server) recheckIfMissed(sess *session, rechecks uint64) {
	if !s.rechecks.concerns(rechecks, sess.ws.OwnerID) {
		return
	}
	s.goTracked(func() {
		ctx, cancel := context.WithTimeout(s.base, changeTimeout)
		defer cancel()
		s.recheckSession(ctx, sess)
	})
}

// recheckSession checks one session's token against the store, as recheck
// does for every session of an owner, reading only its owner and its
// workspace. A store failure is logged and closes nothing.
func (s *Server) recheckSession(ctx context.Context, sess *session) {
	users := map[string]store.User{}
	workspaces := map[string]store.Workspace{}
	owner, err := s.cfg.Store.UserByID(ctx, sess.ws.OwnerID)
	if err == nil {
		users[owner.ID] = owner
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("could not re-check an agent token", zap.String("workspace_id", sess.ws.ID), zap.Error(err))
		return
	}
	ws, err := s.cfg.Store.WorkspaceByID(ctx, sess.ws.ID)
	if err == nil {
		workspaces[ws.ID] = ws
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("could not re-check an agent token", zap.String("workspace_id", sess.ws.ID), zap.Error(err))
		return
	}
	if reason := revokedReason(sess.ws, users, workspaces, s.cfg.Now()); reason != "" {
		s.revoke(sess, reason)
	}
}

// revokedReason says why the token of a session on ws is no longer valid,
// given the owners and workspaces as stored now; "" when it still is.
func revokedReason(ws sessionWorkspace, users map[string]store.User, workspaces map[string]store.Workspace, now time.Time) string {
	owner, ok := users[ws.OwnerID]
	if !ok {
		return reasonOwnerDeleted
	}
	cur, ok := workspaces[ws.ID]
	switch {
	case !ok:
		return reasonWorkspaceDeleted
	case subtle.ConstantTimeCompare(cur.AgentTokenHash, ws.AgentTokenHash) != 1:
		return reasonRotated
	case expired(cur.AgentTokenExpiresAt, now):
		return expiredReason(cur.AgentTokenExpiresAt)
	case owner.Suspended():
		return reasonOwnerSuspended
	}
	return ""
}

// watchExpiry closes sess when its token expires while it is connected. It
// returns a func that stops the timer.
func (s *Server) watchExpiry(sess *session) func() bool {
	if sess.ws.AgentTokenExpiresAt.IsZero() {
		return func() bool { return false }
	}
	t := time.AfterFunc(sess.ws.AgentTokenExpiresAt.Sub(s.cfg.Now()), func() { s.revoke(sess, expiredReason(sess.ws.AgentTokenExpiresAt)) })
	return t.Stop
}

// revoke closes sess with proto.CloseRevoked and reason, once; the session
// is forgotten as it ends (endSession). One warning is logged per
// session.
func (s *Server) revoke(sess *session, reason string) {
	if !sess.revoked.CompareAndSwap(false, true) {
		return
	}
	s.log.Warn("disconnecting an agent whose token is no longer valid",
		zap.String("workspace", sess.ws.Name), zap.String("workspace_id", sess.ws.ID),
		zap.String("remote", sess.remote), zap.String("reason", reason))
	msg := proto.CloseRevokedReason + ": " + reason
	if len(msg) > 123 { // the most a close frame carries
		msg = msg[:123]
	}
	s.goTracked(func() {
		// The close handshake waits a few seconds at most for the agent's
		// answer; closing the mux after it ends every stream (SSH too).
		_ = sess.conn.Close(websocket.StatusCode(proto.CloseRevoked), msg)
		_ = sess.mux.Close()
	})
}
