package controlplane

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// The control plane's side of the audit log (issue 20; package audit does
// the chain). Every audited route is wrapped once by audited, which drafts
// the route's record and, after the handler, settles it:
//   - a change is written by the store in the change's own transaction:
//     the handler passes audit.InTx(ctx) to the one store write that makes
//     it (createOne, updateOne, startSession, ...);
//   - a refusal (status >= 400) and an access that changes nothing (an
//     admin reading another user's secrets) go to the batcher, which
//     appends them within about a second, so floods do not slow the API.
// So each request leaves exactly one record of its action (plus, for a
// batch import, one per secret), and none holds a value, token or password.

// auditor batches the records of access decisions and names this replica.
type auditor struct {
	batch *audit.Batcher
	// refusals folds the requests refused for their credential into one
	// record per source and reason per refusalWindow (see refusedCredential).
	refusals *audit.Tally
	replica  string
	log      *zap.Logger
	// off switches recording off; only tests set it (the benchmark's
	// "audit off" arm). No flag reaches it.
	off atomic.Bool
}

// record queues r for the batcher (access decisions that change nothing).
func (a *api) record(r audit.Record) {
	if a.audit == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = a.cfg.stamp()
	}
	a.audit.add(r)
}

// add queues r for the batcher.
func (au *auditor) add(r audit.Record) {
	if au.off.Load() {
		return
	}
	if r.Replica == "" {
		r.Replica = au.replica
	}
	if err := au.batch.Add(r); err != nil {
		au.log.Error("could not queue an audit record", zap.String("action", r.Action), zap.Error(err))
	}
}

// Audit actions (package audit names them), target kinds and the request
// ID header.
const (
	actLogin          = audit.ActLogin
	actLogout         = audit.ActLogout
	actRefused        = audit.ActRefused
	actTokenCreate    = audit.ActTokenCreate
	actTokenRevoke    = audit.ActTokenRevoke
	actTokenFirstUse  = audit.ActTokenFirstUse
	actSecretCreate   = audit.ActSecretCreate
	actSecretUpdate   = audit.ActSecretUpdate
	actSecretDelete   = audit.ActSecretDelete
	actSecretBatch    = audit.ActSecretBatch
	actSecretList     = audit.ActSecretList
	actSecretRead     = audit.ActSecretRead
	actUserCreate     = audit.ActUserCreate
	actUserRole       = audit.ActUserRole
	actUserSuspend    = audit.ActUserSuspend
	actUserActivate   = audit.ActUserActivate
	actUserPassword   = audit.ActUserPassword
	actUserDelete     = audit.ActUserDelete
	actWorkspaceNew   = audit.ActWorkspaceCreate
	actWorkspaceDel   = audit.ActWorkspaceDelete
	actAgentTokenRot  = audit.ActAgentTokenRotate
	actAgentConnect   = audit.ActAgentConnect
	actAgentDrop      = audit.ActAgentDisconnect
	actAgentRefused   = audit.ActAgentRefused
	actAgentApply     = audit.ActAgentApply
	actSSHOpen        = audit.ActSSHOpen
	actSSHClose       = audit.ActSSHClose
	actSSHForward     = audit.ActSSHForward
	actSSHSFTP        = audit.ActSSHSFTP
	actAuditVerify    = audit.ActAuditVerify
	targetSecret      = "secret"
	targetUser        = "user"
	targetWorkspace   = "workspace"
	targetToken       = "token"
	targetSession     = "session"
	targetAuditLog    = "audit_log"
	headerRequestID   = "X-Request-Id"
	maxRequestIDBytes = 128
)

// readActions are recorded only when the reader is not the owner: an admin
// or auditor reading another user's secret metadata.
var readActions = map[string]bool{actSecretList: true, actSecretRead: true}

// requestID is the ID already given to r (see auditFirstUse), else the
// client's X-Request-Id when it is short and printable, else a new one;
// the response carries it back.
func requestID(r *http.Request) string {
	if id, ok := r.Context().Value(ctxRequestID).(string); ok {
		return id
	}
	id := r.Header.Get(headerRequestID)
	if id == "" || len(id) > maxRequestIDBytes || strings.IndexFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		return uuid.NewString()
	}
	return id
}

// origin returns the record's who-and-where fields for r: the caller (or
// anonymous), the client address (honouring --trusted-proxies), the user
// agent, the request ID and this replica.
func (a *api) origin(r *http.Request, action, reqID string) audit.Record {
	rec := audit.Record{Time: a.cfg.stamp(), Action: action, UserAgent: r.UserAgent(), RequestID: reqID,
		Actor: audit.Actor{Kind: audit.ActorAnonymous}, Outcome: audit.Success}
	if a.audit != nil {
		rec.Replica = a.audit.replica
	}
	if ip, _ := a.cfg.LoginThrottle.ClientIP(r); ip.IsValid() {
		rec.Source = ip.String()
	}
	if u := caller(r); u.ID != "" {
		rec.Actor = audit.Actor{Kind: audit.ActorUser, ID: u.ID, Name: u.Username}
	}
	kind, _, _ := strings.Cut(action, ".")
	rec.Target.Kind = kind
	for _, key := range []string{"name", "workspace", "user"} {
		v := r.PathValue(key)
		if key == "user" && kind != targetUser {
			// {user} names whose secrets or tokens these are, not the
			// target: "secret me" or "token alice" would name a secret or
			// token that does not exist. The owner is noted once resolved
			// (noteOwner), and the handler names the target it acts on.
			continue
		}
		if v != "" {
			rec.Target.Name = v
			break
		}
	}
	if kind == targetUser || kind == targetSecret {
		if me := caller(r); me.ID != "" && (r.PathValue("user") == "me" || r.PathValue("user") == "") {
			rec.Target.OwnerID = me.ID
		}
	}
	return rec
}

// audited wraps h so that its request leaves one record of action (see the
// comment at the top of this file). It goes inside authed or the
// dashboard's Page, so the caller is known.
func (a *api) audited(action string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.audit == nil || a.audit.off.Load() {
			h(w, r)
			return
		}
		reqID := requestID(r)
		w.Header().Set(headerRequestID, reqID)
		p := audit.NewPending(a.origin(r, action, reqID))
		r = r.WithContext(audit.WithDraft(r.Context(), p))
		sw := &auditWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		if p.Written() {
			return
		}
		recs := p.Records()
		rec := recs[0]
		switch {
		case sw.status >= 400:
			rec.Outcome = outcomeOf(sw.status)
		case readActions[action] && rec.Target.OwnerID == rec.Actor.ID:
			return // reading one's own secrets is not recorded
		}
		a.record(rec)
		if rec.Outcome == audit.Success {
			for _, extra := range recs[1:] {
				a.record(extra)
			}
		}
	}
}

// outcomeOf maps a refusal's status to an outcome: refused for lack of
// right (403), lack of credentials or throttled is denied; everything else
// (bad input, caps, conflicts, not found) failed.
func outcomeOf(status int) string {
	switch status {
	case http.StatusForbidden, http.StatusTooManyRequests:
		return audit.Denied
	}
	return audit.Failure
}

// noteRefusal puts the message a refused request is answered with in its
// audit record (explain calls it; messages never quote a value).
func noteRefusal(ctx context.Context, ae *apiError) {
	if p := audit.Draft(ctx); p != nil {
		p.Update(func(r *audit.Record) {
			if r.Reason == "" {
				r.Reason = ae.body.Message
			}
		})
	}
}

// noteTarget completes the target of ctx's record with what the handler
// resolved; empty fields of t leave the drafted ones.
func noteTarget(ctx context.Context, t audit.Target) {
	if p := audit.Draft(ctx); p != nil {
		p.Update(func(r *audit.Record) {
			if t.Kind != "" {
				r.Target.Kind = t.Kind
			}
			if t.ID != "" {
				r.Target.ID = t.ID
			}
			if t.Name != "" {
				r.Target.Name = t.Name
			}
			if t.OwnerID != "" {
				r.Target.OwnerID = t.OwnerID
			}
		})
	}
}

// noteActor sets the actor of ctx's record (a sign-in learns who it is
// only after the password).
func noteActor(ctx context.Context, actor audit.Actor) {
	if p := audit.Draft(ctx); p != nil {
		p.Update(func(r *audit.Record) { r.Actor = actor })
	}
}

// noteDetails merges d into the details of ctx's record.
func noteDetails(ctx context.Context, d map[string]any) {
	if p := audit.Draft(ctx); p != nil {
		p.Update(func(r *audit.Record) { r.Details = audit.Details(d) })
	}
}

func userActor(u store.User) audit.Actor {
	return audit.Actor{Kind: audit.ActorUser, ID: u.ID, Name: u.Username}
}

func userTarget(u store.User) audit.Target {
	return audit.Target{Kind: targetUser, ID: u.ID, Name: u.Username, OwnerID: u.ID}
}

// auditWriter records the status code; it passes Hijack, Flush and Unwrap
// through.
type auditWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *auditWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *auditWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *auditWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	return hj.Hijack()
}

// refusalWindow is how long requests refused for their credential from one
// address, for one reason, are counted into one session.refused record.
const refusalWindow = time.Minute

// refusedCredential counts r, refused with err for the credential it
// presented (via "header" or "cookie"), into its source's session.refused
// record of the current minute (audit.Tally): a flood of bad tokens costs
// a map update per request and a record per address per minute, never a
// write per request. A request that presented no credential is not a
// decision about one and is not counted. The record names the reason and
// never the presented token, nor any part of it.
func (a *api) refusedCredential(w http.ResponseWriter, r *http.Request, err error, via string) {
	var cr *credentialRefusal
	if a.audit == nil || a.audit.off.Load() || !errors.As(err, &cr) {
		return
	}
	var source string
	if ip, _ := a.cfg.LoginThrottle.ClientIP(r); ip.IsValid() {
		source = ip.String()
	}
	reason := cr.why + " token"
	if via == "cookie" {
		reason = cr.why + " session cookie"
	}
	a.audit.refusals.Add(audit.TallyKey{Source: source, Action: actRefused, Reason: reason}, a.cfg.stamp(), func() audit.Record {
		// The window's first refusal of its key: its answer names the
		// record's request ID.
		reqID := requestID(r)
		w.Header().Set(headerRequestID, reqID)
		rec := a.origin(r, actRefused, reqID)
		rec.Actor = audit.Actor{Kind: audit.ActorAnonymous}
		rec.Target = audit.Target{Kind: targetSession}
		rec.Outcome = audit.Denied
		rec.Details = audit.Details(map[string]any{"credential": via})
		return rec
	})
}

// auditFlushEvery is how long an access decision's record waits in memory
// at most.
const auditFlushEvery = time.Second

// auditBatch adds to the batch import's record one record per secret,
// written in the same transaction, and counts them in its details.
func auditBatch(r *http.Request, ownerID string, secs []store.Secret) {
	p := audit.Draft(r.Context())
	if p == nil {
		return
	}
	base := p.Records()[0]
	noteDetails(r.Context(), map[string]any{"secrets": len(secs)})
	noteTarget(r.Context(), audit.Target{Kind: targetSecret, OwnerID: ownerID})
	for _, s := range secs {
		rec := base
		rec.Action = actSecretCreate
		rec.Target = audit.Target{Kind: targetSecret, ID: s.ID, Name: s.Name, OwnerID: ownerID}
		rec.Details = audit.Details(map[string]any{"batch": true})
		p.Add(rec)
	}
}

func workspaceTarget(ws store.Workspace) audit.Target {
	return audit.Target{Kind: targetWorkspace, ID: ws.ID, Name: ws.Name, OwnerID: ws.OwnerID}
}

// noteSignIn sets the actor (and, when the account exists, the target) of
// a sign-in's record; authenticate also serves a password change, whose
// record it leaves alone.
func noteSignIn(ctx context.Context, actor audit.Actor, found bool, u store.User) {
	if p := audit.Draft(ctx); p != nil {
		p.Update(func(r *audit.Record) {
			if r.Action != actLogin {
				return
			}
			r.Actor = actor
			if found {
				r.Target = userTarget(u)
			}
		})
	}
}

// noteOwner records the user a {user} path value resolved to: the target
// itself for a user route, the owner of the secret or token otherwise.
func noteOwner(ctx context.Context, u store.User) {
	if p := audit.Draft(ctx); p != nil {
		p.Update(func(r *audit.Record) {
			switch {
			case r.Target.Kind == targetUser:
				r.Target = userTarget(u)
			case r.Action == actSecretList: // the target is the user whose whole list it is
				r.Target = userTarget(u)
			default:
				r.Target.OwnerID = u.ID
			}
		})
	}
}

// auditFirstUse drafts the token.first_use record of r, a use at time at
// of API token t, when the store says t was never used (ok false
// otherwise, or with the audit off). The draft is not recorded here: the
// use recorder hands it to the store's coalesced last-use write, which
// appends it in its transaction only when that write moves the token's
// last use from never — so a token's first use leaves one record however
// many replicas serve its first requests, and a request costs no write.
// r is returned carrying the record's request ID, which the response
// carries too (an audited route's record reuses it).
func (a *api) auditFirstUse(w http.ResponseWriter, r *http.Request, t store.APIToken, at time.Time) (audit.Record, *http.Request, bool) {
	if a.audit == nil || a.audit.off.Load() || !t.LastUsedAt.IsZero() {
		return audit.Record{}, r, false
	}
	reqID := requestID(r)
	w.Header().Set(headerRequestID, reqID)
	r = r.WithContext(context.WithValue(r.Context(), ctxRequestID, reqID))
	rec := a.origin(r, actTokenFirstUse, reqID)
	rec.Time = at
	rec.Target = audit.Target{Kind: targetToken, ID: t.ID, Name: t.Name, OwnerID: t.UserID}
	rec.Outcome = audit.Success
	rec.Details = audit.Details(map[string]any{"scope": string(t.Scope)})
	return rec, r, true
}

// skipAudit drops the record of ctx's request: the step decided nothing
// (a device sign-in still pending) or another request records it.
func skipAudit(ctx context.Context) {
	if p := audit.Draft(ctx); p != nil {
		p.MarkWritten()
	}
}

// auditSSOUser returns ctx under which creating u (a user's first single
// sign-on) appends its own user.create record, in that write's
// transaction, beside the sign-in's.
func (a *api) auditSSOUser(ctx context.Context, u store.User) context.Context {
	if a.audit == nil || a.audit.off.Load() {
		return ctx
	}
	rec := audit.Record{Time: a.cfg.stamp(), Action: actUserCreate, Outcome: audit.Success,
		Actor: audit.Actor{Kind: audit.ActorSystem, Name: "single sign-on"}, Target: userTarget(u),
		Replica: a.audit.replica, Details: audit.Details(map[string]any{"role": string(u.Role), "via": "oidc"})}
	if p := audit.Draft(ctx); p != nil {
		base := p.Records()[0]
		rec.Source, rec.UserAgent, rec.RequestID = base.Source, base.UserAgent, base.RequestID
	}
	ctx, _ = audit.WithRecords(ctx, rec)
	return ctx
}
