package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// maxFormBytes bounds a form without a secret value (login, delete).
const maxFormBytes = 64 << 10

// dashLoginPage: GET /login. A person already logged in goes to their
// secrets.
func (a *api) dashLoginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(dashCookie); err == nil {
		if _, err := a.withSession(r.Context(), c.Value); err == nil {
			http.Redirect(w, r, "/account/secrets", http.StatusSeeOther)
			return
		}
	}
	a.render(w, r, http.StatusOK, "login", &web.Page{Title: "Log in", Body: a.loginPage("", "")})
}

var errDashLoginForm = errorf(http.StatusBadRequest, "Enter your username or e-mail and your password.")

// dashLogin: POST /login with login (a username or an e-mail address) and
// password. The password is checked by authenticate, like the REST login,
// so the same rules (timing, throttling) apply; a refusal is shown on the
// page with the status the REST API would answer.
func (a *api) dashLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	login, password := "", ""
	err := r.ParseForm()
	if a.cfg.DisablePasswordLogin {
		err = a.errPasswordDisabled()
	}
	if err == nil {
		login, password = strings.TrimSpace(r.PostFormValue("login")), r.PostFormValue("password")
		if login == "" || password == "" || len(password) > MaxPasswordBytes {
			err = errDashLoginForm
		}
	}
	var u store.User
	if err == nil {
		username, email := login, ""
		if strings.Contains(login, "@") { // usernames never hold '@'
			username, email = "", login
		}
		u, err = a.authenticate(r, username, email, password)
	}
	var tok string
	if err == nil {
		tok, err = a.startSession(r.Context(), u.ID)
	}
	if err != nil {
		ae := a.explain(w, r, err)
		msg := ae.body.Message
		if s := w.Header().Get("Retry-After"); s != "" {
			msg += " (in " + s + " seconds)." // a throttled login: 429 with Retry-After
		}
		a.render(w, r, ae.status, "login", &web.Page{Title: "Log in", Body: a.loginPage(login, msg)})
		return
	}
	http.SetCookie(w, a.cookie(r, dashCookie, tok, a.cfg.SessionLifetime))
	http.Redirect(w, r, "/account/secrets", http.StatusSeeOther)
}

// dashLogout: POST /logout ends the session on the server and deletes the
// cookie.
func (a *api) dashLogout(w http.ResponseWriter, r *http.Request) {
	hash, _ := r.Context().Value(ctxTokenHash).([]byte)
	noteTarget(r.Context(), userTarget(caller(r)))
	if err := a.store.DeleteSession(audit.InTx(r.Context()), hash); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.dashError(w, r, fmt.Errorf("delete session: %w", err))
		return
	}
	http.SetCookie(w, a.cookie(r, dashCookie, "", -1))
	a.redirectNotice(w, r, "/login", "You are logged out.")
}
