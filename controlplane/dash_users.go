package controlplane

import (
	"fmt"
	"net/http"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// Users in the dashboard: the list (admins and auditors), an admin's
// forms to change a role, suspend, activate and delete, one user's secrets
// read-only, and every user's own password form. Every change goes
// through userlifecycle.go's functions, as the REST API's does, and every
// refusal is explained by explain.

var errNotAdminOrAuditor = errorf(http.StatusForbidden, "only admins and auditors may see other users")

// roleNames are the roles offered, in order.
var roleNames = []string{string(store.RoleAdmin), string(store.RoleMember), string(store.RoleAuditor)}

// dashUsers: GET /users.
func (a *api) dashUsers(w http.ResponseWriter, r *http.Request) {
	me := caller(r)
	if !canSeeEveryone(me) {
		a.dashError(w, r, errNotAdminOrAuditor)
		return
	}
	us, err := a.store.ListUsers(r.Context())
	if err != nil {
		a.dashError(w, r, fmt.Errorf("list users: %w", err))
		return
	}
	body := &web.Users{Manage: me.IsAdmin(), Roles: roleNames}
	for _, u := range us {
		ur := userResponse(u)
		body.Rows = append(body.Rows, web.UserRow{Username: u.Username, Email: u.Email, Role: ur.Role,
			Status: ur.Status, LoginType: ur.LoginType, CreatedAt: u.CreatedAt, Self: u.ID == me.ID})
	}
	a.render(w, r, http.StatusOK, "users", &web.Page{Title: "Users", Nav: "users", Body: body})
}

// dashAdminForm checks that the caller is an admin, resolves {user} and
// reads the (small, url-encoded) form.
func (a *api) dashAdminForm(w http.ResponseWriter, r *http.Request) (store.User, error) {
	u, err := a.adminTarget(r)
	if err != nil {
		return u, err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return u, errorf(http.StatusBadRequest, "the form could not be read; reload the page and try again")
	}
	return u, nil
}

// dashSetRole: POST /users/{user}/role with role.
func (a *api) dashSetRole(w http.ResponseWriter, r *http.Request) {
	u, err := a.dashAdminForm(w, r)
	if err == nil {
		u, err = a.changeRole(r.Context(), u, store.Role(r.PostFormValue("role")))
	}
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	a.redirectNotice(w, r, "/users", fmt.Sprintf("%s is now %s.", u.Username, store.RoleOf(u)))
}

// dashSuspend: POST /users/{user}/suspend.
func (a *api) dashSuspend(w http.ResponseWriter, r *http.Request) { a.dashSetStatus(w, r, true) }

// dashActivate: POST /users/{user}/activate.
func (a *api) dashActivate(w http.ResponseWriter, r *http.Request) { a.dashSetStatus(w, r, false) }

func (a *api) dashSetStatus(w http.ResponseWriter, r *http.Request, suspend bool) {
	u, err := a.dashAdminForm(w, r)
	if err == nil {
		u, err = a.setSuspended(r.Context(), caller(r), u, suspend)
	}
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	notice := fmt.Sprintf("Activated %s: they can sign in again (their old sessions and API tokens stay ended).", u.Username)
	if suspend {
		notice = fmt.Sprintf("Suspended %s: their sessions and API tokens ended and their agents are disconnected.", u.Username)
	}
	a.redirectNotice(w, r, "/users", notice)
}

// dashConfirmDeleteUser: GET /users/{user}/delete asks first, saying what
// goes with the user.
func (a *api) dashConfirmDeleteUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.adminTarget(r)
	if err == nil && u.ID == caller(r).ID {
		err = errSelfDelete
	}
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	ss, err := a.store.ListSecrets(r.Context(), u.ID)
	if err != nil {
		a.dashError(w, r, fmt.Errorf("list secrets: %w", err))
		return
	}
	wss, err := a.store.ListWorkspaces(r.Context(), u.ID)
	if err != nil {
		a.dashError(w, r, fmt.Errorf("list workspaces: %w", err))
		return
	}
	a.render(w, r, http.StatusOK, "user_delete", &web.Page{Title: "Delete " + u.Username, Nav: "users",
		Body: &web.DeleteUser{Username: u.Username, Email: u.Email, Secrets: len(ss), Workspaces: len(wss)}})
}

// dashDeleteUser: POST /users/{user}/delete.
func (a *api) dashDeleteUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.dashAdminForm(w, r)
	if err == nil {
		err = a.removeUser(r.Context(), caller(r), u)
	}
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	a.redirectNotice(w, r, "/users", fmt.Sprintf("Deleted %s with their secrets and workspaces.", u.Username))
}

// dashUserSecrets: GET /users/{user}/secrets, one user's secrets read-only
// (admins and auditors; a member sees only their own, and another user
// does not exist for them).
func (a *api) dashUserSecrets(w http.ResponseWriter, r *http.Request) {
	u, err := a.resolveUser(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	ss, err := a.store.ListSecrets(r.Context(), u.ID)
	if err != nil {
		a.dashError(w, r, fmt.Errorf("list secrets: %w", err))
		return
	}
	body := &web.UserSecrets{Username: u.Username}
	for _, s := range ss {
		body.Rows = append(body.Rows, web.SecretRow{Name: s.Name, Description: s.Description,
			EnvName: s.EnvName, FilePath: s.FilePath, Enabled: s.Enabled, Workspaces: s.Workspaces, UpdatedAt: s.UpdatedAt})
	}
	a.render(w, r, http.StatusOK, "user_secrets", &web.Page{Title: "Secrets of " + u.Username, Nav: "users", Body: body})
}

// dashPasswordPage: GET /account/password.
func (a *api) dashPasswordPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "password", &web.Page{Title: "Change password", Nav: "password",
		Body: &web.PasswordForm{MinBytes: MinPasswordBytes}})
}

// dashChangePassword: POST /account/password with old_password, password
// and confirm. The caller's own session stays; their others end.
func (a *api) dashChangePassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	var err error
	if err = r.ParseForm(); err != nil {
		err = errorf(http.StatusBadRequest, "the form could not be read; reload the page and try again")
	}
	password := r.PostFormValue("password")
	if err == nil && password != r.PostFormValue("confirm") {
		err = &apiError{status: http.StatusBadRequest, body: ErrorResponse{Message: "the two new passwords differ",
			Validations: []Validation{{Field: "confirm", Detail: "does not match the new password"}}}}
	}
	if err == nil {
		err = a.changePassword(r, caller(r), r.PostFormValue("old_password"), password)
	}
	if err != nil {
		ae := a.explain(w, r, err)
		f := &web.PasswordForm{MinBytes: MinPasswordBytes, Message: ae.body.Message, Errors: map[string]string{}}
		for _, v := range ae.body.Validations {
			f.Errors[v.Field] = v.Detail
		}
		a.render(w, r, ae.status, "password", &web.Page{Title: "Change password", Nav: "password", Body: f})
		return
	}
	a.redirectNotice(w, r, "/account/secrets", "Your password was changed; your other sessions were signed out.")
}
