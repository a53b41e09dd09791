package client

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
)

func (c *Client) secretsEndpoint(user string, rest ...string) string {
	return c.endpoint(append([]string{"api", "v2", "users", user, "secrets"}, rest...)...)
}

// Secrets lists a user's secrets (metadata only), ordered by name.
func (c *Client) Secrets(ctx context.Context, user string) ([]Secret, error) {
	var ss []Secret
	err := c.do(ctx, http.MethodGet, c.secretsEndpoint(user), nil, &ss)
	return ss, err
}

// SecretsInWorkspace lists the user's secrets whose scope includes the
// workspace called workspace (GET .../secrets?workspace=NAME): those its
// agent gets.
func (c *Client) SecretsInWorkspace(ctx context.Context, user, workspace string) ([]Secret, error) {
	var ss []Secret
	err := c.do(ctx, http.MethodGet, c.secretsEndpoint(user)+"?workspace="+url.QueryEscape(workspace), nil, &ss)
	return ss, err
}

// Secret returns one secret's metadata by name.
func (c *Client) Secret(ctx context.Context, user, name string) (Secret, error) {
	var s Secret
	err := c.do(ctx, http.MethodGet, c.secretsEndpoint(user, name), nil, &s)
	return s, err
}

// CreateSecret creates a secret and returns its metadata. A binary Value
// (IsBinary) is sent as value_base64, so it is stored byte for byte.
func (c *Client) CreateSecret(ctx context.Context, user string, req CreateSecretRequest) (Secret, error) {
	if IsBinary(req.Value) {
		req.ValueBase64, req.Value = base64.StdEncoding.EncodeToString([]byte(req.Value)), ""
	}
	var s Secret
	err := c.do(ctx, http.MethodPost, c.secretsEndpoint(user), req, &s)
	return s, err
}

// UpdateSecret applies a partial update and returns the new metadata. A
// binary Value is sent as value_base64, as in CreateSecret.
func (c *Client) UpdateSecret(ctx context.Context, user, name string, req UpdateSecretRequest) (Secret, error) {
	if req.Value != nil && IsBinary(*req.Value) {
		b64 := base64.StdEncoding.EncodeToString([]byte(*req.Value))
		req.ValueBase64, req.Value = &b64, nil
	}
	var s Secret
	err := c.do(ctx, http.MethodPatch, c.secretsEndpoint(user, name), req, &s)
	return s, err
}

// DeleteSecret deletes a secret by name.
func (c *Client) DeleteSecret(ctx context.Context, user, name string) error {
	return c.do(ctx, http.MethodDelete, c.secretsEndpoint(user, name), nil, nil)
}

// BatchCreateSecrets creates every secret in req.Content or none of them and
// returns the created secrets' metadata.
func (c *Client) BatchCreateSecrets(ctx context.Context, user string, req BatchSecretsRequest) ([]Secret, error) {
	var ss []Secret
	err := c.do(ctx, http.MethodPost, c.secretsEndpoint(user, "batch"), req, &ss)
	return ss, err
}
