package oidc_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/identity/oidc"
	"github.com/courierhq/courier/controlplane/identity/oidc/oidctest"
)

const (
	clientID  = "courier-test"
	secret    = "client-secret-canary-7f3a"
	redirect  = "http://127.0.0.1:1/api/v2/users/oidc/callback"
	redirGlob = "http://127.0.0.1:*/api/v2/users/oidc/callback"
)

var users = []oidctest.User{
	{Subject: "u-ada", Username: "ada", Email: "ada@example.com", Groups: []string{"courier-admins"}},
	{Subject: "u-bob", Username: "bob", Email: "bob@example.com", Unverified: true},
}

func startProvider(t *testing.T) *oidctest.Provider {
	return oidctest.Start(t, oidctest.Options{ClientID: clientID, ClientSecret: secret,
		RedirectURIs: []string{redirGlob}, Users: users})
}

func newRP(t *testing.T, issuer string) *oidc.RP {
	rp, err := oidc.New(oidc.Config{IssuerURL: issuer, ClientID: clientID, ClientSecret: secret,
		Scopes: []string{"email", "profile", "groups"}})
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// authorize plays the browser: it follows the provider's redirects and
// returns the query of the final redirect to Courier's callback.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	var final *url.URL
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:1/") {
			final = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if final == nil {
		t.Fatalf("the provider did not redirect back (%s)", resp.Status)
	}
	return final.Query()
}

// signIn runs one sign-in and returns its result.
func signIn(t *testing.T, rp *oidc.RP, tamper func(*oidc.Flow)) (oidc.Identity, error) {
	t.Helper()
	ctx := context.Background()
	authURL, state, f, err := rp.AuthCodeURL(ctx, redirect, "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") != oidc.S256(f.Verifier) ||
		q.Get("nonce") != f.Nonce || q.Get("state") != state || strings.Contains(authURL, secret) {
		t.Fatalf("authorization URL lacks PKCE, nonce or state, or holds the secret: %s", authURL)
	}
	q := authorize(t, authURL)
	if q.Get("state") != state {
		t.Fatalf("state came back as %q", q.Get("state"))
	}
	if tamper != nil {
		tamper(&f)
	}
	return rp.Exchange(ctx, f, q.Get("code"))
}

func TestSignInAgainstRealProvider(t *testing.T) {
	p := startProvider(t)
	rp := newRP(t, p.URL)
	id, err := signIn(t, rp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.Issuer != p.URL || id.Subject != "u-ada" || id.Email != "ada@example.com" || id.PreferredUsername != "ada" ||
		len(id.Groups) != 1 || id.Groups[0] != "courier-admins" {
		t.Fatalf("identity = %+v", id)
	}

	// Key rotation: the JWKS gains a key and tokens signed with it verify
	// (the verifier refetches the key set on an unknown key id).
	p.Rotate(t)
	if _, err := signIn(t, rp, nil); err != nil {
		t.Fatalf("after key rotation: %v", err)
	}

	refusals := []struct {
		name, mode, user string
		tamper           func(*oidc.Flow)
		want             string
	}{
		{"wrong audience", oidctest.ModeWrongAudience, "", nil, "audience"},
		{"expired", oidctest.ModeExpired, "", nil, "expired"},
		{"bad signature", oidctest.ModeBadSignature, "", nil, "signature"},
		{"unverified email", "", "u-bob", nil, "not verified"},
		{"other nonce", "", "", func(f *oidc.Flow) { f.Nonce = "not-the-nonce" }, "nonce"},
		{"other PKCE verifier", "", "", func(f *oidc.Flow) { f.Verifier = strings.Repeat("x", 43) }, "refused the code"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			p.SetMode(t, oidctest.ModeNormal)
			p.SetUser(t, "u-ada")
			if tc.mode != "" {
				p.SetMode(t, tc.mode)
			}
			if tc.user != "" {
				p.SetUser(t, tc.user)
			}
			_, err := signIn(t, rp, tc.tamper)
			if !errors.Is(err, oidc.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a refusal about %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatal("the error holds the client secret")
			}
		})
	}
}

func TestProviderDownThenUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	rp, err := oidc.New(oidc.Config{IssuerURL: "http://" + addr, ClientID: clientID, ClientSecret: secret,
		RetryInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := rp.AuthCodeURL(context.Background(), redirect, ""); !errors.Is(err, oidc.ErrUnavailable) {
		t.Fatalf("provider down: %v, want ErrUnavailable", err)
	}
	p := oidctest.Start(t, oidctest.Options{ClientID: clientID, ClientSecret: secret,
		RedirectURIs: []string{redirGlob}, Users: users, Listen: addr})
	if p.URL != "http://"+addr {
		t.Fatalf("provider at %s", p.URL)
	}
	// Failures are remembered for RetryInterval, then discovery is tried
	// again.
	deadline := time.Now().Add(10 * time.Second)
	for rp.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("discovery never retried")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := signIn(t, rp, nil); err != nil {
		t.Fatalf("after the provider came up: %v", err)
	}
}

func TestDeviceFlow(t *testing.T) {
	p := startProvider(t)
	rp := newRP(t, p.URL)
	ctx := context.Background()
	d, err := rp.StartDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.UserCode == "" || d.DeviceCode == "" || !strings.HasPrefix(d.VerificationURI, p.URL) {
		t.Fatalf("device = %+v", d)
	}
	if _, err := rp.PollDevice(ctx, d.DeviceCode); !errors.Is(err, oidc.ErrPending) {
		t.Fatalf("before approval: %v, want pending", err)
	}
	p.ApproveDevice(t, d.UserCode)
	id, err := rp.PollDevice(ctx, d.DeviceCode)
	if err != nil || id.Subject != "u-ada" || id.Email != "ada@example.com" {
		t.Fatalf("after approval: %+v, %v", id, err)
	}
	if _, err := rp.PollDevice(ctx, "made-up-device-code"); !errors.Is(err, oidc.ErrRefused) {
		t.Fatalf("unknown device code: %v", err)
	}
}

func TestBaseUsername(t *testing.T) {
	for _, tc := range []struct {
		id   oidc.Identity
		want string
	}{
		{oidc.Identity{PreferredUsername: "ada", Email: "x@example.com"}, "ada"},
		{oidc.Identity{Email: "grace.hopper@example.com"}, "grace.hopper"},
		{oidc.Identity{PreferredUsername: "ada@example.com"}, "ada"},
		{oidc.Identity{PreferredUsername: "Ada Lovelace"}, "Ada-Lovelace"},
		{oidc.Identity{PreferredUsername: "--..__x"}, "x"},
		{oidc.Identity{PreferredUsername: "名前", Email: "名前@example.com"}, "user"},
		{oidc.Identity{PreferredUsername: "me", Email: "me@example.com"}, "user"},
		{oidc.Identity{PreferredUsername: "AuthMethods", Email: "x@example.com"}, "x"},
		{oidc.Identity{PreferredUsername: "01234567-89ab-cdef-0123-456789abcdef"}, "user"},
		{oidc.Identity{PreferredUsername: "a/../../etc", Email: "z@x"}, "a-..-..-etc"},
		{oidc.Identity{PreferredUsername: strings.Repeat("a", 200)}, strings.Repeat("a", 56)},
		{oidc.Identity{PreferredUsername: "<script>", Email: "s@x"}, "script"},
		{oidc.Identity{PreferredUsername: "x\x00y"}, "x-y"},
	} {
		if got := oidc.BaseUsername(tc.id); got != tc.want {
			t.Errorf("BaseUsername(%+v) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestEmailDomainAllowed(t *testing.T) {
	domains := []string{"example.com", "Corp.Example"}
	for _, tc := range []struct {
		email string
		want  bool
	}{
		{"ada@example.com", true},
		{"ada@EXAMPLE.com", true},
		{"ada@corp.example", true},
		{"ada@evil-example.com", false},
		{"ada@sub.example.com", false},
		{"ada@example.com.evil", false},
		{"example.com", false},
		{"ada@example.com@evil.test", false},
		{"", false},
	} {
		if got := oidc.EmailDomainAllowed(tc.email, domains); got != tc.want {
			t.Errorf("EmailDomainAllowed(%q) = %v, want %v", tc.email, got, tc.want)
		}
	}
	if !oidc.EmailDomainAllowed("anyone@anywhere", nil) {
		t.Error("an empty list should allow every domain")
	}
}
