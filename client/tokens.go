package client

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Token scopes of CreateTokenRequest.Scope.
const (
	// TokenScopeRead may only read (GET and HEAD).
	TokenScopeRead = "read"
	// TokenScopeWrite may do what its user may do.
	TokenScopeWrite = "write"
)

// APIToken is a personal API token as the API lists it: never the token
// itself, which is shown once, at creation.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Expired says whether ExpiresAt has passed (the server's clock); an
	// expired token is listed until revoked, and accepted nowhere.
	Expired bool `json:"expired"`
	// LastUsedAt and LastUsedAddr are the last use recorded (null and ""
	// before the first). Uses are written in batches, so they may lag a
	// few seconds.
	LastUsedAt   *time.Time `json:"last_used_at"`
	LastUsedAddr string     `json:"last_used_addr"`
}

// CreatedAPIToken is the answer to a create: the token's metadata and, the
// only time it is ever shown, the token.
type CreatedAPIToken struct {
	APIToken
	Token string `json:"token"`
}

// String omits the token.
func (t CreatedAPIToken) String() string {
	return fmt.Sprintf("CreatedAPIToken{name=%q scope=%s expires_at=%s token=<redacted>}",
		t.Name, t.Scope, t.ExpiresAt.Format(time.RFC3339))
}

// CreateTokenRequest creates a personal API token. Lifetime is days
// ("30d") or a Go duration ("12h", "1d12h"); "" is the server's default
// (30 days, capped by its maximum). Scope is TokenScopeRead or
// TokenScopeWrite; "" is write.
type CreateTokenRequest struct {
	Name     string `json:"name"`
	Lifetime string `json:"lifetime,omitempty"`
	Scope    string `json:"scope,omitempty"`
}

func (c *Client) tokensEndpoint(user string, rest ...string) string {
	return c.endpoint(append([]string{"api", "v2", "users", user, "tokens"}, rest...)...)
}

// CreateToken creates a personal API token for user (Me: the caller) and
// returns it with the token, which cannot be fetched again.
func (c *Client) CreateToken(ctx context.Context, user string, req CreateTokenRequest) (CreatedAPIToken, error) {
	var t CreatedAPIToken
	err := c.do(ctx, http.MethodPost, c.tokensEndpoint(user), req, &t)
	return t, err
}

// ListTokens lists user's tokens, expired ones included, by name.
func (c *Client) ListTokens(ctx context.Context, user string) ([]APIToken, error) {
	var ts []APIToken
	err := c.do(ctx, http.MethodGet, c.tokensEndpoint(user), nil, &ts)
	return ts, err
}

// ListAllTokens lists every user's tokens (admin only).
func (c *Client) ListAllTokens(ctx context.Context) ([]APIToken, error) {
	var ts []APIToken
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "tokens"), nil, &ts)
	return ts, err
}

// RevokeToken deletes user's token called name; it stops working at once.
func (c *Client) RevokeToken(ctx context.Context, user, name string) error {
	return c.do(ctx, http.MethodDelete, c.tokensEndpoint(user, name), nil, nil)
}
