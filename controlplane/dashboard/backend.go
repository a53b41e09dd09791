package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// Backend is what the pages ask of the control plane: the REST API's own
// operations and its way of explaining a refusal. Each method behaves as
// the REST route it names does, with the same checks and audit records.
type Backend interface {
	// Session returns ctx carrying the user of login session token tok
	// (API tokens do not open the dashboard), or an error matching
	// ErrNoSession, which RefusedCookie can record.
	Session(ctx context.Context, tok string) (context.Context, error)
	// RefusedCookie records, in the audit log, that a session cookie
	// was refused with err (from Session).
	RefusedCookie(w http.ResponseWriter, r *http.Request, err error)
	// Caller is the signed-in user of r (zero before Page let it in).
	Caller(r *http.Request) store.User
	// Explain maps err to what the person is shown, as the REST API
	// would answer it (setting any header that goes with it, such as
	// Retry-After); an unknown error is logged and shown as a 500.
	Explain(w http.ResponseWriter, r *http.Request, err error) Problem
	// Audited wraps h so that its request leaves one audit record of
	// action; it goes inside Page, so the caller is known.
	Audited(action string, h http.HandlerFunc) http.HandlerFunc

	// LoginPage is the login page's body for this server's sign-in
	// methods, with login typed and msg shown.
	LoginPage(login, msg string) *web.Login
	// PasswordLoginOff is the refusal of a password sign-in when
	// password login is disabled, else nil.
	PasswordLoginOff() error
	// SignIn checks a password (POST /api/v2/users/login's rules: timing,
	// throttling) for a username, or for an e-mail address when email,
	// and opens a session, returning its token.
	SignIn(r *http.Request, login string, email bool, password string) (string, error)
	// SignOut ends r's session.
	SignOut(r *http.Request) error
	// ChangePassword changes u's password; u's other sessions end.
	ChangePassword(r *http.Request, u store.User, old, password string) error

	// Secret is userID's secret name (404 for another user's or none).
	Secret(ctx context.Context, userID, name string) (store.Secret, error)
	// CreateSecret creates a secret of userID.
	CreateSecret(ctx context.Context, userID string, s NewSecret) error
	// UpdateSecret changes userID's secret name; nil fields stay.
	UpdateSecret(ctx context.Context, userID, name string, c SecretChange) error
	// DeleteSecret deletes userID's secret name.
	DeleteSecret(ctx context.Context, userID, name string) error

	// MintToken creates an API token of owner and returns it with the
	// token itself, shown once.
	MintToken(r *http.Request, owner store.User, name, lifetime, scope string) (store.APIToken, string, error)
	// RevokeToken revokes owner's API token name.
	RevokeToken(r *http.Request, owner store.User, name string) error

	// Workspace resolves the {workspace} of r for the caller (404 for
	// one they may not see).
	Workspace(r *http.Request) (store.Workspace, error)
	// ManageableWorkspace is Workspace for a change: the owner's or an
	// admin's.
	ManageableWorkspace(r *http.Request) (store.Workspace, error)
	// AgentStatus is ws's agent state and last apply.
	AgentStatus(ctx context.Context, ws store.Workspace) (client.AgentStatus, error)
	// AgentTokenLifetime parses a rotation's lifetime field ("" is the
	// default); its error says what is wrong, in a phrase.
	AgentTokenLifetime(s string) (time.Duration, error)
	// RotateAgentToken gives ws a new agent token.
	RotateAgentToken(ctx context.Context, by store.User, ws store.Workspace, lifetime time.Duration) (client.RotatedAgentToken, error)
	// RemoveWorkspace deletes ws.
	RemoveWorkspace(ctx context.Context, by store.User, ws store.Workspace) error

	// User resolves the {user} of r for the caller (a member sees only
	// themselves).
	User(r *http.Request) (store.User, error)
	// AdminTarget resolves the {user} of r for an admin's change.
	AdminTarget(r *http.Request) (store.User, error)
	// Describe is u as the REST API shows it (role, status, login type).
	Describe(u store.User) client.User
	// ChangeRole sets u's role.
	ChangeRole(ctx context.Context, u store.User, role store.Role) (store.User, error)
	// SetSuspended suspends or activates u.
	SetSuspended(ctx context.Context, me, u store.User, suspend bool) (store.User, error)
	// CanRemove is the refusal of me deleting u, or nil.
	CanRemove(me, u store.User) error
	// RemoveUser deletes u with their secrets and workspaces.
	RemoveUser(ctx context.Context, me, u store.User) error

	// AuditFilter parses an audit listing's query, as GET /api/v2/audit
	// does.
	AuditFilter(q url.Values) (audit.Filter, error)
}

// Problem is a refusal as the person is shown it: the status, a summary,
// and details by form field.
type Problem struct {
	Status      int
	Message     string
	Validations []client.Validation
}

// Refusal is a request the dashboard itself refuses (a form it cannot
// read, a page the caller may not see); Backend.Explain shows it as it is.
type Refusal struct {
	Status      int
	Message     string
	Validations []client.Validation
}

func (e *Refusal) Error() string { return e.Message }

// NewSecret is a secret form's new secret.
type NewSecret struct {
	Name, Value, Description, EnvName, FilePath string
	// Enabled is nil for the default (enabled).
	Enabled    *bool
	Workspaces []string
}

// SecretChange is an edit form's change; nil fields stay as they are.
type SecretChange struct {
	Value, Description, EnvName, FilePath *string
	Enabled                               *bool
	Workspaces                            *[]string
}
