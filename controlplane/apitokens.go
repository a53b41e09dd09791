package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
)

// Personal API tokens (issue 19, part 2): REST handlers. The rules —
// minting, names, lifetimes, scopes — live in package identity; the
// dashboard's token page goes through mintAPIToken too.
//
//	POST   /api/v2/users/{user}/tokens         create (yourself only) → 201, the token shown once
//	GET    /api/v2/users/{user}/tokens         list (yourself, or anyone for an admin or auditor)
//	DELETE /api/v2/users/{user}/tokens/{name}  revoke (yourself, or anyone for an admin) → 204
//	GET    /api/v2/tokens                      every user's tokens (admins and auditors)

// APITokenResponse is a token as the API lists it, never the token itself
// (declared in package client).
type APITokenResponse = client.APIToken

// CreatedAPITokenResponse is the answer to a create, the one response
// that carries the token (declared in package client).
type CreatedAPITokenResponse = client.CreatedAPIToken

// createTokenRequest is the body of POST .../tokens. Lifetime is a string:
// days ("30d"), a Go duration ("12h") or both ("1d12h"); "" is 30 days.
type createTokenRequest struct {
	Name     string `json:"name"`
	Lifetime string `json:"lifetime"`
	Scope    string `json:"scope"`
}

var errTokensForOthers = errorf(http.StatusForbidden,
	"a token can only be created by its own user: admins may list and revoke other users' tokens but not create them")

func apiTokenResponse(t store.APIToken, username string, now time.Time) APITokenResponse {
	out := APITokenResponse{ID: t.ID, Name: t.Name, Scope: string(t.Scope), UserID: t.UserID, Username: username,
		CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC(), Expired: !t.ExpiresAt.After(now),
		LastUsedAddr: t.LastUsedAddr}
	if !t.LastUsedAt.IsZero() {
		at := t.LastUsedAt.UTC()
		out.LastUsedAt = &at
	}
	return out
}

// mintAPIToken validates req, creates the token for owner (the caller) and
// returns it and the token itself. A request authenticated with an API
// token may not create one that outlives it, so a leaked token cannot renew
// itself forever. Refusals are *apiError (400 naming the field, 409 for a
// name taken) and store nothing.
func (a *api) mintAPIToken(ctx context.Context, r *http.Request, owner store.User, req createTokenRequest) (store.APIToken, string, error) {
	p := identity.Policy{MaxLifetime: a.cfg.MaxTokenLifetime}
	if t := credentialOf(r).APIToken; t != nil {
		p.NotAfter = t.ExpiresAt
	}
	t, tok, err := identity.New(owner.ID, identity.Request(req), p, a.cfg.stamp())
	var fe *identity.FieldError
	if errors.As(err, &fe) {
		return store.APIToken{}, "", &apiError{status: http.StatusBadRequest, body: ErrorResponse{
			Message: "invalid token: " + fe.Err.Error(), Validations: []Validation{{Field: fe.Field, Detail: fe.Err.Error()}}}}
	}
	if err != nil {
		return store.APIToken{}, "", err
	}
	have, err := a.store.ListAPITokens(ctx, owner.ID)
	if err != nil {
		return store.APIToken{}, "", fmt.Errorf("list API tokens: %w", err)
	}
	if len(have) >= identity.MaxTokensPerUser {
		return store.APIToken{}, "", errorf(http.StatusBadRequest,
			"you have %d API tokens, the most allowed: revoke one you no longer use first", len(have))
	}
	t.ID = uuid.NewString()
	noteTarget(ctx, audit.Target{Kind: targetToken, ID: t.ID, Name: truncate(t.Name, identity.MaxNameBytes), OwnerID: owner.ID})
	noteDetails(ctx, map[string]any{"scope": string(t.Scope), "expires_at": t.ExpiresAt})
	err = a.store.CreateAPIToken(audit.InTx(ctx), t)
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		return store.APIToken{}, "", &apiError{status: http.StatusConflict, body: ErrorResponse{
			Message:     fmt.Sprintf("you already have a token named %q: revoke it first or pick another name", req.Name),
			Validations: []Validation{{Field: "name", Detail: "is taken by another of your tokens"}}}}
	}
	if err != nil {
		return store.APIToken{}, "", fmt.Errorf("create API token: %w", err)
	}
	a.log.Info("API token created", zap.String("user_id", owner.ID), zap.String("token_id", t.ID),
		zap.String("name", truncate(t.Name, identity.MaxNameBytes)), zap.String("scope", string(t.Scope)),
		zap.Time("expires_at", t.ExpiresAt), zap.Bool("by_api_token", credentialOf(r).APIToken != nil))
	return t, tok, nil
}

// createAPIToken: POST /api/v2/users/{user}/tokens → 201 with the token,
// shown this once.
func (a *api) createAPIToken(w http.ResponseWriter, r *http.Request) {
	u, err := a.resolveUser(r)
	if err == nil && u.ID != caller(r).ID {
		err = errTokensForOthers
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req createTokenRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	t, tok, err := a.mintAPIToken(r.Context(), r, u, req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, CreatedAPITokenResponse{APIToken: apiTokenResponse(t, u.Username, a.cfg.now()), Token: tok})
}

// listAPITokens: GET /api/v2/users/{user}/tokens, by name.
func (a *api) listAPITokens(w http.ResponseWriter, r *http.Request) {
	u, err := a.resolveUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ts, err := a.store.ListAPITokens(r.Context(), u.ID)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list API tokens: %w", err))
		return
	}
	now := a.cfg.now()
	out := make([]APITokenResponse, 0, len(ts))
	for _, t := range ts {
		out = append(out, apiTokenResponse(t, u.Username, now))
	}
	writeJSON(w, http.StatusOK, out)
}

// listAllAPITokens: GET /api/v2/tokens (admins and auditors, who may list
// anyone's), by username then name.
func (a *api) listAllAPITokens(w http.ResponseWriter, r *http.Request) {
	if !canSeeEveryone(caller(r)) {
		a.writeError(w, r, errAdminOnly)
		return
	}
	ts, err := a.store.ListAPITokens(r.Context(), "")
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list API tokens: %w", err))
		return
	}
	us, err := a.store.ListUsers(r.Context())
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list users: %w", err))
		return
	}
	names := make(map[string]string, len(us))
	for _, u := range us {
		names[u.ID] = u.Username
	}
	now := a.cfg.now()
	out := make([]APITokenResponse, 0, len(ts))
	for _, t := range ts {
		out = append(out, apiTokenResponse(t, names[t.UserID], now))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Username != out[j].Username {
			return out[i].Username < out[j].Username
		}
		return out[i].Name < out[j].Name
	})
	writeJSON(w, http.StatusOK, out)
}

// revokeAPIToken deletes u's token name; the next request with it is
// refused, on every replica (every request looks the token up).
func (a *api) revokeAPIToken(r *http.Request, u store.User, name string) error {
	noteTarget(r.Context(), audit.Target{Kind: targetToken, Name: truncate(name, identity.MaxNameBytes), OwnerID: u.ID})
	// Write this replica's pending last uses first: a token used and
	// revoked within one interval keeps its first-use record.
	if a.uses != nil {
		if err := a.uses.Flush(r.Context()); err != nil {
			a.log.Warn("write API tokens' last uses before a revocation", errField(err))
		}
	}
	err := a.store.DeleteAPIToken(audit.InTx(r.Context()), u.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "token %q not found", truncate(name, identity.MaxNameBytes))
	}
	if err != nil {
		return fmt.Errorf("delete API token: %w", err)
	}
	a.log.Info("API token revoked", zap.String("user_id", u.ID), zap.String("name", truncate(name, identity.MaxNameBytes)),
		zap.String("by", caller(r).ID))
	return nil
}

// deleteAPIToken: DELETE /api/v2/users/{user}/tokens/{name} → 204.
func (a *api) deleteAPIToken(w http.ResponseWriter, r *http.Request) {
	u, err := a.resolveUser(r)
	if err == nil {
		err = a.revokeAPIToken(r, u, r.PathValue("name"))
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
