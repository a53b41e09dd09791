package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
)

// MinPasswordBytes is the shortest password accepted. bcrypt ignores bytes
// past 72, so that is the longest. The whole policy is
// identity.CheckPassword's.
const (
	MinPasswordBytes = identity.MinPasswordBytes
	MaxPasswordBytes = identity.MaxPasswordBytes
)

// UserResponse is a user as the API returns it (declared in package client).
type UserResponse = client.User

func userResponse(u store.User) UserResponse {
	r := UserResponse{ID: u.ID, Username: u.Username, Email: u.Email, Admin: u.IsAdmin(),
		Role: string(store.RoleOf(u)), Status: client.StatusActive, LoginType: client.LoginPassword, CreatedAt: u.CreatedAt.UTC()}
	if u.Suspended() {
		r.Status = client.StatusSuspended
	}
	if u.OIDCSubject != "" {
		r.LoginType = client.LoginOIDC
	}
	return r
}

type createUserRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
	Admin    bool   `json:"admin"`
	// Role is optional: "" means member, or admin when Admin is set.
	Role store.Role `json:"role"`
}

type loginRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginResponse is the body of a successful login (declared in package
// client).
type LoginResponse = client.LoginResponse

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// newUser validates req and returns the user to store, password hashed.
func (a *api) newUser(req createUserRequest) (store.User, error) {
	var vs []Validation
	switch {
	case !usernameRE.MatchString(req.Username):
		vs = append(vs, Validation{Field: "username", Detail: "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"})
	case strings.EqualFold(req.Username, "me") || strings.EqualFold(req.Username, "authmethods") || looksLikeUUID(req.Username):
		// authmethods: GET /api/v2/users/authmethods is a route of its own.
		vs = append(vs, Validation{Field: "username", Detail: "must not be \"me\", \"authmethods\" or look like a user ID"})
	}
	if addr, err := mail.ParseAddress(req.Email); err != nil || addr.Address != req.Email || len(req.Email) > 254 {
		vs = append(vs, Validation{Field: "email", Detail: "must be a plain e-mail address such as ada@example.com"})
	}
	if err := identity.CheckPassword(req.Password, req.Username, req.Email); err != nil {
		vs = append(vs, Validation{Field: "password", Detail: err.Error()})
	}
	role, err := requestedRole(req.Role, req.Admin)
	if err != nil {
		vs = append(vs, Validation{Field: "role", Detail: err.Error()})
	}
	if len(vs) > 0 {
		return store.User{}, &apiError{status: http.StatusBadRequest,
			body: ErrorResponse{Message: "invalid user", Validations: vs}}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), a.cfg.BcryptCost)
	if err != nil {
		return store.User{}, fmt.Errorf("hash password: %w", err)
	}
	return store.User{
		ID: uuid.NewString(), Username: req.Username, Email: req.Email,
		PasswordHash: hash, Role: role, CreatedAt: a.cfg.stamp(),
	}, nil
}

// createFirstUser: POST /api/v2/users/first. Unauthenticated, it works only
// while the server has no user; the first user is always an admin. Once a user
// exists it answers 409 Conflict.
func (a *api) createFirstUser(w http.ResponseWriter, r *http.Request) {
	if a.cfg.DisablePasswordLogin {
		a.writeError(w, r, errorf(http.StatusForbidden, "password login is disabled on this server, so the first user cannot be made with a password; admins come from the OIDC admin group"))
		return
	}
	var req loginRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	u, err := a.newUser(createUserRequest{Username: req.Username, Email: req.Email, Password: req.Password, Admin: true})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	noteTarget(r.Context(), userTarget(u))
	noteActor(r.Context(), userActor(u))
	err = a.store.CreateFirstUser(audit.InTx(r.Context()), u)
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Field == "user" {
		err = errorf(http.StatusConflict, "the first user already exists; ask an admin to create your account")
	}
	if err != nil {
		// Nobody was created: the caller stays anonymous, named by the
		// account it tried (as a failed sign-in is), and the target has no
		// ID, since the drafted one never existed.
		if p := audit.Draft(r.Context()); p != nil {
			p.Update(func(rec *audit.Record) {
				rec.Actor = audit.Actor{Kind: audit.ActorAnonymous, Name: u.Username}
				rec.Target = audit.Target{Kind: targetUser, Name: u.Username}
			})
		}
		a.writeError(w, r, err)
		return
	}
	a.log.Info("first user created")
	writeJSON(w, http.StatusCreated, userResponse(u))
}

// errBadLogin is the one answer to every failed login, so it reveals
// nothing about which part was wrong.
var errBadLogin = errorf(http.StatusUnauthorized, "incorrect username, e-mail or password")

// errSuspended refuses the right password of a suspended account.
var errSuspended = errorf(http.StatusUnauthorized, "this account is suspended; ask an admin to activate it")

// login: POST /api/v2/users/login → 201 {"session_token"}.
func (a *api) login(w http.ResponseWriter, r *http.Request) {
	if a.cfg.DisablePasswordLogin {
		a.writeError(w, r, a.errPasswordDisabled())
		return
	}
	var req loginRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if (req.Username == "") == (req.Email == "") || req.Password == "" || len(req.Password) > MaxPasswordBytes {
		a.writeError(w, r, errorf(http.StatusBadRequest, "send a password and exactly one of username or email"))
		return
	}
	u, err := a.authenticate(r, req.Username, req.Email, req.Password)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	tok, err := a.startSession(r.Context(), u.ID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, LoginResponse{SessionToken: tok})
}

// authenticate checks a password for the user named by username or email
// (exactly one is set). Every password check goes through it — the REST
// login and the dashboard's — so rules about logins (timing, throttling)
// live in one place. A wrong name or password is errBadLogin; a login while
// its account or client address is locked is *identity.ThrottledError (429 with
// Retry-After), answered the same whether or not the account exists.
//
// The attempt is counted before the password is checked (so parallel
// guesses count too) and taken back when it is right; see identity.LoginThrottle.
func (a *api) authenticate(r *http.Request, username, email, password string) (store.User, error) {
	ctx := r.Context()
	var (
		u   store.User
		err error
	)
	tried := username
	if username != "" {
		u, err = a.store.UserByUsername(ctx, username)
	} else {
		tried = email
		u, err = a.store.UserByEmail(ctx, email)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	found := err == nil
	noteSignIn(ctx, audit.Actor{Kind: audit.ActorAnonymous, Name: truncate(tried, 128)}, found, u)
	th := a.cfg.LoginThrottle
	addr := th.ClientAddr(r)
	acctKey := identity.AccountKey("name:" + strings.ToLower(tried))
	if found {
		acctKey = identity.AccountKey(u.ID)
	}
	keys := []string{acctKey, identity.AddressKey(addr)}
	logFields := []zap.Field{zap.String("username", truncate(tried, 128)), zap.String("client_addr", addr)}

	counted, err := a.store.UpdateLoginCounters(ctx, keys, th.Begin(a.cfg.now()))
	var te *identity.ThrottledError
	if errors.As(err, &te) {
		a.log.Warn("login refused: too many failed logins", append(logFields,
			zap.Duration("retry_after", te.RetryAfter))...)
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("count login attempt: %w", err)
	}
	hash := u.PasswordHash
	if !found {
		hash = a.dummyHash() // spend the same time for unknown users
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !found {
		a.log.Warn("login failed", append(logFields, zap.Int("account_failures", counted[0].Failures),
			zap.Int("address_failures", counted[1].Failures))...)
		if c, ok := identity.LockedNow(counted); ok {
			a.log.Warn("login locked after repeated failures", append(logFields,
				zap.String("locked", strings.SplitN(c.Key, ":", 2)[0]), zap.Time("until", c.LockedUntil))...)
		}
		a.pruneLoginCounters(ctx)
		return store.User{}, errBadLogin
	}
	if _, err := a.store.UpdateLoginCounters(ctx, keys, th.Succeed()); err != nil {
		return store.User{}, fmt.Errorf("reset login counters: %w", err)
	}
	if u.Suspended() { // said only after the right password: nothing to probe
		return store.User{}, errSuspended
	}
	noteSignIn(ctx, userActor(u), true, u)
	return u, nil
}

// pruneEvery is how many failed logins pass between two prunes of idle
// login counters (a spray of made-up usernames leaves one counter each).
const pruneEvery = 100

// pruneLoginCounters deletes, once every pruneEvery failed logins, the
// counters idle for longer than any lock and window could matter.
func (a *api) pruneLoginCounters(ctx context.Context) {
	if a.failedLogins.Add(1)%pruneEvery != 0 {
		return
	}
	th := a.cfg.LoginThrottle
	idle := a.cfg.now().Add(-th.Window - th.MaxLockout)
	if n, err := a.store.PruneLoginCounters(ctx, idle); err != nil {
		a.log.Warn("prune login counters", errField(err))
	} else if n > 0 {
		a.log.Debug("pruned idle login counters", zap.Int("count", n))
	}
}

// startSession creates a session for userID and returns its token; only the
// token's hash is stored.
func (a *api) startSession(ctx context.Context, userID string) (string, error) {
	tok, tokHash, err := newToken()
	if err != nil {
		return "", err
	}
	now := a.cfg.stamp()
	sess := store.Session{TokenHash: tokHash, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(a.cfg.SessionLifetime)}
	if p := audit.Draft(ctx); p != nil {
		p.Update(func(r *audit.Record) {
			if r.Actor.ID == "" {
				r.Actor = audit.Actor{Kind: audit.ActorUser, ID: userID}
			}
			if r.Target.ID == "" {
				r.Target = audit.Target{Kind: targetUser, ID: userID, OwnerID: userID}
			}
		})
	}
	if err := a.store.CreateSession(audit.InTx(ctx), sess); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return tok, nil
}

// dummyHash is a bcrypt hash of nothing anyone can type, at the configured
// cost, computed once.
func (a *api) dummyHash() []byte {
	a.dummyOnce.Do(func() {
		a.dummy, _ = bcrypt.GenerateFromPassword([]byte("\x00courier-no-such-user"), a.cfg.BcryptCost)
	})
	return a.dummy
}

// logout: POST /api/v2/users/logout revokes the presented token → 204.
func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	hash, _ := r.Context().Value(ctxTokenHash).([]byte)
	noteTarget(r.Context(), userTarget(caller(r)))
	if err := a.store.DeleteSession(audit.InTx(r.Context()), hash); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.writeError(w, r, fmt.Errorf("delete session: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getUser: GET /api/v2/users/{user}; a member sees only themselves.
func (a *api) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.resolveUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userResponse(u))
}

var errAdminOnly = errorf(http.StatusForbidden, "only an admin may do this")

// createUser: POST /api/v2/users (admin).
func (a *api) createUser(w http.ResponseWriter, r *http.Request) {
	if !caller(r).IsAdmin() {
		a.writeError(w, r, errAdminOnly)
		return
	}
	var req createUserRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	noteTarget(r.Context(), audit.Target{Kind: targetUser, Name: truncate(req.Username, 64)})
	u, err := a.newUser(req)
	if err == nil {
		noteTarget(r.Context(), userTarget(u))
		noteDetails(r.Context(), map[string]any{"role": string(u.Role)})
		err = a.store.CreateUser(audit.InTx(r.Context()), u)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userResponse(u))
}

// listUsers: GET /api/v2/users (admins and auditors).
func (a *api) listUsers(w http.ResponseWriter, r *http.Request) {
	if !canSeeEveryone(caller(r)) {
		a.writeError(w, r, errAdminOnly)
		return
	}
	us, err := a.store.ListUsers(r.Context())
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list users: %w", err))
		return
	}
	out := make([]UserResponse, 0, len(us))
	for _, u := range us {
		out = append(out, userResponse(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// requestedRole is the role a new user asks for: role when set (admin
// must then be false or agree), else admin or member by the admin flag.
func requestedRole(role store.Role, admin bool) (store.Role, error) {
	switch {
	case role == "" && admin:
		return store.RoleAdmin, nil
	case role == "":
		return store.RoleMember, nil
	case !role.Valid():
		return "", errBadRole
	case admin && role != store.RoleAdmin:
		return "", fmt.Errorf("admin is true but role is %q; send one or the other", role)
	}
	return role, nil
}
