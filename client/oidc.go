package client

import (
	"context"
	"net/http"
)

// AuthMethods is GET /api/v2/users/authmethods: how people sign in to
// this server. It needs no token.
type AuthMethods struct {
	Password AuthMethod     `json:"password"`
	OIDC     OIDCAuthMethod `json:"oidc"`
}

// AuthMethod says whether one way of signing in is on.
type AuthMethod struct {
	Enabled bool `json:"enabled"`
}

// OIDCAuthMethod is single sign-on with OpenID Connect.
type OIDCAuthMethod struct {
	Enabled bool `json:"enabled"`
	// Name is the provider's name for buttons ("Sign in with Name").
	Name string `json:"name,omitempty"`
}

// OIDCTokenRequest is POST /api/v2/users/oidc/token: the CLI redeems the
// one-time code the browser brought to its loopback listener, with the
// PKCE verifier of the challenge it sent when it started.
type OIDCTokenRequest struct {
	Code         string `json:"code"`
	CodeVerifier string `json:"code_verifier"`
}

// String omits the code and the verifier.
func (OIDCTokenRequest) String() string { return "OIDCTokenRequest{<redacted>}" }

// OIDCDeviceStart is the answer of POST /api/v2/users/oidc/device: what to
// show the person, and the handle to poll with (a secret between the CLI
// and the server; the provider's device code stays on the server).
type OIDCDeviceStart struct {
	DeviceRequest           string `json:"device_request"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	// Interval is the seconds to wait between polls.
	Interval  int64  `json:"interval"`
	ExpiresAt string `json:"expires_at"`
}

// String omits the handle.
func (d OIDCDeviceStart) String() string {
	return "OIDCDeviceStart{user_code=" + d.UserCode + " verification_uri=" + d.VerificationURI + "}"
}

// OIDCDevicePoll is POST /api/v2/users/oidc/device/token.
type OIDCDevicePoll struct {
	DeviceRequest string `json:"device_request"`
}

// String omits the handle.
func (OIDCDevicePoll) String() string { return "OIDCDevicePoll{<redacted>}" }

// OIDCDeviceToken is the answer to a poll: 202 with Pending (wait
// Interval seconds and poll again), or 201 with the session token.
type OIDCDeviceToken struct {
	Pending      bool   `json:"pending,omitempty"`
	Interval     int64  `json:"interval,omitempty"`
	SessionToken string `json:"session_token,omitempty"`
}

// String omits the token.
func (t OIDCDeviceToken) String() string {
	if t.Pending {
		return "OIDCDeviceToken{pending}"
	}
	return "OIDCDeviceToken{session_token=<redacted>}"
}

// AuthMethods asks the server how people sign in. It needs no token.
func (c *Client) AuthMethods(ctx context.Context) (AuthMethods, error) {
	var m AuthMethods
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "users", "authmethods"), nil, &m)
	return m, err
}

// OIDCToken redeems a single sign-on code for a session token.
func (c *Client) OIDCToken(ctx context.Context, req OIDCTokenRequest) (string, error) {
	var resp LoginResponse
	if err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "users", "oidc", "token"), req, &resp); err != nil {
		return "", err
	}
	return resp.SessionToken, nil
}

// OIDCDeviceStart starts a device authorization at the server.
func (c *Client) OIDCDeviceStart(ctx context.Context) (OIDCDeviceStart, error) {
	var d OIDCDeviceStart
	err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "users", "oidc", "device"), nil, &d)
	return d, err
}

// OIDCDevicePoll asks once whether the device authorization is approved.
func (c *Client) OIDCDevicePoll(ctx context.Context, deviceRequest string) (OIDCDeviceToken, error) {
	var t OIDCDeviceToken
	err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "users", "oidc", "device", "token"),
		OIDCDevicePoll{DeviceRequest: deviceRequest}, &t)
	return t, err
}
