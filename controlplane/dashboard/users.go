package dashboard

import (
	"fmt"
	"net/http"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// Users: the list (admins and auditors), an admin's forms to change a
// role, suspend, activate and delete, one user's secrets read-only, and
// every user's own password form. Every change goes through the Backend,
// as the REST API's does.

var errNotAdminOrAuditor = refusef(http.StatusForbidden, "only admins and auditors may see other users")

// roleNames are the roles offered, in order.
var roleNames = []string{string(store.RoleAdmin), string(store.RoleMember), string(store.RoleAuditor)}

// users: GET /users.
func (d *Dashboard) users(w http.ResponseWriter, r *http.Request) {
	me := d.b.Caller(r)
	if !me.SeesEveryone() {
		d.Error(w, r, errNotAdminOrAuditor)
		return
	}
	us, err := d.cfg.Store.ListUsers(r.Context())
	if err != nil {
		d.Error(w, r, fmt.Errorf("list users: %w", err))
		return
	}
	body := &web.Users{Manage: me.IsAdmin(), Roles: roleNames}
	for _, u := range us {
		ur := d.b.Describe(u)
		body.Rows = append(body.Rows, web.UserRow{Username: u.Username, Email: u.Email, Role: ur.Role,
			Status: ur.Status, LoginType: ur.LoginType, CreatedAt: u.CreatedAt, Self: u.ID == me.ID})
	}
	d.Render(w, r, http.StatusOK, "users", &web.Page{Title: "Users", Nav: "users", Body: body})
}

// adminForm checks that the caller is an admin, resolves {user} and reads
// the (small, url-encoded) form.
func (d *Dashboard) adminForm(w http.ResponseWriter, r *http.Request) (store.User, error) {
	u, err := d.b.AdminTarget(r)
	if err != nil {
		return u, err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return u, formError()
	}
	return u, nil
}

// setRole: POST /users/{user}/role with role.
func (d *Dashboard) setRole(w http.ResponseWriter, r *http.Request) {
	u, err := d.adminForm(w, r)
	if err == nil {
		u, err = d.b.ChangeRole(r.Context(), u, store.Role(r.PostFormValue("role")))
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	d.redirectNotice(w, r, "/users", fmt.Sprintf("%s is now %s.", u.Username, store.RoleOf(u)))
}

// suspend: POST /users/{user}/suspend.
func (d *Dashboard) suspend(w http.ResponseWriter, r *http.Request) { d.setStatus(w, r, true) }

// activate: POST /users/{user}/activate.
func (d *Dashboard) activate(w http.ResponseWriter, r *http.Request) { d.setStatus(w, r, false) }

func (d *Dashboard) setStatus(w http.ResponseWriter, r *http.Request, suspend bool) {
	u, err := d.adminForm(w, r)
	if err == nil {
		u, err = d.b.SetSuspended(r.Context(), d.b.Caller(r), u, suspend)
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	notice := fmt.Sprintf("Activated %s: they can sign in again (their old sessions and API tokens stay ended).", u.Username)
	if suspend {
		notice = fmt.Sprintf("Suspended %s: their sessions and API tokens ended and their agents are disconnected.", u.Username)
	}
	d.redirectNotice(w, r, "/users", notice)
}

// confirmDeleteUser: GET /users/{user}/delete asks first, saying what goes
// with the user.
func (d *Dashboard) confirmDeleteUser(w http.ResponseWriter, r *http.Request) {
	u, err := d.b.AdminTarget(r)
	if err == nil {
		err = d.b.CanRemove(d.b.Caller(r), u)
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	ss, err := d.cfg.Store.ListSecrets(r.Context(), u.ID)
	if err != nil {
		d.Error(w, r, fmt.Errorf("list secrets: %w", err))
		return
	}
	wss, err := d.cfg.Store.ListWorkspaces(r.Context(), u.ID)
	if err != nil {
		d.Error(w, r, fmt.Errorf("list workspaces: %w", err))
		return
	}
	d.Render(w, r, http.StatusOK, "user_delete", &web.Page{Title: "Delete " + u.Username, Nav: "users",
		Body: &web.DeleteUser{Username: u.Username, Email: u.Email, Secrets: len(ss), Workspaces: len(wss)}})
}

// deleteUser: POST /users/{user}/delete.
func (d *Dashboard) deleteUser(w http.ResponseWriter, r *http.Request) {
	u, err := d.adminForm(w, r)
	if err == nil {
		err = d.b.RemoveUser(r.Context(), d.b.Caller(r), u)
	}
	if err != nil {
		d.Error(w, r, err)
		return
	}
	d.redirectNotice(w, r, "/users", fmt.Sprintf("Deleted %s with their secrets and workspaces.", u.Username))
}

// userSecrets: GET /users/{user}/secrets, one user's secrets read-only
// (admins and auditors; a member sees only their own, and another user
// does not exist for them).
func (d *Dashboard) userSecrets(w http.ResponseWriter, r *http.Request) {
	u, err := d.b.User(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	ss, err := d.cfg.Store.ListSecrets(r.Context(), u.ID)
	if err != nil {
		d.Error(w, r, fmt.Errorf("list secrets: %w", err))
		return
	}
	body := &web.UserSecrets{Username: u.Username, Rows: secretRows(ss)}
	d.Render(w, r, http.StatusOK, "user_secrets", &web.Page{Title: "Secrets of " + u.Username, Nav: "users", Body: body})
}

// passwordPage: GET /account/password.
func (d *Dashboard) passwordPage(w http.ResponseWriter, r *http.Request) {
	d.Render(w, r, http.StatusOK, "password", &web.Page{Title: "Change password", Nav: "password",
		Body: &web.PasswordForm{MinBytes: identity.MinPasswordBytes}})
}

// changePassword: POST /account/password with old_password, password and
// confirm. The caller's own session stays; their others end.
func (d *Dashboard) changePassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	var err error
	if err = r.ParseForm(); err != nil {
		err = formError()
	}
	password := r.PostFormValue("password")
	if err == nil && password != r.PostFormValue("confirm") {
		err = &Refusal{Status: http.StatusBadRequest, Message: "the two new passwords differ",
			Validations: []client.Validation{{Field: "confirm", Detail: "does not match the new password"}}}
	}
	if err == nil {
		err = d.b.ChangePassword(r, d.b.Caller(r), r.PostFormValue("old_password"), password)
	}
	if err != nil {
		p := d.b.Explain(w, r, err)
		f := &web.PasswordForm{MinBytes: identity.MinPasswordBytes, Message: p.Message, Errors: fieldErrors(p)}
		d.Render(w, r, p.Status, "password", &web.Page{Title: "Change password", Nav: "password", Body: f})
		return
	}
	d.redirectNotice(w, r, "/account/secrets", "Your password was changed; your other sessions were signed out.")
}
