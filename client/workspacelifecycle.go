package client

import (
	"context"
	"net/http"
	"time"
)

// RotateAgentTokenRequest is the optional body of
// POST /api/v2/workspaces/{workspace}/agent-token.
type RotateAgentTokenRequest struct {
	// Lifetime is how long the new token is accepted: days ("30d"), a
	// duration ("12h") or both ("1d12h"). Empty: the server's
	// --agent-token-lifetime (which may be never).
	Lifetime string `json:"lifetime,omitempty"`
}

// RotatedAgentToken is the answer to a rotation: the new agent token,
// shown this once and stored only as a hash, and when it expires (nil:
// never). The old token stopped working when this was sent.
type RotatedAgentToken struct {
	AgentToken string     `json:"agent_token"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// DeleteWorkspace deletes a workspace (its owner or an admin): its agent is
// disconnected and its token stops working at once. Secrets are the
// owner's and are kept.
func (c *Client) DeleteWorkspace(ctx context.Context, workspace string) error {
	return c.do(ctx, http.MethodDelete, c.endpoint("api", "v2", "workspaces", workspace), nil, nil)
}

// RotateAgentToken gives the workspace a new agent token (its owner or an
// admin) and returns it; the old one stops working at once and its
// connected agent is disconnected.
func (c *Client) RotateAgentToken(ctx context.Context, workspace string, req RotateAgentTokenRequest) (RotatedAgentToken, error) {
	var out RotatedAgentToken
	err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "workspaces", workspace, "agent-token"), req, &out)
	return out, err
}
