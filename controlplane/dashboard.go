package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/dashboard"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// newDashboard wires the dashboard (package dashboard) to a's operations.
func (a *api) newDashboard() (*dashboard.Dashboard, error) {
	return dashboard.New(dashboard.Config{Backend: dashBackend{a}, Store: a.store, Pages: a.web, Logs: a.logs,
		Log: a.log, Now: a.cfg.now, Limits: a.cfg.Limits, MaxBodyBytes: a.cfg.MaxBodyBytes,
		MaxTokenLifetime: a.cfg.MaxTokenLifetime, SessionLifetime: a.cfg.SessionLifetime})
}

// dashRoutes registers the dashboard's pages and single sign-on's browser
// steps on mux.
func (a *api) dashRoutes(mux *http.ServeMux) {
	a.dash.Routes(mux)
	a.dash.Handle(mux, "GET /login/oidc", a.oidcStart)
	a.dash.Handle(mux, "GET "+oidcCallbackPath, a.audited(actLogin, a.oidcCallback))
}

// dashBackend is dashboard.Backend over the REST API's own operations.
type dashBackend struct{ a *api }

var _ dashboard.Backend = dashBackend{}

func (b dashBackend) Session(ctx context.Context, tok string) (context.Context, error) {
	ctx, err := b.a.withSession(ctx, tok)
	if errors.Is(err, errUnauthenticated) {
		// Both: the dashboard matches the first, the audit's refusal
		// record reads why from the second.
		return nil, errors.Join(dashboard.ErrNoSession, err)
	}
	return ctx, err
}

func (b dashBackend) RefusedCookie(w http.ResponseWriter, r *http.Request, err error) {
	b.a.refusedCredential(w, r, err, "cookie")
}

func (b dashBackend) Caller(r *http.Request) store.User { return caller(r) }

func (b dashBackend) Explain(w http.ResponseWriter, r *http.Request, err error) dashboard.Problem {
	ae := b.a.explain(w, r, err)
	return dashboard.Problem{Status: ae.status, Message: ae.body.Message, Validations: ae.body.Validations}
}

func (b dashBackend) Audited(action string, h http.HandlerFunc) http.HandlerFunc {
	return b.a.audited(action, h)
}

func (b dashBackend) LoginPage(login, msg string) *web.Login { return b.a.loginPage(login, msg) }

func (b dashBackend) PasswordLoginOff() error {
	if b.a.cfg.DisablePasswordLogin {
		return b.a.errPasswordDisabled()
	}
	return nil
}

func (b dashBackend) SignIn(r *http.Request, login string, email bool, password string) (string, error) {
	username, address := login, ""
	if email {
		username, address = "", login
	}
	u, err := b.a.authenticate(r, username, address, password)
	if err != nil {
		return "", err
	}
	return b.a.startSession(r.Context(), u.ID)
}

func (b dashBackend) SignOut(r *http.Request) error {
	hash, _ := r.Context().Value(ctxTokenHash).([]byte)
	noteTarget(r.Context(), userTarget(caller(r)))
	if err := b.a.store.DeleteSession(audit.InTx(r.Context()), hash); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (b dashBackend) ChangePassword(r *http.Request, u store.User, old, password string) error {
	return b.a.changePassword(r, u, old, password)
}

func (b dashBackend) Secret(ctx context.Context, userID, name string) (store.Secret, error) {
	s, err := b.a.store.GetSecret(ctx, userID, name)
	return s, secretNotFound(err, name)
}

func (b dashBackend) CreateSecret(ctx context.Context, userID string, s dashboard.NewSecret) error {
	_, err := b.a.createOne(ctx, userID, createSecretRequest{Name: s.Name, Value: s.Value, Description: s.Description,
		EnvName: s.EnvName, FilePath: s.FilePath, Enabled: s.Enabled, Workspaces: s.Workspaces})
	return err
}

func (b dashBackend) UpdateSecret(ctx context.Context, userID, name string, c dashboard.SecretChange) error {
	_, err := b.a.updateOne(ctx, userID, name, updateSecretRequest{Value: c.Value, Description: c.Description,
		EnvName: c.EnvName, FilePath: c.FilePath, Enabled: c.Enabled, Workspaces: c.Workspaces})
	return err
}

func (b dashBackend) DeleteSecret(ctx context.Context, userID, name string) error {
	return secretNotFound(b.a.store.DeleteSecret(audit.InTx(ctx), userID, name), name)
}

func (b dashBackend) MintToken(r *http.Request, owner store.User, name, lifetime, scope string) (store.APIToken, string, error) {
	return b.a.mintAPIToken(r.Context(), r, owner, createTokenRequest{Name: name, Lifetime: lifetime, Scope: scope})
}

func (b dashBackend) RevokeToken(r *http.Request, owner store.User, name string) error {
	return b.a.revokeAPIToken(r, owner, name)
}

func (b dashBackend) Workspace(r *http.Request) (store.Workspace, error) {
	return b.a.resolveWorkspace(r)
}

func (b dashBackend) ManageableWorkspace(r *http.Request) (store.Workspace, error) {
	return b.a.manageableWorkspace(r)
}

func (b dashBackend) AgentStatus(ctx context.Context, ws store.Workspace) (client.AgentStatus, error) {
	return b.a.agentStatus(ctx, ws)
}

func (b dashBackend) AgentTokenLifetime(s string) (time.Duration, error) {
	d, err := b.a.agentTokenLifetime(s)
	var ae *apiError
	if errors.As(err, &ae) && len(ae.body.Validations) > 0 {
		return d, errors.New(ae.body.Validations[0].Detail)
	}
	return d, err
}

func (b dashBackend) RotateAgentToken(ctx context.Context, by store.User, ws store.Workspace, lifetime time.Duration) (client.RotatedAgentToken, error) {
	return b.a.rotateToken(ctx, by, ws, lifetime)
}

func (b dashBackend) RemoveWorkspace(ctx context.Context, by store.User, ws store.Workspace) error {
	return b.a.removeWorkspace(ctx, by, ws)
}

func (b dashBackend) User(r *http.Request) (store.User, error)        { return b.a.resolveUser(r) }
func (b dashBackend) AdminTarget(r *http.Request) (store.User, error) { return b.a.adminTarget(r) }
func (b dashBackend) Describe(u store.User) client.User               { return userResponse(u) }

func (b dashBackend) ChangeRole(ctx context.Context, u store.User, role store.Role) (store.User, error) {
	return b.a.changeRole(ctx, u, role)
}

func (b dashBackend) SetSuspended(ctx context.Context, me, u store.User, suspend bool) (store.User, error) {
	return b.a.setSuspended(ctx, me, u, suspend)
}

func (b dashBackend) CanRemove(me, u store.User) error {
	if u.ID == me.ID {
		return errSelfDelete
	}
	return nil
}

func (b dashBackend) RemoveUser(ctx context.Context, me, u store.User) error {
	return b.a.removeUser(ctx, me, u)
}

func (b dashBackend) AuditFilter(q url.Values) (audit.Filter, error) { return auditFilter(q) }
