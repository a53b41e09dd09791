package controlplane

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/dashboard"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/identity/oidc"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/startlogs"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// Sealer encrypts secret values at rest (controlplane/seal implements it).
// ad binds a sealed value to its owner and name, so a stored value copied to
// another row does not open.
type Sealer interface {
	Seal(plain, ad []byte) ([]byte, error)
	Open(stored, ad []byte) ([]byte, error)
	Encrypted() bool
}

// agentServer is the agents' websocket endpoint (agentapi.Server): an
// http.Handler for proto.ConnectPath that also dials agents for SSH.
type agentServer interface {
	http.Handler
	agentDialer
	Connected() int
	// StatusBacklog reports the agents' status changes waiting for the
	// store, and those dropped since the start.
	StatusBacklog() (pending int, dropped uint64)
	// RecordConnections records every agent it holds as connected again.
	RecordConnections(ctx context.Context) error
	// ShedOne asks one agent to reconnect (rebalancing); false if none.
	ShedOne() bool
	// WatchSecrets tells connected agents of the changes sub delivers,
	// until ctx ends.
	WatchSecrets(ctx context.Context, sub notify.Subscription) error
	Close() error
}

// agentDialer opens an SSH stream to a workspace's connected agent
// (agentapi.Server implements it).
type agentDialer interface {
	Dial(ctx context.Context, workspaceID string, peer proto.SSHPeer) (net.Conn, error)
}

// api is the REST API: every route but the agents' websocket endpoint. It
// holds no goroutines of its own; the SSH proxy runs on request goroutines.
type api struct {
	cfg    Config
	log    *zap.Logger
	store  store.Store
	sealer Sealer
	agents agentDialer
	// base is cancelled at shutdown; SSH proxies (hijacked, so not drained by
	// http.Server.Shutdown) end when it is.
	base context.Context
	// metrics counts proxied SSH connections.
	metrics *metrics

	web  *web.Renderer        // the dashboard's templates
	dash *dashboard.Dashboard // the dashboard's pages (dashboard.go)
	sso  *oidc.RP             // single sign-on's relying party; nil when off
	// accounts turns single sign-on identities into users.
	accounts *identity.SSOAccounts

	// uses coalesces the last use of API tokens (see noteTokenUse); the
	// Server runs and closes it.
	uses *identity.UseRecorder
	// starts limits the unauthenticated sign-in starts per client
	// address (see limitSignInStart).
	starts *identity.StartLimiter

	dummyOnce sync.Once
	dummy     []byte // see dummyHash

	failedLogins atomic.Uint64 // see pruneLoginCounters

	// dbDown is the kind of database episode under way (dbUp, dbUnreachable
	// or dbFull; see unavailable), so an outage is logged once, not once
	// per request.
	dbDown atomic.Int32

	sshLive sshProxies // live SSH proxies, re-checked on notifications

	logs  *startlogs.Logs // startup logs (workspacelogs.go)
	audit *auditor        // the audit log's batcher (auditing.go); nil: not recorded
}

// routes registers every REST route on mux. Patterns use Go's ServeMux
// syntax; the pattern, not the raw path, labels metrics and log lines.
func (a *api) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)

	mux.HandleFunc("POST /api/v2/users/first", a.audited(actUserCreate, a.createFirstUser))
	mux.HandleFunc("POST /api/v2/users/login", a.audited(actLogin, a.login))
	mux.HandleFunc("POST /api/v2/users/logout", a.authed(a.audited(actLogout, a.logout)))
	mux.HandleFunc("POST /api/v2/users", a.authed(a.audited(actUserCreate, a.createUser)))
	mux.HandleFunc("GET /api/v2/users", a.authed(a.listUsers))
	mux.HandleFunc("GET /api/v2/users/{user}", a.authed(a.getUser))
	// Users' lifecycle (userlifecycle.go).
	mux.HandleFunc("PUT /api/v2/users/{user}/role", a.authed(a.audited(actUserRole, a.setUserRole)))
	mux.HandleFunc("PUT /api/v2/users/{user}/status/suspend", a.authed(a.audited(actUserSuspend, a.suspendUser)))
	mux.HandleFunc("PUT /api/v2/users/{user}/status/activate", a.authed(a.audited(actUserActivate, a.activateUser)))
	mux.HandleFunc("PUT /api/v2/users/{user}/password", a.authed(a.audited(actUserPassword, a.updatePassword)))
	mux.HandleFunc("DELETE /api/v2/users/{user}", a.authed(a.audited(actUserDelete, a.deleteUser)))

	// Single sign-on (issue 19 part 1); the browser steps are in dashRoutes.
	mux.HandleFunc("GET /api/v2/users/authmethods", a.authMethods)
	mux.HandleFunc("POST /api/v2/users/oidc/token", a.audited(actLogin, a.oidcToken))
	mux.HandleFunc("POST /api/v2/users/oidc/device", a.oidcDeviceStart)
	mux.HandleFunc("POST /api/v2/users/oidc/device/token", a.audited(actLogin, a.oidcDevicePoll))

	mux.HandleFunc("POST /api/v2/workspaces", a.authed(a.audited(actWorkspaceNew, a.createWorkspace)))
	mux.HandleFunc("GET /api/v2/workspaces", a.authed(a.listWorkspaces))
	mux.HandleFunc("GET /api/v2/workspaces/{workspace}", a.authed(a.getWorkspace))
	mux.HandleFunc("GET /api/v2/workspaces/{workspace}/ssh", a.authed(a.audited(actSSHOpen, a.sshWorkspace)))
	mux.HandleFunc("GET /api/v2/workspaces/{workspace}/agent", a.authed(a.getAgentStatus))
	mux.HandleFunc("DELETE /api/v2/workspaces/{workspace}", a.authed(a.audited(actWorkspaceDel, a.deleteWorkspace)))
	mux.HandleFunc("POST /api/v2/workspaces/{workspace}/agent-token", a.authed(a.audited(actAgentTokenRot, a.rotateAgentToken)))
	mux.HandleFunc("GET /api/v2/workspaces/{workspace}/logs", a.authed(a.workspaceLogs))

	mux.HandleFunc("GET /api/v2/users/{user}/secrets", a.authed(a.audited(actSecretList, a.listSecrets)))
	mux.HandleFunc("POST /api/v2/users/{user}/secrets", a.authed(a.audited(actSecretCreate, a.createSecret)))
	mux.HandleFunc("POST /api/v2/users/{user}/secrets/batch", a.authed(a.audited(actSecretBatch, a.batchSecrets)))
	mux.HandleFunc("GET /api/v2/users/{user}/secrets/{name}", a.authed(a.audited(actSecretRead, a.getSecret)))
	mux.HandleFunc("PATCH /api/v2/users/{user}/secrets/{name}", a.authed(a.audited(actSecretUpdate, a.updateSecret)))
	mux.HandleFunc("DELETE /api/v2/users/{user}/secrets/{name}", a.authed(a.audited(actSecretDelete, a.deleteSecret)))

	// Personal API tokens (issue 19 part 2; controlplane/apitokens.go).
	mux.HandleFunc("POST /api/v2/users/{user}/tokens", a.authed(a.audited(actTokenCreate, a.createAPIToken)))
	mux.HandleFunc("GET /api/v2/users/{user}/tokens", a.authed(a.listAPITokens))
	mux.HandleFunc("DELETE /api/v2/users/{user}/tokens/{name}", a.authed(a.audited(actTokenRevoke, a.deleteAPIToken)))
	mux.HandleFunc("GET /api/v2/tokens", a.authed(a.listAllAPITokens))

	// The audit log (issue 20; auditapi.go).
	mux.HandleFunc("GET /api/v2/audit", a.authed(a.listAudit))
	mux.HandleFunc("GET /api/v2/audit/verify", a.authed(a.audited(actAuditVerify, a.verifyAudit)))
	mux.HandleFunc("GET /api/v2/users/{user}/audit", a.authed(a.userAudit))

	a.dashRoutes(mux)
}

func routeField(r *http.Request) zap.Field {
	p := r.Pattern
	if p == "" {
		p = "unmatched"
	}
	return zap.String("route", p)
}

// errField logs an error that never carries a secret value: every error
// reaching a log line here comes from the store, the sealer or the network,
// none of which put values in their messages.
func errField(err error) zap.Field { return zap.Error(err) }
