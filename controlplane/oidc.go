package controlplane

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/identity/oidc"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// Single sign-on with OpenID Connect (issue 19, part 1).
//
// The control plane is the relying party: it holds the client secret and
// runs the authorization code flow (package identity/oidc does the
// protocol). Every step between two requests is an OIDCFlow row in the
// database, keyed by the SHA-256 of its handle and deleted when used, so
// any replica can finish a step and none can be replayed:
//
//   - "login": GET /login/oidc sets a random binding cookie and stores the
//     nonce, the PKCE verifier and (for the CLI) the CLI's loopback address
//     and PKCE challenge under SHA-256(state, binding). The callback finds
//     the row only with both the state from the provider and the cookie of
//     the browser that started, so a callback URL used twice, or in another
//     browser, finds nothing.
//   - "cli": after a CLI sign-in the browser is sent to the CLI's loopback
//     listener with a one-time code (never a session token); the CLI
//     redeems it at POST /api/v2/users/oidc/token with the PKCE verifier of
//     the challenge it sent at the start.
//   - "device": POST /api/v2/users/oidc/device starts the provider's device
//     authorization grant; the provider's device code stays in the row and
//     the CLI polls with a handle of its own.
const (
	flowLogin  = "login"
	flowCLI    = "cli"
	flowDevice = "device"

	oidcCallbackPath = "/api/v2/users/oidc/callback"
	oidcBindCookie   = "courier_oidc"

	loginFlowTTL = 10 * time.Minute
	cliCodeTTL   = 2 * time.Minute
)

// newRP builds the relying party of cfg (nil when single sign-on is off),
// reading the client secret file. It does not contact the provider.
func newRP(cfg OIDCConfig) (*oidc.RP, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("OIDC client secret file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return nil, errors.New("the OIDC client secret file is empty")
	}
	scopes := []string{"email", "profile"}
	if cfg.AdminGroup != "" {
		scopes = append(scopes, "groups")
	}
	return oidc.New(oidc.Config{IssuerURL: cfg.IssuerURL, ClientID: cfg.ClientID, ClientSecret: secret, Scopes: scopes})
}

func (a *api) providerName() string {
	if n := a.cfg.OIDC.ProviderName; n != "" {
		return n
	}
	return DefaultOIDCProviderName
}

// authMethods: GET /api/v2/users/authmethods (no token).
func (a *api) authMethods(w http.ResponseWriter, _ *http.Request) {
	m := client.AuthMethods{Password: client.AuthMethod{Enabled: !a.cfg.DisablePasswordLogin}}
	if a.sso != nil {
		m.OIDC = client.OIDCAuthMethod{Enabled: true, Name: a.providerName()}
	}
	writeJSON(w, http.StatusOK, m)
}

// errPasswordDisabled answers password logins when they are off.
func (a *api) errPasswordDisabled() *apiError {
	return errorf(http.StatusForbidden, "password login is disabled on this server; sign in with %s (courier login, or the dashboard's button)", a.providerName())
}

var (
	errSSOOff = errorf(http.StatusNotFound, "single sign-on is not configured on this server")
	// errFlowGone is every reason a callback finds no flow: unknown, used
	// already, expired, or started in another browser.
	errFlowGone = errorf(http.StatusBadRequest, "this sign-in is unknown, already used, expired, or was started in another browser; start again")
)

// ssoError maps the relying party's errors to answers.
func (a *api) ssoError(err error) error {
	var (
		ae *apiError
		sr *identity.SSORefusal
	)
	switch {
	case errors.As(err, &ae):
		return err
	case errors.Is(err, identity.ErrSSOSuspended):
		return errSuspended
	case errors.As(err, &sr) && errors.Is(err, identity.ErrSSOLinkedElsewhere):
		return errorf(http.StatusConflict, "%s", sr.Message)
	case errors.As(err, &sr):
		return errorf(http.StatusForbidden, "%s", sr.Message)
	case errors.Is(err, oidc.ErrUnavailable):
		msg := "single sign-on is unavailable: the provider cannot be reached; try again in a minute"
		if !a.cfg.DisablePasswordLogin {
			msg += " (password login still works)"
		}
		return errorf(http.StatusServiceUnavailable, "%s", msg)
	case errors.Is(err, oidc.ErrNoDeviceFlow):
		return errorf(http.StatusNotImplemented, "the single sign-on provider offers no device authorization; use courier login without --device")
	case errors.Is(err, oidc.ErrRefused):
		return errorf(http.StatusUnauthorized, "%s", err.Error())
	}
	return err
}

// loginFlow is the data of a "login" flow.
type loginFlow struct {
	oidc.Flow
	// CLIRedirect, CLIChallenge and CLIState are set for a CLI sign-in.
	CLIRedirect  string `json:"cli_redirect,omitempty"`
	CLIChallenge string `json:"cli_challenge,omitempty"`
	CLIState     string `json:"cli_state,omitempty"`
}

// cliCode is the data of a "cli" flow.
type cliCode struct {
	UserID    string `json:"user_id"`
	Challenge string `json:"challenge"`
}

// deviceFlow is the data of a "device" flow.
type deviceFlow struct {
	DeviceCode string    `json:"device_code"`
	Expiry     time.Time `json:"expiry"`
	Interval   int64     `json:"interval"`
}

func flowKey(parts ...string) []byte {
	return hashToken(strings.Join(parts, "\x00"))
}

func (a *api) createFlow(ctx context.Context, kind string, key []byte, data any, ttl time.Duration) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode sign-in flow: %w", err)
	}
	now := a.cfg.stamp()
	if err := a.store.CreateOIDCFlow(ctx, store.OIDCFlow{KeyHash: key, Kind: kind, Data: b, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return fmt.Errorf("store sign-in flow: %w", err)
	}
	return nil
}

func (a *api) consumeFlow(ctx context.Context, kind string, key []byte, into any) error {
	f, err := a.store.ConsumeOIDCFlow(ctx, kind, key, a.cfg.now())
	if err != nil {
		return err
	}
	if err := json.Unmarshal(f.Data, into); err != nil {
		return fmt.Errorf("decode sign-in flow: %w", err)
	}
	return nil
}

var (
	pkceRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	stateRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{8,128}$`)
)

// cliRedirect checks the CLI's loopback address: http to 127.0.0.1 or
// [::1] with a port, nothing else (never a name, which DNS could point
// elsewhere).
func cliRedirect(s string) (string, error) {
	u, err := url.Parse(s)
	bad := errorf(http.StatusBadRequest, "redirect_uri must be http://127.0.0.1:PORT/… or http://[::1]:PORT/… (the CLI's loopback listener)")
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.RawQuery != "" || u.Port() == "" || len(s) > 256 {
		return "", bad
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return "", bad
	}
	return u.String(), nil
}

// redirectURL is the callback URL given to the provider.
func (a *api) redirectURL(r *http.Request) string {
	if a.cfg.OIDC.RedirectURL != "" {
		return a.cfg.OIDC.RedirectURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + oidcCallbackPath
}

// ssoProblem renders a refusal of a browser step.
func (a *api) ssoProblem(w http.ResponseWriter, r *http.Request, err error) {
	a.dash.Error(w, r, a.ssoError(err))
}

// errStartsLimited refuses a sign-in start over its address's budget.
type errStartsLimited struct{ retryAfter time.Duration }

func (e *errStartsLimited) Error() string { return "too many sign-in starts from this address" }

// limitSignInStart takes one start of r's client address (as login
// throttling sees it, through --trusted-proxies) from the limiter, before
// anything is stored: an unauthenticated flood cannot fill oidc_flows.
func (a *api) limitSignInStart(r *http.Request) error {
	if d := a.starts.Allow(a.cfg.LoginThrottle.ClientAddr(r), a.cfg.now()); d > 0 {
		a.log.Debug("sign-in start refused: over the address's budget", routeField(r), zap.Duration("retry_after", d))
		return &errStartsLimited{retryAfter: d}
	}
	return nil
}

// oidcStart: GET /login/oidc sends the browser to the provider. The CLI
// adds redirect_uri (its loopback listener), code_challenge (S256) and
// state.
func (a *api) oidcStart(w http.ResponseWriter, r *http.Request) {
	if a.sso == nil {
		a.ssoProblem(w, r, errSSOOff)
		return
	}
	q := r.URL.Query()
	var lf loginFlow
	if cr := q.Get("redirect_uri"); cr != "" || q.Has("code_challenge") {
		var err error
		if lf.CLIRedirect, err = cliRedirect(cr); err != nil {
			a.ssoProblem(w, r, err)
			return
		}
		lf.CLIChallenge, lf.CLIState = q.Get("code_challenge"), q.Get("state")
		if !pkceRE.MatchString(lf.CLIChallenge) || !stateRE.MatchString(lf.CLIState) ||
			(q.Has("code_challenge_method") && q.Get("code_challenge_method") != "S256") {
			a.ssoProblem(w, r, errorf(http.StatusBadRequest, "a CLI sign-in needs code_challenge (S256, 43 characters) and state (8-128 URL-safe characters)"))
			return
		}
	}
	authURL, state, f, err := a.sso.AuthCodeURL(r.Context(), a.redirectURL(r), "")
	if err != nil {
		a.log.Warn("single sign-on start failed", routeField(r), errField(err))
		a.ssoProblem(w, r, err)
		return
	}
	// Counted once it would store a flow (a start refused because the
	// provider is down stores nothing, and a person retrying is not
	// locked out by it).
	if err := a.limitSignInStart(r); err != nil {
		a.ssoProblem(w, r, err)
		return
	}
	binding, err := oidc.RandomString(32)
	if err != nil {
		a.ssoProblem(w, r, err)
		return
	}
	lf.Flow = f
	if err := a.createFlow(r.Context(), flowLogin, flowKey(state, binding), lf, loginFlowTTL); err != nil {
		a.ssoProblem(w, r, err)
		return
	}
	c := a.dash.Cookie(r, oidcBindCookie, binding, loginFlowTTL)
	c.Path = oidcCallbackPath
	http.SetCookie(w, c)
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// oidcCallback: GET /api/v2/users/oidc/callback, where the provider sends
// the browser back with a code (or an error).
func (a *api) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if a.sso == nil {
		a.ssoProblem(w, r, errSSOOff)
		return
	}
	q := r.URL.Query()
	clear := a.dash.Cookie(r, oidcBindCookie, "", -1)
	clear.Path = oidcCallbackPath
	http.SetCookie(w, clear)
	if e := q.Get("error"); e != "" {
		a.log.Warn("single sign-on refused by the provider", zap.String("error", truncate(e, 64)))
		a.ssoProblem(w, r, errorf(http.StatusUnauthorized, "the provider did not sign you in (%s); start again", truncate(e, 64)))
		return
	}
	state, code := q.Get("state"), q.Get("code")
	binding := ""
	if c, err := r.Cookie(oidcBindCookie); err == nil {
		binding = c.Value
	}
	if state == "" || code == "" || binding == "" || len(state) > 512 || len(binding) > 128 {
		a.log.Warn("single sign-on callback without state, code or browser binding")
		a.ssoProblem(w, r, errFlowGone)
		return
	}
	var lf loginFlow
	if err := a.consumeFlow(r.Context(), flowLogin, flowKey(state, binding), &lf); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			a.log.Warn("single sign-on callback for an unknown, used or expired flow")
			err = errFlowGone
		}
		a.ssoProblem(w, r, err)
		return
	}
	id, err := a.sso.Exchange(r.Context(), lf.Flow, code)
	var u store.User
	if err == nil {
		u, err = a.accounts.User(r.Context(), id)
	}
	if err != nil {
		a.log.Warn("single sign-on refused", errField(err))
		a.ssoProblem(w, r, err)
		return
	}
	if lf.CLIRedirect != "" {
		a.toCLI(w, r, u, lf)
		return
	}
	tok, err := a.startSession(r.Context(), u.ID)
	if err != nil {
		a.ssoProblem(w, r, err)
		return
	}
	a.log.Info("signed in with single sign-on", zap.String("user_id", u.ID), zap.String("username", u.Username))
	a.dash.SignedIn(w, r, tok)
}

// toCLI ends a CLI sign-in: a one-time code for the CLI's listener.
func (a *api) toCLI(w http.ResponseWriter, r *http.Request, u store.User, lf loginFlow) {
	skipAudit(r.Context()) // the sign-in is recorded when the CLI redeems the code
	code, err := oidc.RandomString(32)
	if err != nil {
		a.ssoProblem(w, r, err)
		return
	}
	if err := a.createFlow(r.Context(), flowCLI, flowKey(code), cliCode{UserID: u.ID, Challenge: lf.CLIChallenge}, cliCodeTTL); err != nil {
		a.ssoProblem(w, r, err)
		return
	}
	a.log.Info("signed in with single sign-on for the CLI", zap.String("user_id", u.ID), zap.String("username", u.Username))
	to, _ := url.Parse(lf.CLIRedirect) // checked at the start
	to.RawQuery = url.Values{"code": {code}, "state": {lf.CLIState}}.Encode()
	// Ask first rather than redirect: a link to /login/oidc with someone
	// else's loopback port (another user of a shared machine) would
	// otherwise complete silently when the provider signs in without a
	// prompt.
	a.dash.Render(w, r, http.StatusOK, "sso_cli", &web.Page{Title: "Sign in to the CLI",
		Body: &web.SSOCLI{Username: u.Username, Listener: to.Host, ContinueURL: to.String()}})
}

// oidcToken: POST /api/v2/users/oidc/token redeems a CLI code.
func (a *api) oidcToken(w http.ResponseWriter, r *http.Request) {
	if a.sso == nil {
		a.writeError(w, r, errSSOOff)
		return
	}
	var req client.OIDCTokenRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	bad := errorf(http.StatusBadRequest, "the code is unknown, used or expired, or the verifier does not match; run courier login again")
	if req.Code == "" || len(req.Code) > 128 || !pkceVerifierOK(req.CodeVerifier) {
		a.writeError(w, r, bad)
		return
	}
	var c cliCode
	if err := a.consumeFlow(r.Context(), flowCLI, flowKey(req.Code), &c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = bad
		}
		a.writeError(w, r, err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(oidc.S256(req.CodeVerifier)), []byte(c.Challenge)) != 1 {
		a.log.Warn("single sign-on code redeemed with the wrong PKCE verifier")
		a.writeError(w, r, bad)
		return
	}
	a.sessionFor(w, r, c.UserID)
}

// sessionFor answers 201 with a new session for userID, unless the user
// was suspended or deleted meanwhile.
func (a *api) sessionFor(w http.ResponseWriter, r *http.Request, userID string) {
	u, err := a.store.UserByID(r.Context(), userID)
	if errors.Is(err, store.ErrNotFound) {
		err = errorf(http.StatusUnauthorized, "the account was deleted")
	} else if err == nil && u.Suspended() {
		err = errSuspended
	}
	var tok string
	if err == nil {
		tok, err = a.startSession(r.Context(), userID)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, LoginResponse{SessionToken: tok})
}

// pkceVerifierOK: RFC 7636's 43-128 unreserved characters.
func pkceVerifierOK(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}

// oidcDeviceStart: POST /api/v2/users/oidc/device.
func (a *api) oidcDeviceStart(w http.ResponseWriter, r *http.Request) {
	if a.sso == nil {
		a.writeError(w, r, errSSOOff)
		return
	}
	// Counted before the provider is asked: a flood is not passed on.
	if err := a.limitSignInStart(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	d, err := a.sso.StartDevice(r.Context())
	if err != nil {
		a.log.Warn("device authorization start failed", errField(err))
		a.writeError(w, r, a.ssoError(err))
		return
	}
	handle, err := oidc.RandomString(32)
	if err == nil {
		err = a.createFlow(r.Context(), flowDevice, flowKey(handle),
			deviceFlow{DeviceCode: d.DeviceCode, Expiry: d.Expiry, Interval: d.Interval}, time.Until(d.Expiry))
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, client.OIDCDeviceStart{DeviceRequest: handle, UserCode: d.UserCode,
		VerificationURI: d.VerificationURI, VerificationURIComplete: d.VerificationURIComplete,
		Interval: d.Interval, ExpiresAt: d.Expiry.UTC().Format(time.RFC3339)})
}

// oidcDevicePoll: POST /api/v2/users/oidc/device/token asks the provider
// once. The flow is consumed while the provider is asked (so two polls of
// one handle cannot both win) and put back when it is still pending.
func (a *api) oidcDevicePoll(w http.ResponseWriter, r *http.Request) {
	if a.sso == nil {
		a.writeError(w, r, errSSOOff)
		return
	}
	var req client.OIDCDevicePoll
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	bad := errorf(http.StatusBadRequest, "the device sign-in is unknown, finished or expired; run courier login --device again")
	if req.DeviceRequest == "" || len(req.DeviceRequest) > 128 {
		a.writeError(w, r, bad)
		return
	}
	key := flowKey(req.DeviceRequest)
	var df deviceFlow
	if err := a.consumeFlow(r.Context(), flowDevice, key, &df); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = bad
		}
		a.writeError(w, r, err)
		return
	}
	id, err := a.sso.PollDevice(r.Context(), df.DeviceCode)
	var pe *oidc.PendingError
	if errors.As(err, &pe) || errors.Is(err, oidc.ErrUnavailable) {
		if pe != nil && pe.SlowDown {
			df.Interval += 5
		}
		if err := a.createFlow(r.Context(), flowDevice, key, df, time.Until(df.Expiry)); err != nil {
			a.writeError(w, r, err)
			return
		}
		skipAudit(r.Context()) // still waiting: not a decision
		writeJSON(w, http.StatusAccepted, client.OIDCDeviceToken{Pending: true, Interval: df.Interval})
		return
	}
	var u store.User
	if err == nil {
		u, err = a.accounts.User(r.Context(), id)
	}
	if err != nil {
		a.log.Warn("device sign-in refused", errField(err))
		a.writeError(w, r, a.ssoError(err))
		return
	}
	a.log.Info("signed in with single sign-on (device)", zap.String("user_id", u.ID), zap.String("username", u.Username))
	a.sessionFor(w, r, u.ID)
}

// loginPage is the body of the login page for this server's sign-in
// methods.
func (a *api) loginPage(login, msg string) *web.Login {
	l := &web.Login{Login: login, Error: msg, PasswordDisabled: a.cfg.DisablePasswordLogin}
	if a.sso != nil {
		l.SSOName = a.providerName()
	}
	return l
}
