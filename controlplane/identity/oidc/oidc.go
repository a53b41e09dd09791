// Package oidc is Courier's OpenID Connect relying party: it sends people
// to the provider (the authorization code flow with PKCE S256, a state and
// a nonce), turns the code that comes back into a verified identity (the ID
// token's signature checked against the provider's JWKS, its issuer,
// audience, expiry and nonce checked, with a bounded clock skew, and the
// e-mail required to be verified), and runs the device authorization grant
// for machines without a browser.
//
// It stores nothing: the caller keeps a Flow between the redirect and the
// callback (Courier keeps it in the database, so it is single-use across
// replicas) and decides what an Identity may do. Discovery happens on first
// use, not at start: while the provider is unreachable every call returns
// an error wrapping ErrUnavailable and the next call tries again.
//
// No error or log field of this package holds the client secret, a code,
// an access token or an ID token.
package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors callers tell apart.
var (
	// ErrUnavailable: the provider could not be reached or its discovery
	// document is unusable. Try again later.
	ErrUnavailable = errors.New("the single sign-on provider is unavailable")
	// ErrRefused: the provider's answer is not a sign-in Courier accepts
	// (a bad signature, wrong audience, expired token, unverified e-mail…).
	ErrRefused = errors.New("single sign-on refused")
	// ErrPending: a device authorization is not approved yet; poll again
	// after the interval (slow down if SlowDown is set on the error).
	ErrPending = errors.New("the device authorization is not approved yet")
	// ErrNoDeviceFlow: the provider offers no device authorization
	// endpoint.
	ErrNoDeviceFlow = errors.New("the single sign-on provider offers no device authorization")
)

// DefaultClockSkew is how far the provider's clock may be from ours: an ID
// token is accepted up to this long after its exp and refused when issued
// (iat) further than this in the future. (go-oidc itself allows 5 minutes
// on nbf.)
const DefaultClockSkew = time.Minute

// discoveryTimeout bounds one attempt at discovery.
const discoveryTimeout = 10 * time.Second

// Config configures a relying party.
type Config struct {
	// IssuerURL is the provider's issuer (its discovery document is at
	// IssuerURL/.well-known/openid-configuration).
	IssuerURL string
	// ClientID and ClientSecret are Courier's registration at the
	// provider.
	ClientID     string
	ClientSecret string
	// Scopes asked for besides "openid". Default: email, profile.
	Scopes []string
	// ClockSkew; default DefaultClockSkew.
	ClockSkew time.Duration
	// HTTPClient talks to the provider; default one with a 15s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// RetryInterval is how long after a failed discovery every call fails
	// at once with ErrUnavailable instead of trying again (so a provider
	// that does not answer cannot hold up a queue of sign-ins). Default
	// DefaultRetryInterval.
	RetryInterval time.Duration
}

// DefaultRetryInterval is Config.RetryInterval's default.
const DefaultRetryInterval = 2 * time.Second

// RP is a relying party. It is safe for concurrent use.
type RP struct {
	cfg Config

	mu       sync.Mutex // serializes discovery
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	failedAt time.Time // of the last failed discovery
	failure  error
}

// New returns a relying party for cfg. It does not contact the provider.
func New(cfg Config) (*RP, error) {
	u, err := url.Parse(cfg.IssuerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("the issuer URL must be an http(s) URL")
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("a client id and a client secret are required")
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"email", "profile"}
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	return &RP{cfg: cfg}, nil
}

func (rp *RP) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, rp.cfg.HTTPClient)
}

// discover returns the provider, fetching its discovery document on first
// use (and after a failure).
func (rp *RP) discover(ctx context.Context) (*gooidc.Provider, *gooidc.IDTokenVerifier, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.provider != nil {
		return rp.provider, rp.verifier, nil
	}
	if rp.failure != nil && time.Since(rp.failedAt) < rp.cfg.RetryInterval {
		return nil, nil, rp.failure
	}
	dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	p, err := gooidc.NewProvider(rp.ctx(dctx), rp.cfg.IssuerURL)
	if err != nil {
		rp.failedAt = time.Now()
		rp.failure = fmt.Errorf("%w: discovery at %s: %v", ErrUnavailable, rp.cfg.IssuerURL, err)
		return nil, nil, rp.failure
	}
	// The key set outlives this request: it fetches with the configured
	// client, on a context that is never cancelled.
	rp.provider = p
	rp.verifier = p.VerifierContext(rp.ctx(context.Background()), &gooidc.Config{
		ClientID: rp.cfg.ClientID,
		// An exp up to ClockSkew in the past is still accepted.
		Now: func() time.Time { return rp.cfg.Now().Add(-rp.cfg.ClockSkew) },
	})
	return p, rp.verifier, nil
}

// Ready reports whether discovery has succeeded, trying it if not.
func (rp *RP) Ready(ctx context.Context) error {
	_, _, err := rp.discover(ctx)
	return err
}

func (rp *RP) oauth2(p *gooidc.Provider, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: rp.cfg.ClientID, ClientSecret: rp.cfg.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: redirectURL,
		Scopes: append([]string{gooidc.ScopeOpenID}, rp.cfg.Scopes...),
	}
}

// Flow is what the caller keeps between the redirect to the provider and
// the callback. Nonce and Verifier are secrets: keep them server-side.
type Flow struct {
	Nonce       string `json:"nonce"`
	Verifier    string `json:"verifier"`
	RedirectURL string `json:"redirect_url"`
}

// RandomString returns n random bytes, base64url without padding.
func RandomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(randReader, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// AuthCodeURL starts a sign-in: it returns the provider URL to send the
// browser to, the state to expect back, and the Flow to keep. redirectURL
// is Courier's callback as registered at the provider. loginHint, when not
// empty, is passed as login_hint.
func (rp *RP) AuthCodeURL(ctx context.Context, redirectURL, loginHint string) (authURL, state string, f Flow, err error) {
	p, _, err := rp.discover(ctx)
	if err != nil {
		return "", "", Flow{}, err
	}
	if state, err = RandomString(32); err != nil {
		return "", "", Flow{}, err
	}
	if f.Nonce, err = RandomString(32); err != nil {
		return "", "", Flow{}, err
	}
	f.Verifier, f.RedirectURL = oauth2.GenerateVerifier(), redirectURL
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	return rp.oauth2(p, redirectURL).AuthCodeURL(state, opts...), state, f, nil
}

// Identity is who the provider says signed in, after every check.
type Identity struct {
	Issuer            string
	Subject           string
	Email             string // verified
	PreferredUsername string
	Groups            []string
}

// claims are the ID token claims Courier reads.
type claims struct {
	Email             string    `json:"email"`
	EmailVerified     *flexBool `json:"email_verified"`
	PreferredUsername string    `json:"preferred_username"`
	Groups            []string  `json:"groups"`
	IssuedAt          *float64  `json:"iat"`
}

// flexBool is a JSON boolean, or the strings "true" and "false" that some
// providers (Amazon Cognito) send instead.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null":
		*b = false
	default:
		return fmt.Errorf("email_verified is %s, not a boolean", truncate(string(data), 16))
	}
	return nil
}

// refused wraps ErrRefused with a reason that holds no token.
func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Exchange finishes a sign-in: it redeems code (with f's PKCE verifier) at
// the provider's token endpoint and verifies the ID token, including that
// its nonce is f.Nonce. The caller has already matched the state.
func (rp *RP) Exchange(ctx context.Context, f Flow, code string) (Identity, error) {
	p, v, err := rp.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := rp.oauth2(p, f.RedirectURL).Exchange(rp.ctx(ctx), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, tokenError(err)
	}
	return rp.verify(ctx, v, tok, f.Nonce)
}

// tokenError describes a failed token request without its body's secrets:
// the OAuth error code only.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" && re.Response != nil {
			code = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		}
		return refused("the provider refused the code (%s)", code)
	}
	return fmt.Errorf("%w: token request failed", ErrUnavailable)
}

func (rp *RP) verify(ctx context.Context, v *gooidc.IDTokenVerifier, tok *oauth2.Token, nonce string) (Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, refused("the provider sent no ID token")
	}
	idt, err := v.Verify(rp.ctx(ctx), raw)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		switch {
		case errors.As(err, &exp):
			return Identity{}, refused("the ID token expired at %s", exp.Expiry.UTC().Format(time.RFC3339))
		case strings.Contains(err.Error(), "fetching keys"):
			return Identity{}, fmt.Errorf("%w: the provider's keys could not be fetched", ErrUnavailable)
		case strings.Contains(err.Error(), "audience"):
			return Identity{}, refused("the ID token is for another client (audience)")
		case strings.Contains(err.Error(), "signature"):
			return Identity{}, refused("the ID token's signature does not verify against the provider's keys")
		case strings.Contains(err.Error(), "issuer"):
			return Identity{}, refused("the ID token is from another issuer")
		}
		return Identity{}, refused("the ID token does not verify")
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, refused("the ID token's nonce does not match this sign-in")
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return Identity{}, refused("the ID token's claims are malformed")
	}
	if c.IssuedAt != nil {
		iat := time.Unix(int64(*c.IssuedAt), 0)
		if iat.After(rp.cfg.Now().Add(rp.cfg.ClockSkew)) {
			return Identity{}, refused("the ID token is issued in the future (clock skew over %s)", rp.cfg.ClockSkew)
		}
	}
	if c.Email == "" {
		return Identity{}, refused("the provider sent no e-mail address (is the email scope granted?)")
	}
	if c.EmailVerified == nil || !*c.EmailVerified {
		return Identity{}, refused("the provider has not verified the e-mail address %s", c.Email)
	}
	return Identity{Issuer: idt.Issuer, Subject: idt.Subject, Email: c.Email,
		PreferredUsername: c.PreferredUsername, Groups: c.Groups}, nil
}

// Device is a device authorization the provider started. DeviceCode is a
// secret of the server; the rest is shown to the person.
type Device struct {
	DeviceCode              string    `json:"device_code"`
	UserCode                string    `json:"user_code"`
	VerificationURI         string    `json:"verification_uri"`
	VerificationURIComplete string    `json:"verification_uri_complete,omitempty"`
	Expiry                  time.Time `json:"expiry"`
	Interval                int64     `json:"interval"`
}

// StartDevice starts the device authorization grant (RFC 8628).
func (rp *RP) StartDevice(ctx context.Context) (Device, error) {
	p, _, err := rp.discover(ctx)
	if err != nil {
		return Device{}, err
	}
	if p.Endpoint().DeviceAuthURL == "" {
		return Device{}, ErrNoDeviceFlow
	}
	da, err := rp.oauth2(p, "").DeviceAuth(rp.ctx(ctx))
	if err != nil {
		return Device{}, tokenError(err)
	}
	d := Device{DeviceCode: da.DeviceCode, UserCode: da.UserCode, VerificationURI: da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete, Expiry: da.Expiry, Interval: da.Interval}
	if d.Interval <= 0 {
		d.Interval = 5
	}
	if d.Expiry.IsZero() {
		d.Expiry = rp.cfg.Now().Add(10 * time.Minute)
	}
	return d, nil
}

// PendingError is ErrPending, with SlowDown set when the provider asked
// for a longer interval.
type PendingError struct{ SlowDown bool }

func (e *PendingError) Error() string { return ErrPending.Error() }

// Unwrap makes errors.Is(err, ErrPending) true.
func (e *PendingError) Unwrap() error { return ErrPending }

// PollDevice asks the provider once whether the device authorization of
// deviceCode is approved: the verified Identity when it is, a
// *PendingError while it is not, ErrRefused when it was denied or expired.
func (rp *RP) PollDevice(ctx context.Context, deviceCode string) (Identity, error) {
	p, v, err := rp.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Endpoint().TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Identity{}, fmt.Errorf("device token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(rp.cfg.ClientID), url.QueryEscape(rp.cfg.ClientSecret))
	resp, err := rp.cfg.HTTPClient.Do(req)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: device token request failed", ErrUnavailable)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		IDToken     string `json:"id_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return Identity{}, refused("the provider's device token answer is malformed (HTTP %d)", resp.StatusCode)
	}
	switch body.Error {
	case "":
	case "authorization_pending":
		return Identity{}, &PendingError{}
	case "slow_down":
		return Identity{}, &PendingError{SlowDown: true}
	case "access_denied":
		return Identity{}, refused("the sign-in was denied at the provider")
	case "expired_token":
		return Identity{}, refused("the device code expired; start again")
	default:
		return Identity{}, refused("the provider refused the device code (%s)", truncate(body.Error, 64))
	}
	tok := (&oauth2.Token{AccessToken: body.AccessToken, TokenType: body.TokenType}).
		WithExtra(map[string]any{"id_token": body.IDToken})
	return rp.verify(ctx, v, tok, "")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// S256 is the PKCE S256 challenge of verifier (RFC 7636).
func S256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
