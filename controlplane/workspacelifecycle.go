package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
)

// This file is the end of a workspace's life and of its agent tokens:
// deleting a workspace and rotating its agent token. Both may be done by
// the workspace's owner (who runs its agent and holds its token) and by an
// admin (who created it and handed the token out); anyone else is told the
// workspace does not exist, as by GET. The store is a publishingStore, so
// each write announces the owner and every replica disconnects the agent
// whose token stopped working (agentapi.RecheckTokens).

type (
	// RotateAgentTokenRequest is the optional body of a rotation.
	RotateAgentTokenRequest = client.RotateAgentTokenRequest
	// RotatedAgentTokenResponse is the new agent token, shown once.
	RotatedAgentTokenResponse = client.RotatedAgentToken
)

var errNotManager = errorf(http.StatusForbidden,
	"only the workspace's owner or an admin may delete it or rotate its agent token")

// manageableWorkspace resolves {workspace} for a delete or a rotation: 404
// for a workspace the caller may not see (as GET), 403 for one they may
// see but not manage (should a read-only role see others' workspaces).
func (a *api) manageableWorkspace(r *http.Request) (store.Workspace, error) {
	ws, err := a.resolveWorkspace(r)
	if err != nil {
		return ws, err
	}
	noteTarget(r.Context(), workspaceTarget(ws))
	if me := caller(r); ws.OwnerID != me.ID && !me.IsAdmin() {
		return store.Workspace{}, errNotManager
	}
	return ws, nil
}

// deleteWorkspace: DELETE /api/v2/workspaces/{workspace} → 204. The owner or
// an admin; the workspace's agent is disconnected on every replica. The
// owner's secrets are theirs, not the workspace's, and stay.
func (a *api) deleteWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := a.manageableWorkspace(r)
	if err == nil {
		err = a.removeWorkspace(r.Context(), caller(r), ws)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeWorkspace deletes ws for by (checked to be its owner or an admin),
// for the REST route and the dashboard.
func (a *api) removeWorkspace(ctx context.Context, by store.User, ws store.Workspace) error {
	noteTarget(ctx, workspaceTarget(ws))
	if err := a.store.DeleteWorkspace(audit.InTx(ctx), ws.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoWorkspace // deleted meanwhile
		}
		return fmt.Errorf("delete workspace: %w", err)
	}
	a.log.Info("workspace deleted", zap.String("workspace", ws.Name), zap.String("workspace_id", ws.ID),
		zap.String("owner_id", ws.OwnerID), zap.String("by", by.ID))
	return nil
}

// rotateAgentToken: POST /api/v2/workspaces/{workspace}/agent-token, body
// optional ({"lifetime": "30d"}) → 201 {agent_token, expires_at}. The owner
// or an admin. The new token is in this answer only; the old one stops
// working at once.
func (a *api) rotateAgentToken(w http.ResponseWriter, r *http.Request) {
	ws, err := a.manageableWorkspace(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req RotateAgentTokenRequest
	if r.ContentLength != 0 {
		if err := a.decodeJSON(w, r, &req); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	lifetime, err := a.agentTokenLifetime(req.Lifetime)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp, err := a.rotateToken(r.Context(), caller(r), ws, lifetime)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}

// agentTokenLifetime parses a requested lifetime; "" is the server's
// default (0: never).
func (a *api) agentTokenLifetime(s string) (time.Duration, error) {
	if s == "" {
		return a.cfg.AgentTokenLifetime, nil
	}
	d, err := identity.ParseLifetime(s, 0)
	if err != nil {
		return 0, &apiError{status: http.StatusBadRequest, body: ErrorResponse{Message: "invalid lifetime",
			Validations: []Validation{{Field: "lifetime", Detail: err.Error()}}}}
	}
	return d, nil
}

// rotateToken gives ws a new agent token valid for lifetime (0: never) and
// returns it, for the REST route and the dashboard.
func (a *api) rotateToken(ctx context.Context, by store.User, ws store.Workspace, lifetime time.Duration) (RotatedAgentTokenResponse, error) {
	tok, hash, err := newToken()
	if err != nil {
		return RotatedAgentTokenResponse{}, err
	}
	var expires time.Time
	if lifetime > 0 {
		expires = a.cfg.stamp().Add(lifetime)
	}
	noteTarget(ctx, workspaceTarget(ws))
	stored, err := a.store.RotateAgentToken(audit.InTx(ctx), ws.ID, hash, expires)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return RotatedAgentTokenResponse{}, errNoWorkspace
		}
		return RotatedAgentTokenResponse{}, fmt.Errorf("rotate agent token: %w", err)
	}
	a.log.Info("agent token rotated", zap.String("workspace", ws.Name), zap.String("workspace_id", ws.ID),
		zap.String("by", by.ID), zap.Timep("expires_at", timePtr(stored.AgentTokenExpiresAt)))
	return RotatedAgentTokenResponse{AgentToken: tok, ExpiresAt: timePtr(stored.AgentTokenExpiresAt)}, nil
}
