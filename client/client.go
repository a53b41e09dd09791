// Package client is a small typed REST client for the Courier control plane:
// sessions, users, workspaces, user secrets and the workspace SSH websocket.
// The CLI uses it, and so do tests that drive a real control plane.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SessionTokenHeader is the header that carries a session token.
const SessionTokenHeader = "Coder-Session-Token"

// maxResponseBytes bounds one response body read by the client.
const maxResponseBytes = 8 << 20

var (
	// ErrInvalidConfig is wrapped by Config.Validate failures.
	ErrInvalidConfig = errors.New("invalid client config")
	// ErrUnauthorized is wrapped by *Error for a 401: no token, or a token
	// the server does not know (expired or logged out).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is wrapped by *Error for a 403.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound is wrapped by *Error for a 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict is wrapped by *Error for a 409.
	ErrConflict = errors.New("conflict")
	// ErrBadRequest is wrapped by *Error for a 400.
	ErrBadRequest = errors.New("bad request")
	// ErrTooManyRequests is wrapped by *Error for a 429 (a throttled
	// login); Error.RetryAfter says when to try again.
	ErrTooManyRequests = errors.New("too many requests")
)

// Config configures a Client.
type Config struct {
	// URL is the control plane's base URL, e.g. "https://courier.example.com".
	// Required; http and https only. A path prefix is kept.
	URL string
	// Token is the session token sent in SessionTokenHeader. Default "": no
	// token, enough for login and first-user setup.
	Token string
	// HTTPClient sends the requests. Default: a client with a 60s timeout.
	HTTPClient *http.Client
}

// DefaultConfig returns a Config with every default filled except URL.
func DefaultConfig() Config {
	return Config{HTTPClient: &http.Client{Timeout: 60 * time.Second}}
}

// Validate checks that URL is an absolute http(s) URL without query,
// fragment or credentials, and that Token has no characters a header
// cannot carry.
func (c Config) Validate() error {
	if c.URL == "" {
		return fmt.Errorf("%w: URL is required", ErrInvalidConfig)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("%w: URL does not parse", ErrInvalidConfig)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: URL must start with http:// or https://", ErrInvalidConfig)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: URL has no host", ErrInvalidConfig)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: URL must not carry credentials, a query or a fragment", ErrInvalidConfig)
	}
	if strings.ContainsAny(c.Token, "\r\n\x00 \t") {
		return fmt.Errorf("%w: token contains white space or control characters", ErrInvalidConfig)
	}
	return nil
}

// Client calls the control plane's REST API. It is safe for concurrent use;
// it holds no state beyond its Config.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a Client for cfg. A nil HTTPClient means the default.
func New(cfg Config) (*Client, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = DefaultConfig().HTTPClient
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(strings.TrimRight(cfg.URL, "/"))
	return &Client{base: u, token: cfg.Token, http: cfg.HTTPClient}, nil
}

// URL returns the base URL the client talks to.
func (c *Client) URL() string { return c.base.String() }

// Token returns the session token the client sends ("" if none).
func (c *Client) Token() string { return c.token }

// WithToken returns a copy of c that sends token instead.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// endpoint joins the base URL with path segments, escaping each one, so a
// secret or user name can never change the route.
func (c *Client) endpoint(segments ...string) string {
	var b strings.Builder
	b.WriteString(c.base.String())
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends a JSON request and decodes a JSON response into out (if non-nil).
// A non-2xx answer becomes an *Error. The request body may hold a secret
// value; it is never included in an error.
func (c *Client) do(ctx context.Context, method, endpoint string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set(SessionTokenHeader, c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error includes the URL, which never holds a secret or token.
		return fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := decodeError(resp.StatusCode, data)
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, req.URL.Path, err)
	}
	return nil
}
