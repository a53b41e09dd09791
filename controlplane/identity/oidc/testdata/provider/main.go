// Command provider is a small OpenID provider for Courier's tests, built on
// github.com/zitadel/oidc/v3/pkg/op. It serves discovery, JWKS, the
// authorization endpoint (which signs a configured user in at once, with no
// form), the token endpoint and the device authorization grant over real
// HTTP, so that the relying party under test really fetches keys and checks
// signatures.
//
// It listens on -listen (default 127.0.0.1:0) and prints its issuer URL as
// the first line of standard output. Test knobs, changed at run time:
//
//	POST /test/config  user=NAME (who the next sign-in is)
//	                   mode=normal|wrong-audience|expired|bad-signature
//	POST /test/rotate  publish a new signing key (the old one stays in the
//	                   JWKS) and sign with it from now on
//	GET  /device?user_code=CODE  approve a device authorization as the
//	                   configured user (what a person does in a browser)
//
// It lives in its own module under testdata so that its dependencies stay
// out of Courier's go.mod.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// user is a person the provider signs in.
type user struct {
	Subject, Username, Email string
	Verified                 bool
	Groups                   []string
}

// parseUser reads "sub=u1,username=alice,email=a@x,verified=true,groups=a;b".
func parseUser(s string) (user, error) {
	u := user{Verified: true}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return u, fmt.Errorf("user %q: %q is not key=value", s, kv)
		}
		switch k {
		case "sub":
			u.Subject = v
		case "username":
			u.Username = v
		case "email":
			u.Email = v
		case "verified":
			u.Verified = v == "true"
		case "groups":
			if v != "" {
				u.Groups = strings.Split(v, ";")
			}
		default:
			return u, fmt.Errorf("user %q: unknown key %q", s, k)
		}
	}
	if u.Subject == "" {
		return u, fmt.Errorf("user %q: sub is required", s)
	}
	return u, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Token modes (POST /test/config mode=…).
const (
	modeNormal        = "normal"
	modeWrongAudience = "wrong-audience"
	modeExpired       = "expired"
	modeBadSignature  = "bad-signature"
)

// signingKey is an RSA key with its key id.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is a published key of the JWKS.
type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func newKey(id string) signingKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	return signingKey{id: id, key: k}
}

// authRequest is an authorization request in progress.
type authRequest struct {
	id       string
	req      *oidc.AuthRequest
	subject  string
	authTime time.Time
	audience []string
	code     string
}

func (a *authRequest) GetID() string          { return a.id }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string  { return a.audience }
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }
func (a *authRequest) GetClientID() string    { return a.req.ClientID }
func (a *authRequest) GetNonce() string       { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.req.RedirectURI }
func (a *authRequest) GetScopes() []string    { return a.req.Scopes }
func (a *authRequest) GetState() string       { return a.req.State }
func (a *authRequest) GetSubject() string     { return a.subject }
func (a *authRequest) Done() bool             { return a.subject != "" }
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return a.req.ResponseMode
}
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return a.req.ResponseType
}
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

// device is a device authorization in progress.
type device struct {
	userCode string
	state    op.DeviceAuthorizationState
}

// storage is the provider's op.Storage, all in memory.
type storage struct {
	clientID, secret string
	redirects        []string

	mu       sync.Mutex
	users    map[string]user // by subject
	next     string          // subject of the next sign-in
	mode     string
	keys     []signingKey // published; the last one signs
	rogue    signingKey   // signs in bad-signature mode, never published
	requests map[string]*authRequest
	tokens   map[string]string  // access token id → subject
	devices  map[string]*device // by device code
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var errNotFound = errors.New("not found")

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{id: randomID(), req: req, audience: []string{req.ClientID}}
	s.requests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.requests {
		if a.code != "" && a.code == code {
			return a, nil
		}
	}
	return nil, errNotFound
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok {
		return errNotFound
	}
	a.code = code
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := randomID()
	s.tokens[id] = req.GetSubject()
	return id, time.Now().Add(5 * time.Minute), nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == modeBadSignature {
		// The same key id as the published key, other key material: only
		// a signature check tells them apart.
		return signingKey{id: s.keys[len(s.keys)-1].id, key: s.rogue.key}, nil
	}
	return s.keys[len(s.keys)-1], nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.clientID {
		return nil, errNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lifetime := 5 * time.Minute
	if s.mode == modeExpired {
		lifetime = -time.Hour
	}
	return &client{id: id, redirects: s.redirects, lifetime: lifetime}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.secret)) != 1 {
		return errors.New("wrong client id or secret")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.userinfo(info, req.GetSubject(), scopes)
}

func (s *storage) userinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	u, ok := s.users[subject]
	s.mu.Unlock()
	if !ok {
		return errNotFound
	}
	info.Subject = u.Subject
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, oidc.Bool(u.Verified)
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
		case "groups":
			info.AppendClaims("groups", u.Groups)
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	return s.userinfo(info, subject, []string{oidc.ScopeEmail, oidc.ScopeProfile, "groups"})
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// StoreDeviceAuthorization implements op.DeviceAuthorizationStorage.
func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == userCode {
			return op.ErrDuplicateUserCode
		}
	}
	s.devices[deviceCode] = &device{userCode: userCode, state: op.DeviceAuthorizationState{
		ClientID: clientID, Audience: []string{clientID}, Scopes: scopes, Expires: expires}}
	return nil
}

// GetDeviceAuthorizatonState implements op.DeviceAuthorizationStorage.
func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceCode]
	if !ok || d.state.ClientID != clientID {
		return nil, errNotFound
	}
	st := d.state
	return &st, nil
}

// client is the one registered client, the relying party under test.
type client struct {
	id        string
	redirects []string
	lifetime  time.Duration
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return nil }
func (c *client) RedirectURIGlobs() []string       { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) PostLogoutRedirectURIGlobs() []string {
	return nil
}
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeDeviceCode}
}
func (c *client) LoginURL(id string) string            { return "/signin?id=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.lifetime }
func (c *client) DevMode() bool                        { return true } // http redirect URIs
func (c *client) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// wrongAudience wraps the token endpoint: in wrong-audience mode it
// re-signs the ID token, with the provider's real key, for another
// audience. (op always adds the requesting client to aud, so this is the
// only way to mint such a token.)
func (s *storage) wrongAudience(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		mode, key := s.mode, s.keys[len(s.keys)-1]
		s.mu.Unlock()
		if mode != modeWrongAudience {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err == nil {
			if raw, ok := body["id_token"].(string); ok {
				if tok, err := reAudience(raw, key); err == nil {
					body["id_token"] = tok
				} else {
					log.Printf("re-sign: %v", err)
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_ = json.NewEncoder(w).Encode(body)
	})
}

func reAudience(raw string, key signingKey) (string, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return "", err
	}
	claims["aud"], claims["azp"] = []string{"some-other-client"}, "some-other-client"
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.key},
		(&jose.SignerOptions{}).WithHeader("kid", key.id).WithType("JWT"))
	if err != nil {
		return "", err
	}
	out, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return out.CompactSerialize()
}

func main() {
	var users, redirects multiFlag
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	clientID := flag.String("client-id", "courier", "the client id")
	secret := flag.String("client-secret", "", "the client secret")
	defaultUser := flag.String("default-user", "", "subject of the user signed in (else the first -user)")
	flag.Var(&users, "user", "a user: sub=ID,username=NAME,email=ADDR,verified=true,groups=G1;G2 (repeat)")
	flag.Var(&redirects, "redirect-uri", "an allowed redirect URI; path.Match globs allowed (repeat)")
	flag.Parse()

	s := &storage{clientID: *clientID, secret: *secret, redirects: redirects, mode: modeNormal,
		users: map[string]user{}, requests: map[string]*authRequest{}, tokens: map[string]string{},
		devices: map[string]*device{}, keys: []signingKey{newKey("key-1")}, rogue: newKey("rogue")}
	for _, spec := range users {
		u, err := parseUser(spec)
		if err != nil {
			log.Fatal(err)
		}
		s.users[u.Subject] = u
		if s.next == "" {
			s.next = u.Subject
		}
	}
	if *defaultUser != "" {
		s.next = *defaultUser
	}
	for _, r := range redirects {
		if _, err := path.Match(r, ""); err != nil {
			log.Fatalf("redirect URI %q: %v", r, err)
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	cryptoKey := sha256.Sum256([]byte(*secret + "courier-test-provider"))
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:      cryptoKey,
		CodeMethodS256: true,
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime: 5 * time.Minute, PollInterval: time.Second,
			UserFormPath: "/device", UserCode: op.UserCodeBase20,
		},
	}, s, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		log.Fatal(err)
	}
	callback := op.AuthCallbackURL(provider)

	mux := http.NewServeMux()
	// The login step: sign the configured user in at once.
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		s.mu.Lock()
		a, ok := s.requests[id]
		if ok {
			a.subject, a.authTime = s.next, time.Now()
			if hint := a.req.LoginHint; hint != "" {
				if _, known := s.users[hint]; known {
					a.subject = hint
				}
			}
		}
		s.mu.Unlock()
		if !ok {
			http.Error(w, "unknown auth request", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	})
	mux.HandleFunc("GET /device", func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("user_code")
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range s.devices {
			if d.userCode == code && code != "" {
				d.state.Done, d.state.Subject, d.state.AuthTime = true, s.next, time.Now()
				d.state.AMR = []string{"pwd"}
				fmt.Fprintln(w, "device approved")
				return
			}
		}
		http.Error(w, "unknown user code", http.StatusNotFound)
	})
	mux.HandleFunc("POST /test/config", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if u := r.FormValue("user"); u != "" {
			if _, ok := s.users[u]; !ok {
				http.Error(w, "unknown user", http.StatusBadRequest)
				return
			}
			s.next = u
		}
		if m := r.FormValue("mode"); m != "" {
			if !slices.Contains([]string{modeNormal, modeWrongAudience, modeExpired, modeBadSignature}, m) {
				http.Error(w, "unknown mode", http.StatusBadRequest)
				return
			}
			s.mode = m
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /test/rotate", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		k := newKey(fmt.Sprintf("key-%d", len(s.keys)+1))
		s.keys = append(s.keys, k)
		fmt.Fprintln(w, k.id)
	})
	mux.Handle("/", provider)
	mux.Handle("/oauth/token", s.wrongAudience(provider))

	fmt.Println(issuer)
	_ = os.Stdout.Sync()
	log.Fatal(http.Serve(ln, mux))
}
