package dashboard

import (
	"net/http"
	"strings"

	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/web"
)

// maxFormBytes bounds a form without a secret value (login, delete).
const maxFormBytes = 64 << 10

var errLoginForm = refusef(http.StatusBadRequest, "Enter your username or e-mail and your password.")

// loginPage: GET /login. A person already signed in goes to their secrets.
func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if _, err := d.b.Session(r.Context(), c.Value); err == nil {
			http.Redirect(w, r, "/account/secrets", http.StatusSeeOther)
			return
		}
	}
	body := d.b.LoginPage("", "")
	body.Next = localPath(r.URL.Query().Get("next"))
	d.Render(w, r, http.StatusOK, "login", &web.Page{Title: "Log in", Body: body})
}

// login: POST /login with login (a username or an e-mail address) and
// password. The password is checked as the REST login checks it, so the
// same rules (timing, throttling) apply; a refusal is shown on the page
// with the status the REST API would answer.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	login, password := "", ""
	err := r.ParseForm()
	if off := d.b.PasswordLoginOff(); off != nil {
		err = off
	}
	if err == nil {
		login, password = strings.TrimSpace(r.PostFormValue("login")), r.PostFormValue("password")
		if login == "" || password == "" || len(password) > identity.MaxPasswordBytes {
			err = errLoginForm
		}
	}
	var tok string
	if err == nil {
		// Usernames never hold '@'.
		tok, err = d.b.SignIn(r, login, strings.Contains(login, "@"), password)
	}
	if err != nil {
		p := d.b.Explain(w, r, err)
		msg := p.Message
		if s := w.Header().Get("Retry-After"); s != "" {
			msg += " (in " + s + " seconds)." // a throttled login: 429 with Retry-After
		}
		body := d.b.LoginPage(login, msg)
		body.Next = localPath(r.PostFormValue("next"))
		d.Render(w, r, p.Status, "login", &web.Page{Title: "Log in", Body: body})
		return
	}
	d.SignedIn(w, r, tok)
}

// logout: POST /logout ends the session on the server and deletes the
// cookie.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if err := d.b.SignOut(r); err != nil {
		d.Error(w, r, err)
		return
	}
	http.SetCookie(w, d.Cookie(r, SessionCookie, "", -1))
	d.redirectNotice(w, r, "/login", "You are logged out.")
}
