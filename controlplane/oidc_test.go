package controlplane

import (
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/identity/oidc"
	"github.com/courierhq/courier/controlplane/identity/oidc/oidctest"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

const (
	ssoClientID = "courier-test"
	ssoSecret   = "OIDC-CLIENT-SECRET-canary-5be1"
	ssoGroup    = "courier-admins"
)

// ssoUsers are the provider's people.
var ssoUsers = []oidctest.User{
	{Subject: "sub-ada", Username: "ada", Email: "ada@example.com", Groups: []string{ssoGroup}},
	{Subject: "sub-alice", Username: "alice.sso", Email: "alice@example.com"},
	{Subject: "sub-carol", Username: "root", Email: "carol@example.com"},
	{Subject: "sub-dave", Username: "dave", Email: "dave@example.com"},
	{Subject: "sub-bob", Username: "bob", Email: "bob@example.com", Unverified: true},
	{Subject: "sub-eve", Username: "eve", Email: "eve@evil.test"},
	{Subject: "sub-sam", Username: "sam", Email: "sam@example.com"},
}

func startSSOProvider(t *testing.T, listen string) *oidctest.Provider {
	return oidctest.Start(t, oidctest.Options{ClientID: ssoClientID, ClientSecret: ssoSecret,
		RedirectURIs: []string{"http://127.0.0.1:*/api/v2/users/oidc/callback", "http://127.0.0.1:*/api/v2/users/oidc/callback?*"},
		Users:        ssoUsers, Listen: listen})
}

// withSSO configures single sign-on against issuer.
func withSSO(t *testing.T, issuer string) func(*Config) {
	f := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(f, []byte(ssoSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *Config) {
		c.OIDC = OIDCConfig{IssuerURL: issuer, ClientID: ssoClientID, ClientSecretFile: f,
			AdminGroup: ssoGroup, AllowedEmailDomains: []string{"example.com"}, ProviderName: "Test IdP"}
	}
}

// ssoBrowser is a browser that follows redirects between the server and
// the provider, keeping cookies, and records every URL it visits.
type ssoBrowser struct {
	ts      *testServer
	c       *http.Client
	visited []string
	// stopAt, when it matches a redirect target, ends the walk there.
	stopAt func(*url.URL) bool
	last   *url.URL
}

func newSSOBrowser(ts *testServer) *ssoBrowser {
	jar, _ := cookiejar.New(nil)
	b := &ssoBrowser{ts: ts}
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		b.visited = append(b.visited, req.URL.String())
		b.last = req.URL
		if b.stopAt != nil && b.stopAt(req.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *ssoBrowser) get(rawURL string) resp {
	b.ts.t.Helper()
	b.visited = append(b.visited, rawURL)
	res, err := b.c.Get(rawURL)
	if err != nil {
		b.ts.t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.ts.bodiesMu.Lock()
	b.ts.bodies.Write(body)
	b.ts.bodiesMu.Unlock()
	return resp{status: res.StatusCode, body: body, header: res.Header}
}

// signIn runs the whole dashboard sign-in as subject and returns the last
// page and the session cookie ("" when none was set).
func (b *ssoBrowser) signIn(p *oidctest.Provider, subject string) (resp, string) {
	b.ts.t.Helper()
	p.SetUser(b.ts.t, subject)
	r := b.get(b.ts.URL() + "/login/oidc")
	return r, b.session()
}

func (b *ssoBrowser) session() string {
	u, _ := url.Parse(b.ts.URL())
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == dashCookie {
			return c.Value
		}
	}
	return ""
}

// jwtRE matches a JWT (an ID token) anywhere.
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`)

// checkNoLeaks: no client secret, session token or ID token in the logs
// or the URLs visited.
func checkNoLeaks(t *testing.T, ts *testServer, urls []string, tokens ...string) {
	t.Helper()
	logs := ts.logs.String()
	for _, s := range append(tokens, ssoSecret) {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			t.Errorf("a secret or token is in the server log")
		}
		for _, u := range urls {
			if strings.Contains(u, s) {
				t.Errorf("a secret or token is in the URL %s", u)
			}
		}
	}
	if jwtRE.MatchString(logs) {
		t.Error("an ID token (JWT) is in the server log")
	}
	for _, u := range urls {
		if jwtRE.MatchString(u) {
			t.Errorf("an ID token (JWT) is in the URL %s", u)
		}
	}
}

func userNamed(t *testing.T, ts *testServer, name string) store.User {
	t.Helper()
	u, err := ts.api.store.UserByUsername(context.Background(), name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	return u
}

func TestOIDCDashboardSignIn(t *testing.T) {
	p := startSSOProvider(t, "")
	ts := newTestServer(t, withSSO(t, p.URL))
	people := ts.setup() // root (admin), alice and bob with passwords
	// dave: a local admin who is not in the admin group.
	ts.want(ts.do("POST", "/api/v2/users", people.admin, map[string]any{
		"username": "dave", "email": "dave@example.com", "password": testPassword, "admin": true}), 201)

	// The route's name is not a username anyone can take.
	ts.want(ts.do("POST", "/api/v2/users", people.admin, map[string]any{
		"username": "AuthMethods", "email": "am@example.com", "password": testPassword}), 400)
	var am client.AuthMethods
	ts.want(ts.do("GET", "/api/v2/users/authmethods", "", nil), 200).json(t, &am)
	if !am.Password.Enabled || !am.OIDC.Enabled || am.OIDC.Name != "Test IdP" {
		t.Fatalf("authmethods = %+v", am)
	}
	login := wantPage(t, ts.browser().get("/login"), 200)
	if !strings.Contains(login, `href="/login/oidc"`) || !strings.Contains(login, "Sign in with Test IdP") ||
		!strings.Contains(login, `name="password"`) {
		t.Fatalf("login page lacks the sign-in link or the password form:\n%s", login)
	}

	// First sign-in creates ada, an admin by the group, with no password.
	b := newSSOBrowser(ts)
	r, tok := b.signIn(p, "sub-ada")
	page := wantPage(t, r, 200)
	if tok == "" || b.last == nil || b.last.Path != "/account/secrets" || !strings.Contains(page, "ada") {
		t.Fatalf("sign-in ended at %v with status %d, session %t", b.last, r.status, tok != "")
	}
	ada := userNamed(t, ts, "ada")
	if !ada.IsAdmin() || len(ada.PasswordHash) != 0 || ada.OIDCIssuer != p.URL || ada.OIDCSubject != "sub-ada" || ada.Email != "ada@example.com" {
		t.Fatalf("ada = %v admin=%t issuer=%q subject=%q", ada, ada.IsAdmin(), ada.OIDCIssuer, ada.OIDCSubject)
	}
	var me UserResponse
	ts.want(ts.do("GET", "/api/v2/users/me", tok, nil), 200).json(t, &me)
	if me.ID != ada.ID {
		t.Fatalf("the session is %s's, want ada's", me.Username)
	}
	// No password matches a passwordless user.
	ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": "ada", "password": ""}), 400)
	ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": "ada", "password": testPassword}), 401)
	checkNoLeaks(t, ts, b.visited, tok)

	// A second sign-in finds the same user.
	b2 := newSSOBrowser(ts)
	if _, tok2 := b2.signIn(p, "sub-ada"); tok2 == "" || tok2 == tok {
		t.Fatal("a second sign-in did not start a new session")
	}
	users, err := ts.api.store.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 5 { // root, alice, bob, dave, ada
		t.Fatalf("%d users after two sign-ins of ada, want 5", len(users))
	}

	// alice has a local account with the same verified e-mail: linked, not
	// doubled, and her username stays.
	if _, tok := newSSOBrowser(ts).signIn(p, "sub-alice"); tok == "" {
		t.Fatal("alice's sign-in failed")
	}
	alice := userNamed(t, ts, "alice")
	if alice.ID != people.aliceID || alice.OIDCSubject != "sub-alice" || len(alice.PasswordHash) == 0 {
		t.Fatalf("alice was not linked in place: %v subject=%q", alice, alice.OIDCSubject)
	}
	if _, err := ts.api.store.UserByUsername(context.Background(), "alice.sso"); err == nil {
		t.Fatal("a second account was made for alice")
	}
	ts.login("alice", testPassword) // her password still works

	// carol's preferred_username "root" is taken: she becomes root-2.
	if _, tok := newSSOBrowser(ts).signIn(p, "sub-carol"); tok == "" {
		t.Fatal("carol's sign-in failed")
	}
	if c := userNamed(t, ts, "root-2"); c.Email != "carol@example.com" || c.IsAdmin() {
		t.Fatalf("root-2 = %v admin=%t", c, c.IsAdmin())
	}

	// dave, an admin outside the admin group, is a member after signing in.
	if _, tok := newSSOBrowser(ts).signIn(p, "sub-dave"); tok == "" {
		t.Fatal("dave's sign-in failed")
	}
	if d := userNamed(t, ts, "dave"); d.IsAdmin() || d.OIDCSubject != "sub-dave" {
		t.Fatalf("dave admin=%t subject=%q, want a linked member", d.IsAdmin(), d.OIDCSubject)
	}

	// Key rotation at the provider: the next sign-in verifies with the new key.
	p.Rotate(t)
	if _, tok := newSSOBrowser(ts).signIn(p, "sub-ada"); tok == "" {
		t.Fatal("sign-in after key rotation failed")
	}
	checkNoLeaks(t, ts, nil, tok)
}

func TestOIDCRefusals(t *testing.T) {
	p := startSSOProvider(t, "")
	ts := newTestServer(t, withSSO(t, p.URL))
	ts.setup()
	ctx := context.Background()
	// sam exists and is suspended.
	newSSOBrowser(ts).signIn(p, "sub-sam")
	sam := userNamed(t, ts, "sam")
	if _, err := ts.api.store.UpdateUser(ctx, sam.ID, func(u *store.User) error { u.SuspendedAt = time.Now(); return nil }); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, mode, subject string
		status              int
		want                string
	}{
		{"wrong audience", oidctest.ModeWrongAudience, "sub-ada", 401, "audience"},
		{"expired ID token", oidctest.ModeExpired, "sub-ada", 401, "expired"},
		{"bad signature", oidctest.ModeBadSignature, "sub-ada", 401, "signature"},
		{"unverified e-mail", oidctest.ModeNormal, "sub-bob", 401, "not verified"},
		{"e-mail domain not allowed", oidctest.ModeNormal, "sub-eve", 403, "evil.test may not sign in"},
		{"suspended user", oidctest.ModeNormal, "sub-sam", 401, "suspended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.SetMode(t, tc.mode)
			defer p.SetMode(t, oidctest.ModeNormal)
			before, err := ts.api.store.ListUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b := newSSOBrowser(ts)
			r, tok := b.signIn(p, tc.subject)
			page := wantPage(t, r, tc.status)
			if tok != "" {
				t.Fatal("a refused sign-in set a session cookie")
			}
			if !strings.Contains(page, tc.want) {
				t.Fatalf("the page does not say %q:\n%s", tc.want, page)
			}
			after, _ := ts.api.store.ListUsers(ctx)
			if len(after) != len(before) {
				t.Fatalf("a refused sign-in created a user (%d → %d)", len(before), len(after))
			}
			checkNoLeaks(t, ts, b.visited)
		})
	}

	// Replayed state: the callback URL, used once, is refused the second
	// time, in the same browser or another.
	t.Run("replayed state", func(t *testing.T) {
		p.SetUser(t, "sub-ada")
		b := newSSOBrowser(ts)
		var callback string
		b.stopAt = func(u *url.URL) bool {
			if u.Path == oidcCallbackPath && callback == "" {
				callback = u.String()
				return true
			}
			return false
		}
		b.get(ts.URL() + "/login/oidc")
		if callback == "" {
			t.Fatal("never reached the callback")
		}
		thief := newSSOBrowser(ts)
		page := wantPage(t, thief.get(callback), 400) // another browser: no binding cookie
		if !strings.Contains(page, "another browser") || thief.session() != "" {
			t.Fatalf("a callback URL worked in another browser:\n%s", page)
		}
		b.stopAt = nil
		wantPage(t, b.get(callback), 200)
		if b.session() == "" {
			t.Fatal("the first use of the callback failed")
		}
		replay := newSSOBrowser(ts)
		replay.c.Jar = b.c.Jar // the same browser, cookies and all
		page = wantPage(t, replay.get(callback), 400)
		if !strings.Contains(page, "already used") {
			t.Fatalf("replayed callback:\n%s", page)
		}
	})

	t.Run("provider error and hostile callbacks", func(t *testing.T) {
		for _, q := range []string{"?error=access_denied", "?error=%3Cscript%3E", "", "?state=x", "?code=x",
			"?state=" + strings.Repeat("s", 4000) + "&code=c"} {
			r := ts.browser().get(oidcCallbackPath + q)
			if r.status != 400 && r.status != 401 {
				t.Errorf("callback%s: %d", q, r.status)
			}
			if strings.Contains(string(r.body), "<script>") {
				t.Errorf("callback%s: unescaped provider error on the page", q)
			}
		}
	})
}

func TestOIDCProviderDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ts := newTestServer(t, withSSO(t, "http://"+addr))
	people := ts.setup() // password login works while the provider is down
	ts.want(ts.do("GET", "/api/v2/users/me", people.alice, nil), 200)

	r := ts.browser().get("/login/oidc")
	page := wantPage(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(page, "unavailable") || !strings.Contains(page, "password login still works") {
		t.Fatalf("503 page:\n%s", page)
	}
	if !strings.Contains(wantPage(t, ts.browser().get("/login"), 200), "Sign in with Test IdP") {
		t.Fatal("the login page lost its sign-in link")
	}

	p := startSSOProvider(t, addr)
	// A failed discovery is remembered for a moment (oidc.DefaultRetryInterval).
	deadline := time.Now().Add(15 * time.Second)
	for ts.browser().get("/login/oidc").status == http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("single sign-on stayed unavailable after the provider came up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, tok := newSSOBrowser(ts).signIn(p, "sub-ada"); tok == "" {
		t.Fatal("sign-in failed after the provider came up")
	}
	ts.want(ts.do("GET", "/api/v2/users/me", people.alice, nil), 200)
}

func TestOIDCPasswordLoginDisabled(t *testing.T) {
	p := startSSOProvider(t, "")
	ts := newTestServer(t, withSSO(t, p.URL), func(c *Config) { c.DisablePasswordLogin = true })
	var am client.AuthMethods
	ts.want(ts.do("GET", "/api/v2/users/authmethods", "", nil), 200).json(t, &am)
	if am.Password.Enabled || !am.OIDC.Enabled {
		t.Fatalf("authmethods = %+v", am)
	}
	e := ts.want(ts.do("POST", "/api/v2/users/first", "", map[string]string{
		"username": "root", "email": "root@example.com", "password": testPassword}), 403).errResp(t)
	if !strings.Contains(e.Message, "password login is disabled") {
		t.Fatalf("first user: %q", e.Message)
	}
	e = ts.want(ts.do("POST", "/api/v2/users/login", "", map[string]string{"username": "root", "password": testPassword}), 403).errResp(t)
	if !strings.Contains(e.Message, "Test IdP") {
		t.Fatalf("login: %q", e.Message)
	}
	page := wantPage(t, ts.browser().get("/login"), 200)
	if strings.Contains(page, `name="password"`) || !strings.Contains(page, "Sign in with Test IdP") {
		t.Fatalf("login page with passwords disabled:\n%s", page)
	}
	page = wantPage(t, ts.browser().post("/login", url.Values{"login": {"root"}, "password": {testPassword}}), 403)
	if !strings.Contains(page, "password login is disabled") {
		t.Fatalf("dashboard password POST:\n%s", page)
	}
	// The first admin comes from the admin group.
	if _, tok := newSSOBrowser(ts).signIn(p, "sub-ada"); tok == "" {
		t.Fatal("sign-in failed")
	}
	if !userNamed(t, ts, "ada").IsAdmin() {
		t.Fatal("ada is not admin")
	}
}

// cliSignIn runs the CLI's half of a loopback sign-in by hand: the
// browser walks to the loopback redirect, which is not followed.
func cliSignIn(t *testing.T, ts *testServer, p *oidctest.Provider, subject, verifier string, q url.Values) (code string, r resp) {
	t.Helper()
	p.SetUser(t, subject)
	b := newSSOBrowser(ts)
	r = b.get(ts.URL() + "/login/oidc?" + q.Encode())
	if r.status != 200 {
		return "", r
	}
	// The server asks before handing the sign-in to the CLI.
	page := wantPage(t, r, 200)
	m := continueRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "127.0.0.1:9") {
		t.Fatalf("no confirmation naming the listener:\n%s", page)
	}
	back, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil || back.Host != "127.0.0.1:9" {
		t.Fatalf("continue link %q", m[1])
	}
	if back.Query().Get("state") != q.Get("state") || back.Path != "/cb" {
		t.Fatalf("loopback redirect %s", back)
	}
	checkNoLeaks(t, ts, b.visited)
	return back.Query().Get("code"), r
}

var continueRE = regexp.MustCompile(`id="continue" href="([^"]+)"`)

func TestOIDCCLICode(t *testing.T) {
	p := startSSOProvider(t, "")
	ts := newTestServer(t, withSSO(t, p.URL))
	verifier := strings.Repeat("v", 20) + "-verifier-0123456789abcdef"
	q := url.Values{"redirect_uri": {"http://127.0.0.1:9/cb"}, "code_challenge": {oidc.S256(verifier)},
		"code_challenge_method": {"S256"}, "state": {"cli-state-123"}}
	code, _ := cliSignIn(t, ts, p, "sub-ada", verifier, q)
	if code == "" {
		t.Fatal("no code came back")
	}
	// A wrong verifier is refused and burns the code.
	ts.want(ts.do("POST", "/api/v2/users/oidc/token", "", client.OIDCTokenRequest{Code: code, CodeVerifier: strings.Repeat("w", 43)}), 400)
	ts.want(ts.do("POST", "/api/v2/users/oidc/token", "", client.OIDCTokenRequest{Code: code, CodeVerifier: verifier}), 400)

	code, _ = cliSignIn(t, ts, p, "sub-ada", verifier, q)
	var lr LoginResponse
	ts.want(ts.do("POST", "/api/v2/users/oidc/token", "", client.OIDCTokenRequest{Code: code, CodeVerifier: verifier}), 201).json(t, &lr)
	var me UserResponse
	ts.want(ts.do("GET", "/api/v2/users/me", lr.SessionToken, nil), 200).json(t, &me)
	if me.Username != "ada" {
		t.Fatalf("the CLI's session is %s's", me.Username)
	}
	// Single use.
	ts.want(ts.do("POST", "/api/v2/users/oidc/token", "", client.OIDCTokenRequest{Code: code, CodeVerifier: verifier}), 400)
	checkNoLeaks(t, ts, nil, lr.SessionToken)

	// Hostile starts: nothing reaches the provider.
	for _, bad := range []url.Values{
		{"redirect_uri": {"http://evil.example:9/cb"}},
		{"redirect_uri": {"https://127.0.0.1:9/cb"}},
		{"redirect_uri": {"http://127.0.0.1/cb"}},
		{"redirect_uri": {"http://localhost:9/cb"}},
		{"redirect_uri": {"http://user@127.0.0.1:9/cb"}},
		{"redirect_uri": {"http://127.0.0.1:9/cb?x=y"}},
		{"redirect_uri": {"javascript:alert(1)"}},
		{"redirect_uri": {"http://10.0.0.1:9/cb"}},
		{"code_challenge": {"short"}},
		{"code_challenge_method": {"plain"}},
		{"state": {""}},
		{"state": {"<script>"}},
	} {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		for k, v := range bad {
			qq[k] = v
		}
		r := ts.browser().get("/login/oidc?" + qq.Encode())
		if r.status != 400 {
			t.Errorf("start with %v: %d, want 400", bad, r.status)
		}
	}
	for _, body := range []any{
		client.OIDCTokenRequest{Code: "", CodeVerifier: verifier},
		client.OIDCTokenRequest{Code: "made-up", CodeVerifier: verifier},
		client.OIDCTokenRequest{Code: "x", CodeVerifier: "short"},
		client.OIDCTokenRequest{Code: strings.Repeat("c", 10000), CodeVerifier: verifier},
		"{not json",
	} {
		if r := ts.do("POST", "/api/v2/users/oidc/token", "", body); r.status != 400 {
			t.Errorf("token %v: %d", body, r.status)
		}
	}
}

func TestOIDCDeviceFlow(t *testing.T) {
	p := startSSOProvider(t, "")
	ts := newTestServer(t, withSSO(t, p.URL))
	var d client.OIDCDeviceStart
	ts.want(ts.do("POST", "/api/v2/users/oidc/device", "", nil), 201).json(t, &d)
	if d.UserCode == "" || d.DeviceRequest == "" || !strings.HasPrefix(d.VerificationURI, p.URL) || d.Interval <= 0 {
		t.Fatalf("device start = %+v", d)
	}
	var tok client.OIDCDeviceToken
	ts.want(ts.do("POST", "/api/v2/users/oidc/device/token", "", client.OIDCDevicePoll{DeviceRequest: d.DeviceRequest}), 202).json(t, &tok)
	if !tok.Pending || tok.SessionToken != "" {
		t.Fatalf("before approval: %+v", tok)
	}
	p.SetUser(t, "sub-ada")
	p.ApproveDevice(t, d.UserCode)
	ts.want(ts.do("POST", "/api/v2/users/oidc/device/token", "", client.OIDCDevicePoll{DeviceRequest: d.DeviceRequest}), 201).json(t, &tok)
	var me UserResponse
	ts.want(ts.do("GET", "/api/v2/users/me", tok.SessionToken, nil), 200).json(t, &me)
	if me.Username != "ada" || !me.Admin {
		t.Fatalf("device session is %+v", me)
	}
	// Finished: the handle is gone.
	ts.want(ts.do("POST", "/api/v2/users/oidc/device/token", "", client.OIDCDevicePoll{DeviceRequest: d.DeviceRequest}), 400)
	ts.want(ts.do("POST", "/api/v2/users/oidc/device/token", "", client.OIDCDevicePoll{DeviceRequest: "made-up"}), 400)
	checkNoLeaks(t, ts, nil, tok.SessionToken)
}

func TestOIDCConfigValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.DataDir = "/tmp/x"
		c.OIDC = OIDCConfig{IssuerURL: "https://idp.example.com", ClientID: "c", ClientSecretFile: "/f"}
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"http issuer":          func(c *Config) { c.OIDC.IssuerURL = "http://idp.example.com" },
		"no client id":         func(c *Config) { c.OIDC.ClientID = "" },
		"no secret file":       func(c *Config) { c.OIDC.ClientSecretFile = "" },
		"issuer with query":    func(c *Config) { c.OIDC.IssuerURL = "https://idp.example.com/?a=b" },
		"issuer with userinfo": func(c *Config) { c.OIDC.IssuerURL = "https://u:p@idp.example.com" },
		"not a URL":            func(c *Config) { c.OIDC.IssuerURL = "idp.example.com" },
		"bad domain":           func(c *Config) { c.OIDC.AllowedEmailDomains = []string{"@example.com"} },
		"bad redirect":         func(c *Config) { c.OIDC.RedirectURL = "http://courier.example.com/cb" },
		"name with newline":    func(c *Config) { c.OIDC.ProviderName = "a\nb" },
		"password off, no SSO": func(c *Config) { c.OIDC = OIDCConfig{}; c.DisablePasswordLogin = true },
		"settings without SSO": func(c *Config) { c.OIDC.IssuerURL = "" },
	} {
		c := good()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	c := good()
	c.OIDC.IssuerURL = "http://127.0.0.1:5556"
	if err := c.Validate(); err != nil {
		t.Errorf("loopback http issuer: %v", err)
	}
	if got := ParseEmailDomains(" Example.com, @corp.example ,,"); strings.Join(got, "|") != "example.com|corp.example" {
		t.Errorf("ParseEmailDomains = %q", got)
	}
}

// TestOIDCAcrossReplicas: two replicas on one PostgreSQL database. A
// sign-in started at A finishes at B (the flow is in the database), and the
// same callback replayed at A is refused (it was consumed at B); a CLI
// code issued at B is redeemed at A, once.
func TestOIDCAcrossReplicas(t *testing.T) {
	pgURL := pgtest.URL(t)
	p := startSSOProvider(t, "")
	shared := func(c *Config) { c.PostgresURL = pgURL }
	a := newTestServer(t, withSSO(t, p.URL), shared)
	b := newTestServer(t, withSSO(t, p.URL), shared)
	p.SetUser(t, "sub-ada")

	br := newSSOBrowser(a)
	var callback *url.URL
	br.stopAt = func(u *url.URL) bool {
		if u.Path == oidcCallbackPath && callback == nil {
			callback = u
			return true
		}
		return false
	}
	br.get(a.URL() + "/login/oidc")
	if callback == nil {
		t.Fatal("never reached the callback")
	}
	atB := *callback
	atB.Host = strings.TrimPrefix(b.URL(), "http://")
	br.stopAt = nil
	wantPage(t, br.get(atB.String()), 200) // loopback cookies ignore the port: the binding travels
	if br.last == nil || br.last.Path != "/account/secrets" || br.last.Host != atB.Host {
		t.Fatalf("the sign-in finished at %v, want B's secrets page", br.last)
	}
	page := wantPage(t, br.get(callback.String()), 400)
	if !strings.Contains(page, "already used") {
		t.Fatalf("the callback replayed at A:\n%s", page)
	}

	verifier := strings.Repeat("r", 43)
	q := url.Values{"redirect_uri": {"http://127.0.0.1:9/cb"}, "code_challenge": {oidc.S256(verifier)}, "state": {"replica-state"}}
	code, _ := cliSignIn(t, b, p, "sub-ada", verifier, q)
	a.want(a.do("POST", "/api/v2/users/oidc/token", "", client.OIDCTokenRequest{Code: code, CodeVerifier: verifier}), 201)
	b.want(b.do("POST", "/api/v2/users/oidc/token", "", client.OIDCTokenRequest{Code: code, CodeVerifier: verifier}), 400)
}

// A flood of sign-in starts from one address — browser redirects and
// device authorizations, which each store a flow before anyone is
// authenticated — gets its burst, then 429 with Retry-After, storing
// nothing more; another address is not held back; the budget refills.
func TestOIDCStartsAreLimitedPerAddress(t *testing.T) {
	p := startSSOProvider(t, "")
	var now atomic.Pointer[time.Time]
	t0 := time.Now()
	now.Store(&t0)
	ts := newTestServer(t, withSSO(t, p.URL), func(c *Config) {
		c.SignInStarts = identity.StartLimitConfig{PerSource: 6, SourceBurst: 3} // then one per 10 s
		c.LoginThrottle.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.Now = func() time.Time { return *now.Load() }
	})
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := func(from string, device bool) (int, string) {
		t.Helper()
		method, path := "GET", "/login/oidc"
		if device {
			method, path = "POST", "/api/v2/users/oidc/device"
		}
		req, _ := http.NewRequest(method, ts.URL()+path, nil)
		req.Header.Set("X-Forwarded-For", from)
		res, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After")
	}
	accepted := 0
	for i := range 100 {
		st, retry := start("198.51.100.7", i%2 == 1)
		switch {
		case st == http.StatusSeeOther || st == http.StatusCreated:
			accepted++
		case st == http.StatusTooManyRequests && retry == "10":
		default:
			t.Fatalf("start %d: %d (Retry-After %q)", i, st, retry)
		}
	}
	if accepted != 3 {
		t.Fatalf("%d of 100 starts accepted, want the burst of 3", accepted)
	}
	if st, _ := start("203.0.113.9", false); st != http.StatusSeeOther {
		t.Fatalf("another address: %d", st)
	}
	later := t0.Add(10 * time.Second)
	now.Store(&later)
	if st, _ := start("198.51.100.7", true); st != http.StatusCreated {
		t.Fatalf("after a refill: %d", st)
	}
	if st, retry := start("198.51.100.7", false); st != http.StatusTooManyRequests || retry != "10" {
		t.Fatalf("second start on one refill: %d (Retry-After %q)", st, retry)
	}
}
