// Package dashboard serves the control plane's web pages for people: the
// sign-in page, each user's secrets, API tokens, workspaces, activity and
// password, and the admin's users and audit log. It renders the templates
// of package web and changes nothing itself: every change goes through the
// REST API's own operations (Backend), so the rules, caps, audit records
// and refusals of a page and of the API cannot differ.
//
// A dashboard session is an ordinary login session (the same store rows as
// a REST login) whose token travels in the cookie SessionCookie: HttpOnly,
// SameSite=Lax, Secure when the request came over TLS. Only the dashboard
// reads that cookie, never the REST API, so the API cannot be driven
// cross-site by a browser that happens to hold it. Every state-changing
// request passes net/http's CrossOriginProtection (Sec-Fetch-Site, else
// Origin against Host). Values travel only in POST bodies and are never
// rendered.
package dashboard

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
	"github.com/courierhq/courier/inject"
)

const (
	// SessionCookie carries the dashboard's session token.
	SessionCookie = "courier_session"
	// NoticeCookie carries, for one page view after a redirect, the
	// notice that says what a form did.
	NoticeCookie = "courier_notice"
)

// ErrNoSession is matched (errors.Is) by Backend.Session's error when the
// token opens no session: missing, unknown, expired, or its user barred.
var ErrNoSession = errors.New("dashboard: no valid session")

// Config is what a Dashboard is given. Backend, Store, Pages, Logs and Log
// are required.
type Config struct {
	Backend Backend
	// Store serves the pages' reads (lists of secrets, tokens,
	// workspaces, users and audit records); changes go through Backend.
	Store store.Store
	Pages *web.Renderer
	Logs  StartupLogs
	Log   *zap.Logger
	// Now is the clock (token expiry on the pages). Default time.Now.
	Now func() time.Time
	// Limits are the per-user caps the secrets pages show the use of.
	Limits inject.Limits
	// MaxBodyBytes bounds a secret form, as it bounds a REST request.
	MaxBodyBytes int64
	// MaxTokenLifetime bounds a new API token's lifetime field.
	MaxTokenLifetime time.Duration
	// SessionLifetime is the session cookie's lifetime.
	SessionLifetime time.Duration
}

// Validate reports the first missing dependency of c.
func (c Config) Validate() error {
	switch {
	case c.Backend == nil:
		return errors.New("dashboard: Config.Backend is required")
	case c.Store == nil:
		return errors.New("dashboard: Config.Store is required")
	case c.Pages == nil:
		return errors.New("dashboard: Config.Pages is required")
	case c.Logs == nil:
		return errors.New("dashboard: Config.Logs is required")
	case c.Log == nil:
		return errors.New("dashboard: Config.Log is required")
	case c.MaxBodyBytes <= 0:
		return errors.New("dashboard: Config.MaxBodyBytes must be positive")
	}
	return nil
}

// StartupLogs reads a workspace's startup logs as its page shows them.
type StartupLogs interface {
	Dash(ctx context.Context, ws store.Workspace) (web.StartupLogs, error)
}

// Dashboard serves the pages.
type Dashboard struct {
	cfg Config
	b   Backend
	log *zap.Logger
}

// New returns the dashboard of cfg.
func New(cfg Config) (*Dashboard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dashboard{cfg: cfg, b: cfg.Backend, log: cfg.Log}, nil
}

// Mux is where the pages are registered (an *http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Routes registers the dashboard's pages on mux.
func (d *Dashboard) Routes(mux Mux) {
	au := d.b.Audited
	page := func(pattern string, h http.HandlerFunc) { d.Handle(mux, pattern, h) }
	mux.Handle("GET /static/", web.Static())
	page("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/account/secrets", http.StatusSeeOther)
	})
	page("GET /login", d.loginPage)
	page("POST /login", au(audit.ActLogin, d.login))
	page("POST /logout", d.Page(au(audit.ActLogout, d.logout)))

	page("GET /account/secrets", d.Page(d.secrets))
	page("GET /account/secrets/new", d.Page(d.newSecret))
	page("POST /account/secrets/new", d.Page(au(audit.ActSecretCreate, d.createSecret)))
	page("GET /account/secrets/{name}/edit", d.Page(d.editSecret))
	page("POST /account/secrets/{name}/edit", d.Page(au(audit.ActSecretUpdate, d.updateSecret)))
	page("POST /account/secrets/{name}/enabled", d.Page(au(audit.ActSecretUpdate, d.toggleSecret)))
	page("GET /account/secrets/{name}/delete", d.Page(d.confirmDeleteSecret))
	page("POST /account/secrets/{name}/delete", d.Page(au(audit.ActSecretDelete, d.deleteSecret)))

	page("GET /account/tokens", d.Page(d.tokens))
	page("POST /account/tokens/new", d.Page(au(audit.ActTokenCreate, d.createToken)))
	page("GET /account/tokens/{name}/revoke", d.Page(d.confirmRevoke))
	page("POST /account/tokens/{name}/revoke", d.Page(au(audit.ActTokenRevoke, d.revokeToken)))

	page("GET /workspaces", d.Page(d.workspaces))
	page("GET /workspaces/{workspace}", d.Page(d.workspace))
	page("POST /workspaces/{workspace}/agent-token", d.Page(au(audit.ActAgentTokenRotate, d.rotateAgentToken)))
	page("GET /workspaces/{workspace}/delete", d.Page(d.confirmDeleteWorkspace))
	page("POST /workspaces/{workspace}/delete", d.Page(au(audit.ActWorkspaceDelete, d.deleteWorkspace)))

	page("GET /users", d.Page(d.users))
	page("POST /users/{user}/role", d.Page(au(audit.ActUserRole, d.setRole)))
	page("POST /users/{user}/suspend", d.Page(au(audit.ActUserSuspend, d.suspend)))
	page("POST /users/{user}/activate", d.Page(au(audit.ActUserActivate, d.activate)))
	page("GET /users/{user}/delete", d.Page(d.confirmDeleteUser))
	page("POST /users/{user}/delete", d.Page(au(audit.ActUserDelete, d.deleteUser)))
	page("GET /users/{user}/secrets", d.Page(au(audit.ActSecretList, d.userSecrets)))

	page("GET /audit", d.Page(d.audit))
	page("GET /account/activity", d.Page(d.activity))
	page("GET /account/password", d.Page(d.passwordPage))
	page("POST /account/password", d.Page(au(audit.ActUserPassword, d.changePassword)))
}

// Handle registers h on mux as a dashboard page: with the pages' security
// headers on every answer (redirects and refusals too) and behind the
// cross-origin check. The control plane's single sign-on steps use it.
func (d *Dashboard) Handle(mux Mux, pattern string, h http.HandlerFunc) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(d.crossOrigin))
	mux.Handle(pattern, cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.SetHeaders(w.Header())
		h(w, r)
	})))
}

// Page wraps h so it runs only with a valid session cookie; anyone else is
// sent to the login page (and a stale cookie is cleared and its refusal
// recorded).
func (d *Dashboard) Page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var tok string
		if c, err := r.Cookie(SessionCookie); err == nil {
			tok = c.Value
		}
		ctx, err := d.b.Session(r.Context(), tok)
		if err != nil {
			if !errors.Is(err, ErrNoSession) {
				d.Error(w, r, err)
				return
			}
			to := "/login"
			if r.Method == http.MethodGet {
				// Back to this page once signed in.
				to += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			if tok != "" {
				d.b.RefusedCookie(w, r, err)
				http.SetCookie(w, d.Cookie(r, SessionCookie, "", -1))
				d.redirectNotice(w, r, to, "Your session has ended: sign in again to go on.")
				return
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(ctx))
	}
}

// Cookie is a dashboard cookie: HttpOnly, SameSite=Lax, Path=/, Secure
// when r came over TLS. maxAge < 0 deletes it; 0 makes it last as long as
// the browser's session.
func (d *Dashboard) Cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
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

// SignedIn answers a sign-in that opened session token tok: the session
// cookie is set and the browser goes to its secrets.
func (d *Dashboard) SignedIn(w http.ResponseWriter, r *http.Request, tok string) {
	http.SetCookie(w, d.Cookie(r, SessionCookie, tok, d.cfg.SessionLifetime))
	to := "/account/secrets"
	if next := localPath(r.PostFormValue("next")); next != "" {
		to = next
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// localPath returns p when it is a path on this site to return to after
// signing in ("/workspaces/dev?x=1"), else "": never another site
// ("//evil.example", "https://…", "/\\evil"), nor the sign-in pages.
func localPath(p string) string {
	if p == "" || len(p) > 2048 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') ||
		strings.IndexFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Path == "/login" || strings.HasPrefix(u.Path, "/login/") || u.Path == "/logout" {
		return ""
	}
	return p
}

// Render writes page name for the caller (if signed in), with the notice
// a redirect left, if any. A template failure is a bug: logged, and
// answered with a bare 500.
func (d *Dashboard) Render(w http.ResponseWriter, r *http.Request, status int, name string, p *web.Page) {
	me := d.b.Caller(r)
	p.User = me.Username
	p.ShowUsers = me.SeesEveryone()
	// A notice is for the page a redirect leads to, always a GET: a
	// form's answer (a refusal rendered in place) neither shows nor
	// spends it, so a stale "Created …" never sits beside "Nothing was
	// saved".
	if c, err := r.Cookie(NoticeCookie); err == nil && p.Notice == "" && r.Method == http.MethodGet {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			p.Notice = string(b)
		}
		http.SetCookie(w, d.Cookie(r, NoticeCookie, "", -1))
	}
	if err := d.cfg.Pages.Render(w, status, name, p); err != nil {
		d.log.Error("render dashboard page", zap.String("route", r.Pattern), zap.String("page", name), zap.Error(err))
		http.Error(w, "internal server error", http.StatusInternalServerError)
	}
}

// redirectNotice answers a successful POST with a redirect to a page that
// will show notice once (post/redirect/get).
func (d *Dashboard) redirectNotice(w http.ResponseWriter, r *http.Request, to, notice string) {
	http.SetCookie(w, d.Cookie(r, NoticeCookie, base64.RawURLEncoding.EncodeToString([]byte(notice)), time.Minute))
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// Error renders err as an error page, with the status and message the
// REST API would give it.
func (d *Dashboard) Error(w http.ResponseWriter, r *http.Request, err error) {
	p := d.b.Explain(w, r, err)
	d.Render(w, r, p.Status, "problem", &web.Page{Title: http.StatusText(p.Status),
		Body: &web.Problem{Status: p.Status, Message: p.Message}})
}

// crossOrigin answers a state-changing request that came from another
// origin (cross-site request forgery, or a misconfigured proxy).
func (d *Dashboard) crossOrigin(w http.ResponseWriter, r *http.Request) {
	d.Render(w, r, http.StatusForbidden, "problem", &web.Page{Title: "Refused",
		Body: &web.Problem{Status: http.StatusForbidden,
			Message: "This request came from another site, so it was refused. Open the page on this site and submit it again."}})
}

// fieldErrors folds p's validations into one message per field.
func fieldErrors(p Problem) map[string]string {
	m := map[string]string{}
	for _, v := range p.Validations {
		if prev := m[v.Field]; prev != "" {
			m[v.Field] = prev + "; " + v.Detail
		} else {
			m[v.Field] = v.Detail
		}
	}
	return m
}

// formError is the refusal of a form that could not be read.
func formError() *Refusal {
	return refusef(http.StatusBadRequest, "the form could not be read; reload the page and try again")
}

// refusef is a refusal with a formatted message.
func refusef(status int, format string, args ...any) *Refusal {
	return &Refusal{Status: status, Message: fmt.Sprintf(format, args...)}
}
