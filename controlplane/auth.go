package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/courierhq/courier/controlplane/store"
)

// Session token headers, in the order they are looked at. The first is the
// reference's, so its curl examples work unchanged (R11).
const (
	HeaderSessionToken        = "Coder-Session-Token"
	HeaderCourierSessionToken = "Courier-Session-Token"
)

// tokenBytes is the entropy of session and agent tokens (256 bits).
const tokenBytes = 32

// newToken returns a random token (base64url, no padding) and its SHA-256,
// which is all that is stored.
func newToken() (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token), nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// presentedToken returns the session token of r from Coder-Session-Token,
// Courier-Session-Token or "Authorization: Bearer", or "".
func presentedToken(r *http.Request) string {
	for _, h := range []string{HeaderSessionToken, HeaderCourierSessionToken} {
		if t := strings.TrimSpace(r.Header.Get(h)); t != "" {
			return t
		}
	}
	auth := r.Header.Get("Authorization")
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

type ctxKey int

const (
	ctxUser ctxKey = iota
	ctxTokenHash
	ctxCred
	ctxRequestID // the request's ID, once given (see requestID)
)

// credential says how a request authenticated: with a login session or a
// personal API token.
type credential struct {
	// APIToken is set when the request presented a personal API token
	// rather than a login session.
	APIToken *store.APIToken
}

// caller is the authenticated user of a request.
func caller(r *http.Request) store.User {
	u, _ := r.Context().Value(ctxUser).(store.User)
	return u
}

// credentialOf returns how r authenticated (the zero credential for a
// session or an unauthenticated request).
func credentialOf(r *http.Request) credential {
	c, _ := r.Context().Value(ctxCred).(credential)
	return c
}

// credentialRefusal is errUnauthenticated for a presented credential, with
// why it was refused for the audit record (the client is told no more).
type credentialRefusal struct{ why string }

func (e *credentialRefusal) Error() string { return errUnauthenticated.Error() }
func (e *credentialRefusal) Unwrap() error { return errUnauthenticated }

// Why a presented credential was refused.
var (
	errOverlongToken = &credentialRefusal{why: "over-long"}
	errUnknownToken  = &credentialRefusal{why: "unknown, expired or revoked"}
	errUserBarred    = &credentialRefusal{why: "suspended or deleted user's"}
)

var (
	errUnauthenticated = errorf(http.StatusUnauthorized,
		"authentication required: send a valid session token in the Coder-Session-Token header")
	errReadOnlyToken = errorf(http.StatusForbidden,
		"this API token has the read scope: it cannot create, change or delete anything")
)

// authed wraps h so it runs only for a request with a valid, unexpired,
// unrevoked session token or personal API token of an active user in a
// header (never a cookie: the cookie is the dashboard's, and the REST API
// stays free of cross-site request forgery by not reading it); 401
// otherwise, saying no more. A read-scoped API token may only GET or HEAD.
func (a *api) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, err := a.withCredential(r.Context(), presentedToken(r), true)
		if err != nil {
			a.refusedCredential(w, r, err, "header")
			a.writeError(w, r, err)
			return
		}
		r = r.WithContext(ctx)
		if t := credentialOf(r).APIToken; t != nil {
			if t.Scope != store.ScopeWrite && r.Method != http.MethodGet && r.Method != http.MethodHead {
				a.writeError(w, r, errReadOnlyToken)
				return
			}
			r = a.noteTokenUse(w, r, *t)
		}
		w, wrote := a.watchWrite(w, r)
		h(w, r)
		wrote()
	}
}

// withSession returns ctx carrying the user of login session token tok and
// the token's hash, or errUnauthenticated. The dashboard uses it: API
// tokens do not open the dashboard.
func (a *api) withSession(ctx context.Context, tok string) (context.Context, error) {
	return a.withCredential(ctx, tok, false)
}

// withCredential returns ctx carrying the user of tok — a login session,
// or a personal API token when apiTokens — and the token's hash, or
// errUnauthenticated (a *credentialRefusal, saying why, when tok is not
// empty). The token is looked up by its SHA-256 and the stored hash
// compared in constant time. A suspended user is refused here, on
// every request, so a suspension takes effect at once on every replica.
func (a *api) withCredential(ctx context.Context, tok string, apiTokens bool) (context.Context, error) {
	if tok == "" {
		return nil, errUnauthenticated
	}
	if len(tok) > 256 {
		return nil, errOverlongToken
	}
	hash := hashToken(tok)
	var (
		userID string
		cred   credential
		u      store.User
		known  bool // u is userID's, read with the session
	)
	sess, su, err := a.store.SessionUser(ctx, hash, a.cfg.now())
	switch {
	case err == nil && subtle.ConstantTimeCompare(sess.TokenHash, hash) == 1:
		userID, u, known = sess.UserID, su, true
	case err == nil || errors.Is(err, store.ErrNotFound):
		if !apiTokens {
			return nil, errUnknownToken
		}
		t, err := a.store.APITokenByHash(ctx, hash, a.cfg.now())
		if errors.Is(err, store.ErrNotFound) ||
			(err == nil && subtle.ConstantTimeCompare(t.TokenHash, hash) != 1) {
			return nil, errUnknownToken
		}
		if err != nil {
			return nil, fmt.Errorf("look up API token: %w", err)
		}
		userID, cred.APIToken = t.UserID, &t
	default:
		return nil, fmt.Errorf("look up session: %w", err)
	}
	if !known {
		u, err = a.store.UserByID(ctx, userID)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Suspended()) {
		return nil, errUserBarred
	}
	if err != nil {
		return nil, fmt.Errorf("look up session user: %w", err)
	}
	a.backAvailable(dbUnreachable)
	ctx = context.WithValue(ctx, ctxUser, u)
	ctx = context.WithValue(ctx, ctxCred, cred)
	return context.WithValue(ctx, ctxTokenHash, hash), nil
}

var errNoUser = errorf(http.StatusNotFound, "user not found")

// resolveUser turns a {user} path value (UUID, username or "me") into a user
// and checks that the caller may see it: themselves, anyone for an admin,
// and anyone for an auditor on a GET or HEAD (on any other method an
// auditor gets errAuditorReadOnly). Members are told another user does not
// exist, so usernames cannot be probed.
func (a *api) resolveUser(r *http.Request) (store.User, error) {
	me := caller(r)
	ref := r.PathValue("user")
	var (
		u   store.User
		err error
	)
	switch {
	case ref == "me" || ref == me.ID || strings.EqualFold(ref, me.Username):
		noteOwner(r.Context(), me)
		return me, nil
	case looksLikeUUID(ref):
		u, err = a.store.UserByID(r.Context(), ref)
	default:
		u, err = a.store.UserByUsername(r.Context(), ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errNoUser
	}
	if err != nil {
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	switch {
	case me.IsAdmin():
		noteOwner(r.Context(), u)
		return u, nil
	case store.RoleOf(me) == store.RoleAuditor && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		noteOwner(r.Context(), u)
		return u, nil
	case store.RoleOf(me) == store.RoleAuditor:
		return store.User{}, errAuditorReadOnly
	}
	return store.User{}, errNoUser
}

// looksLikeUUID reports whether s has the 8-4-4-4-12 hex shape of an ID.
func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
