package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
)

// Users' lifecycle: roles, suspension, deletion and passwords. The REST
// handlers here and the dashboard's (package dashboard, wired in
// dashboard.go) share the functions that change something (changeRole, setSuspended, removeUser,
// changePassword), so the rules cannot differ between them.
//
// The rules:
//   - only an admin changes roles, suspends, activates and deletes;
//   - the last active admin cannot be demoted, suspended or deleted (the
//     store refuses with store.ErrLastAdmin, inside its transaction, so two
//     admins demoting each other at once cannot both succeed): 409;
//   - an admin cannot suspend or delete their own account (400): it would
//     lock them out halfway through, and another admin should see it done;
//     demoting oneself is allowed while another active admin remains;
//   - suspending or deleting ends every session and API token of the user
//     at once (auth refuses a suspended user on every request anyway) and
//     publishes the user's ID on the change notifier, so every replica
//     re-checks and disconnects that user's agents and SSH sessions;
//   - a password is changed by its owner with the old one, or reset by an
//     admin without it; either ends the user's other sessions.

// Answers of the lifecycle routes.
var (
	errBadRole         = errors.New("must be admin, member or auditor")
	errAuditorReadOnly = errorf(http.StatusForbidden,
		"auditors can read but not change other users' accounts, secrets or workspaces")
	errSelfSuspend = errorf(http.StatusBadRequest,
		"you cannot suspend your own account; ask another admin")
	errSelfDelete = errorf(http.StatusBadRequest,
		"you cannot delete your own account; ask another admin")
	errWrongOldPassword = &apiError{status: http.StatusBadRequest, body: ErrorResponse{
		Message: "the old password is not correct; nothing was changed", Validations: []Validation{{
			Field: "old_password", Detail: "is not your current password"}}}}
)

// canSeeEveryone reports whether u may list every user and read any
// user's secret metadata: admins and auditors.
func canSeeEveryone(u store.User) bool { return u.SeesEveryone() }

// readOnlyToken reports whether r came with a read-scoped API token. authed
// lets such a token GET anything its user may read; a GET that acts (the
// SSH upgrade) asks this too.
func readOnlyToken(r *http.Request) bool {
	t := credentialOf(r).APIToken
	return t != nil && t.Scope != store.ScopeWrite
}

// lifecycleError turns the store's refusals into answers: the last admin
// is a 409 naming them, a user deleted meanwhile a 404.
func lifecycleError(err error, u store.User) error {
	switch {
	case errors.Is(err, store.ErrLastAdmin):
		return errorf(http.StatusConflict,
			"%s is the last active admin: make another user admin first (the last active admin cannot be suspended, deleted or demoted)",
			u.Username)
	case errors.Is(err, store.ErrNotFound):
		return errNoUser
	}
	return err
}

// adminTarget checks that the caller is an admin (403 otherwise, before
// looking anything up, so nothing is revealed) and resolves {user}.
func (a *api) adminTarget(r *http.Request) (store.User, error) {
	if !caller(r).IsAdmin() {
		return store.User{}, errAdminOnly
	}
	return a.resolveUser(r)
}

// changeRole sets u's role.
func (a *api) changeRole(ctx context.Context, u store.User, role store.Role) (store.User, error) {
	if !role.Valid() {
		return store.User{}, &apiError{status: http.StatusBadRequest, body: ErrorResponse{
			Message: "invalid role", Validations: []Validation{{Field: "role", Detail: errBadRole.Error()}}}}
	}
	out, err := a.store.UpdateUser(audit.InTx(ctx), u.ID, func(su *store.User) error {
		noteDetails(ctx, map[string]any{"role": audit.Change{Old: string(store.RoleOf(*su)), New: string(role), Changed: true}})
		su.Role = role
		return nil
	})
	if err != nil {
		return store.User{}, lifecycleError(err, u)
	}
	a.log.Info("user role changed", zap.String("user_id", u.ID), zap.String("role", string(role)))
	return out, nil
}

// setSuspended suspends or activates u on behalf of me. Suspending ends
// every session and API token of u; the publishing store announces the
// change, so every replica disconnects u's agents.
func (a *api) setSuspended(ctx context.Context, me, u store.User, suspend bool) (store.User, error) {
	if suspend && u.ID == me.ID {
		return store.User{}, errSelfSuspend
	}
	now := a.cfg.stamp()
	out, err := a.store.UpdateUser(audit.InTx(ctx), u.ID, func(su *store.User) error {
		switch {
		case !suspend:
			su.SuspendedAt = time.Time{}
		case su.SuspendedAt.IsZero(): // suspending twice keeps the first time
			su.SuspendedAt = now
		}
		return nil
	})
	if err != nil {
		return store.User{}, lifecycleError(err, u)
	}
	if suspend {
		if err := a.endAccess(ctx, u.ID); err != nil {
			return store.User{}, err
		}
	}
	a.log.Info("user status changed", zap.String("user_id", u.ID), zap.Bool("suspended", suspend))
	return out, nil
}

// endAccess deletes every session and API token of userID. A suspended
// user is refused on every request anyway; deleting them as well means an
// activation later does not bring old credentials back.
func (a *api) endAccess(ctx context.Context, userID string) error {
	if _, err := a.store.DeleteUserSessions(ctx, userID, nil); err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	toks, err := a.store.ListAPITokens(ctx, userID)
	if err != nil {
		return fmt.Errorf("list API tokens: %w", err)
	}
	for _, t := range toks {
		if err := a.store.DeleteAPIToken(ctx, userID, t.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("revoke API token: %w", err)
		}
	}
	return nil
}

// removeUser deletes u (with their secrets, workspaces, sessions and API
// tokens, in one store transaction) on behalf of me.
func (a *api) removeUser(ctx context.Context, me, u store.User) error {
	if u.ID == me.ID {
		return errSelfDelete
	}
	if err := a.store.DeleteUser(audit.InTx(ctx), u.ID); err != nil {
		return lifecycleError(err, u)
	}
	a.log.Info("user deleted", zap.String("user_id", u.ID))
	return nil
}

// changePassword sets u's password to password on behalf of the caller of
// r: their own (old must be their current password, checked through
// authenticate, so guesses are throttled like logins) or, for an admin,
// anyone's. It ends u's other sessions: every one for a reset, all but
// the caller's own for their own change.
func (a *api) changePassword(r *http.Request, u store.User, old, password string) error {
	me := caller(r)
	own := u.ID == me.ID
	noteTarget(r.Context(), userTarget(u))
	var vs []Validation
	switch {
	case own && len(u.PasswordHash) == 0:
		vs = append(vs, Validation{Field: "old_password",
			Detail: "your account has no password (it signs in with single sign-on); an admin can set one"})
	case own && old == "":
		vs = append(vs, Validation{Field: "old_password", Detail: "is required to change your own password"})
	}
	if err := identity.CheckPassword(password, u.Username, u.Email); err != nil {
		vs = append(vs, Validation{Field: "password", Detail: err.Error()})
	}
	if len(vs) > 0 {
		return &apiError{status: http.StatusBadRequest, body: ErrorResponse{
			Message: "the password was not changed", Validations: vs}}
	}
	if own {
		if len(old) > MaxPasswordBytes {
			return errWrongOldPassword
		}
		if _, err := a.authenticate(r, u.Username, "", old); err != nil {
			if errors.Is(err, errBadLogin) {
				return errWrongOldPassword
			}
			return err
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cfg.BcryptCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	ctx := r.Context()
	if _, err := a.store.UpdateUser(audit.InTx(ctx), u.ID, func(su *store.User) error {
		su.PasswordHash = hash
		return nil
	}); err != nil {
		return lifecycleError(err, u)
	}
	var keep []byte
	if own && credentialOf(r).APIToken == nil {
		keep, _ = ctx.Value(ctxTokenHash).([]byte)
	}
	n, err := a.store.DeleteUserSessions(ctx, u.ID, keep)
	if err != nil {
		return fmt.Errorf("end other sessions: %w", err)
	}
	a.log.Info("password changed", zap.String("user_id", u.ID), zap.Bool("reset_by_admin", !own),
		zap.Int("sessions_ended", n))
	return nil
}

// setUserRole: PUT /api/v2/users/{user}/role {"role"} (admin) → 200 user.
func (a *api) setUserRole(w http.ResponseWriter, r *http.Request) {
	u, err := a.adminTarget(r)
	var req client.UpdateRoleRequest
	if err == nil {
		err = a.decodeJSON(w, r, &req)
	}
	if err == nil {
		u, err = a.changeRole(r.Context(), u, store.Role(req.Role))
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userResponse(u))
}

// suspendUser: PUT /api/v2/users/{user}/status/suspend (admin) → 200 user.
func (a *api) suspendUser(w http.ResponseWriter, r *http.Request) { a.setStatus(w, r, true) }

// activateUser: PUT /api/v2/users/{user}/status/activate (admin) → 200
// user.
func (a *api) activateUser(w http.ResponseWriter, r *http.Request) { a.setStatus(w, r, false) }

func (a *api) setStatus(w http.ResponseWriter, r *http.Request, suspend bool) {
	u, err := a.adminTarget(r)
	if err == nil {
		u, err = a.setSuspended(r.Context(), caller(r), u, suspend)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userResponse(u))
}

// deleteUser: DELETE /api/v2/users/{user} (admin) → 204.
func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.adminTarget(r)
	if err == nil {
		err = a.removeUser(r.Context(), caller(r), u)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// updatePassword: PUT /api/v2/users/{user}/password {"old_password",
// "password"} → 204. One's own needs old_password; an admin resetting
// someone else's sends only password (old_password is then ignored).
func (a *api) updatePassword(w http.ResponseWriter, r *http.Request) {
	u, err := a.resolveUser(r)
	if err == nil && u.ID != caller(r).ID && !caller(r).IsAdmin() {
		err = errAdminOnly // an auditor; resolveUser refuses them already
	}
	var req client.UpdatePasswordRequest
	if err == nil {
		err = a.decodeJSON(w, r, &req)
	}
	if err == nil {
		err = a.changePassword(r, u, req.OldPassword, req.Password)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// UpdateUser updates the user, then publishes their ID when the change
// suspended or reactivated them: every replica then re-checks that user's
// connected agents and SSH sessions.
func (p publishingStore) UpdateUser(ctx context.Context, id string, fn func(*store.User) error) (store.User, error) {
	var before bool
	u, err := p.Store.UpdateUser(ctx, id, func(su *store.User) error {
		before = su.Suspended()
		return fn(su)
	})
	if err == nil && before != u.Suspended() {
		p.publish(ctx, id)
	}
	return u, err
}

// DeleteUser deletes the user and everything of theirs, then publishes
// their ID, so every replica disconnects their agents.
func (p publishingStore) DeleteUser(ctx context.Context, id string) error {
	err := p.Store.DeleteUser(ctx, id)
	if err == nil {
		p.publish(ctx, id)
	}
	return err
}
