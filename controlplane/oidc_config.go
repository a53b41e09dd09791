package controlplane

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DefaultOIDCProviderName is the provider's name on the login page when
// none is configured.
const DefaultOIDCProviderName = "OpenID Connect"

// OIDCConfig configures single sign-on with an OpenID Connect provider.
// The zero value (no IssuerURL) turns it off.
type OIDCConfig struct {
	// IssuerURL is the provider's issuer; https, or http for a loopback
	// address (tests). The provider is not contacted at start-up: it is
	// discovered at the first sign-in, and again after a failure.
	IssuerURL string
	// ClientID is Courier's client id at the provider.
	ClientID string
	// ClientSecretFile holds the client secret (surrounding whitespace
	// ignored). The secret is never logged.
	ClientSecretFile string
	// RedirectURL is the callback URL registered at the provider,
	// https://courier.example.com/api/v2/users/oidc/callback. Default "":
	// built from each request's Host (and TLS), which is right unless a
	// proxy in front rewrites the host or terminates TLS.
	RedirectURL string
	// AllowedEmailDomains, when not empty, admits only e-mail addresses
	// of these domains (exact match, case-insensitive).
	AllowedEmailDomains []string
	// AdminGroup, when set, is a value of the ID token's "groups" claim
	// that makes a user an admin; at each sign-in a user in the group
	// becomes admin and an admin not in it becomes a member (except the
	// last admin). The "groups" scope is asked for.
	AdminGroup string
	// ProviderName is shown on the login page ("Sign in with …").
	// Default DefaultOIDCProviderName.
	ProviderName string
}

// Enabled reports whether single sign-on is configured.
func (c OIDCConfig) Enabled() bool { return c.IssuerURL != "" }

// validate reports the first problem with c.
func (c OIDCConfig) validate(passwordDisabled bool) error {
	if !c.Enabled() {
		if passwordDisabled {
			return errors.New("password login can only be disabled when single sign-on (an OIDC issuer URL) is configured")
		}
		if c.ClientID != "" || c.ClientSecretFile != "" || c.AdminGroup != "" || len(c.AllowedEmailDomains) > 0 || c.RedirectURL != "" {
			return errors.New("the OIDC settings need an OIDC issuer URL")
		}
		return nil
	}
	if err := secureURL(c.IssuerURL); err != nil {
		return fmt.Errorf("OIDC issuer URL: %w", err)
	}
	if c.RedirectURL != "" {
		if err := secureURL(c.RedirectURL); err != nil {
			return fmt.Errorf("OIDC redirect URL: %w", err)
		}
	}
	switch {
	case c.ClientID == "":
		return errors.New("single sign-on needs an OIDC client id")
	case c.ClientSecretFile == "":
		return errors.New("single sign-on needs an OIDC client secret file")
	case len(c.ProviderName) > 64 || strings.ContainsAny(c.ProviderName, "\x00\r\n"):
		return errors.New("the OIDC provider name must be one line of at most 64 bytes")
	}
	for _, d := range c.AllowedEmailDomains {
		if d == "" || strings.ContainsAny(d, "@/ \t,") || !strings.Contains(d, ".") && d != "localhost" {
			return fmt.Errorf("allowed e-mail domain %q is not a domain such as example.com", d)
		}
	}
	return nil
}

// secureURL accepts an absolute https URL, or http to a loopback address.
func secureURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return errors.New("must be an absolute URL without credentials, query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
		return errors.New("must be https (plain http only to a loopback address)")
	}
	return errors.New("must be an https URL")
}

// ParseEmailDomains splits a comma-separated list of e-mail domains,
// dropping blanks and a leading '@'.
func ParseEmailDomains(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimPrefix(strings.TrimSpace(d), "@")
		if d != "" {
			out = append(out, strings.ToLower(d))
		}
	}
	return out
}
