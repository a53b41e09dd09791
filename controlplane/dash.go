package controlplane

import (
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/web"
)

// The dashboard: server-rendered pages for people, beside the REST API.
//
// A dashboard session is an ordinary session (the same store rows as a REST
// login) whose token travels in the cookie named dashCookie: HttpOnly,
// SameSite=Lax, Secure when the request came over TLS. The cookie is read
// only by dashPage, never by the REST API's authed, so the API cannot be
// driven cross-site by a browser that happens to hold the cookie. Every
// state-changing dashboard request passes net/http's CrossOriginProtection
// (Sec-Fetch-Site, else Origin against Host). Values travel only in POST
// bodies and are never rendered.

const (
	dashCookie   = "courier_session"
	noticeCookie = "courier_notice"
)

// dashRoutes registers the dashboard's pages on mux.
func (a *api) dashRoutes(mux *http.ServeMux) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(a.dashCrossOrigin))
	page := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			web.SetHeaders(w.Header()) // on redirects and refusals too
			h(w, r)
		})))
	}

	mux.Handle("GET /static/", web.Static())
	page("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/account/secrets", http.StatusSeeOther)
	})
	page("GET /login", a.dashLoginPage)
	page("POST /login", a.audited(actLogin, a.dashLogin))
	page("POST /logout", a.dashPage(a.audited(actLogout, a.dashLogout)))
	page("GET /login/oidc", a.oidcStart)
	page("GET /api/v2/users/oidc/callback", a.audited(actLogin, a.oidcCallback)) // oidcCallbackPath

	page("GET /account/secrets", a.dashPage(a.dashSecrets))
	page("GET /account/secrets/new", a.dashPage(a.dashNewSecret))
	page("POST /account/secrets/new", a.dashPage(a.audited(actSecretCreate, a.dashCreateSecret)))
	page("GET /account/secrets/{name}/edit", a.dashPage(a.dashEditSecret))
	page("POST /account/secrets/{name}/edit", a.dashPage(a.audited(actSecretUpdate, a.dashUpdateSecret)))
	page("POST /account/secrets/{name}/enabled", a.dashPage(a.audited(actSecretUpdate, a.dashToggleSecret)))
	page("GET /account/secrets/{name}/delete", a.dashPage(a.dashConfirmDelete))
	page("POST /account/secrets/{name}/delete", a.dashPage(a.audited(actSecretDelete, a.dashDeleteSecret)))

	// Personal API tokens (issue 19 part 2; dash_tokens.go).
	page("GET /account/tokens", a.dashPage(a.dashTokens))
	page("POST /account/tokens/new", a.dashPage(a.audited(actTokenCreate, a.dashCreateToken)))
	page("GET /account/tokens/{name}/revoke", a.dashPage(a.dashConfirmRevoke))
	page("POST /account/tokens/{name}/revoke", a.dashPage(a.audited(actTokenRevoke, a.dashRevokeToken)))

	page("GET /workspaces", a.dashPage(a.dashWorkspaces))
	page("GET /workspaces/{workspace}", a.dashPage(a.dashWorkspace))
	page("POST /workspaces/{workspace}/agent-token", a.dashPage(a.audited(actAgentTokenRot, a.dashRotateAgentToken)))
	page("GET /workspaces/{workspace}/delete", a.dashPage(a.dashConfirmDeleteWorkspace))
	page("POST /workspaces/{workspace}/delete", a.dashPage(a.audited(actWorkspaceDel, a.dashDeleteWorkspace)))

	// Users (dash_users.go).
	page("GET /users", a.dashPage(a.dashUsers))
	page("POST /users/{user}/role", a.dashPage(a.audited(actUserRole, a.dashSetRole)))
	page("POST /users/{user}/suspend", a.dashPage(a.audited(actUserSuspend, a.dashSuspend)))
	page("POST /users/{user}/activate", a.dashPage(a.audited(actUserActivate, a.dashActivate)))
	page("GET /users/{user}/delete", a.dashPage(a.dashConfirmDeleteUser))
	page("POST /users/{user}/delete", a.dashPage(a.audited(actUserDelete, a.dashDeleteUser)))
	page("GET /users/{user}/secrets", a.dashPage(a.audited(actSecretList, a.dashUserSecrets)))
	// The audit log (issue 20; dash_audit.go).
	page("GET /audit", a.dashPage(a.dashAudit))
	page("GET /account/activity", a.dashPage(a.dashActivity))
	page("GET /account/password", a.dashPage(a.dashPasswordPage))
	page("POST /account/password", a.dashPage(a.audited(actUserPassword, a.dashChangePassword)))
}

// dashPage wraps h so it runs only with a valid dashboard session cookie;
// anyone else is sent to the login page (and a stale cookie is cleared).
func (a *api) dashPage(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var tok string
		if c, err := r.Cookie(dashCookie); err == nil {
			tok = c.Value
		}
		ctx, err := a.withSession(r.Context(), tok)
		if err != nil {
			if !errors.Is(err, errUnauthenticated) {
				a.dashError(w, r, err)
				return
			}
			if tok != "" {
				a.refusedCredential(w, r, err, "cookie")
				http.SetCookie(w, a.cookie(r, dashCookie, "", -1))
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(ctx))
	}
}

// cookie is a dashboard cookie: HttpOnly, SameSite=Lax, Path=/, Secure
// when r came over TLS. maxAge < 0 deletes it.
func (a *api) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// render writes a dashboard page for the caller (if logged in). A template
// failure is a bug: logged, and answered with a bare 500.
func (a *api) render(w http.ResponseWriter, r *http.Request, status int, name string, p *web.Page) {
	p.User = caller(r).Username
	p.ShowUsers = canSeeEveryone(caller(r))
	if c, err := r.Cookie(noticeCookie); err == nil && p.Notice == "" {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			p.Notice = string(b)
		}
		http.SetCookie(w, a.cookie(r, noticeCookie, "", -1))
	}
	if err := a.web.Render(w, status, name, p); err != nil {
		a.log.Error("render dashboard page", routeField(r), zap.String("page", name), errField(err))
		http.Error(w, "internal server error", http.StatusInternalServerError)
	}
}

// redirectNotice answers a successful POST with a redirect to a page that
// will show notice once (post/redirect/get).
func (a *api) redirectNotice(w http.ResponseWriter, r *http.Request, to, notice string) {
	http.SetCookie(w, a.cookie(r, noticeCookie, base64.RawURLEncoding.EncodeToString([]byte(notice)), time.Minute))
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// dashError renders err as an error page, with the status and message the
// REST API would give it.
func (a *api) dashError(w http.ResponseWriter, r *http.Request, err error) {
	ae := a.explain(w, r, err)
	a.render(w, r, ae.status, "problem", &web.Page{Title: http.StatusText(ae.status),
		Body: &web.Problem{Status: ae.status, Message: ae.body.Message}})
}

// dashCrossOrigin answers a state-changing request that came from another
// origin (cross-site request forgery, or a misconfigured proxy).
func (a *api) dashCrossOrigin(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusForbidden, "problem", &web.Page{Title: "Refused",
		Body: &web.Problem{Status: http.StatusForbidden,
			Message: "This request came from another site, so it was refused. Open the page on this site and submit it again."}})
}
