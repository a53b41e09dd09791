package client

import (
	"context"
	"net/http"
)

// CreateWorkspace creates a workspace (admin only). The returned agent token
// is shown by the server only this once.
func (c *Client) CreateWorkspace(ctx context.Context, req CreateWorkspaceRequest) (CreatedWorkspace, error) {
	var w CreatedWorkspace
	err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "workspaces"), req, &w)
	return w, err
}

// Workspaces lists the workspaces the caller may see (all of them for an
// admin).
func (c *Client) Workspaces(ctx context.Context) ([]Workspace, error) {
	var ws []Workspace
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "workspaces"), nil, &ws)
	return ws, err
}

// Workspace returns one workspace by ID, own name, or "owner/name".
func (c *Client) Workspace(ctx context.Context, workspace string) (Workspace, error) {
	var w Workspace
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "workspaces", workspace), nil, &w)
	return w, err
}

// AgentStatus returns the status of a workspace's agent and its last apply.
func (c *Client) AgentStatus(ctx context.Context, workspace string) (AgentStatus, error) {
	var s AgentStatus
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "workspaces", workspace, "agent"), nil, &s)
	return s, err
}
