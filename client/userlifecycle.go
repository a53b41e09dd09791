package client

import (
	"context"
	"net/http"
)

// Roles, statuses and login types of User.
const (
	RoleAdmin   = "admin"
	RoleMember  = "member"
	RoleAuditor = "auditor"

	StatusActive    = "active"
	StatusSuspended = "suspended"

	LoginPassword = "password"
	LoginOIDC     = "oidc"
)

// UpdateRoleRequest is the body of PUT /api/v2/users/{user}/role.
type UpdateRoleRequest struct {
	Role string `json:"role"`
}

// UpdatePasswordRequest is the body of PUT /api/v2/users/{user}/password.
// OldPassword is required to change one's own password; an admin resetting
// someone else's sends only Password.
type UpdatePasswordRequest struct {
	OldPassword string `json:"old_password,omitempty"`
	Password    string `json:"password"`
}

// String omits both passwords.
func (UpdatePasswordRequest) String() string { return "UpdatePasswordRequest{<redacted>}" }

// GoString is String, for %#v.
func (r UpdatePasswordRequest) GoString() string { return r.String() }

// SetUserRole changes a user's role (admin only).
func (c *Client) SetUserRole(ctx context.Context, user, role string) (User, error) {
	var u User
	err := c.do(ctx, http.MethodPut, c.endpoint("api", "v2", "users", user, "role"), UpdateRoleRequest{Role: role}, &u)
	return u, err
}

// SuspendUser suspends a user (admin only): their sessions and API tokens
// end and their agents are disconnected.
func (c *Client) SuspendUser(ctx context.Context, user string) (User, error) {
	var u User
	err := c.do(ctx, http.MethodPut, c.endpoint("api", "v2", "users", user, "status", "suspend"), nil, &u)
	return u, err
}

// ActivateUser lifts a suspension (admin only).
func (c *Client) ActivateUser(ctx context.Context, user string) (User, error) {
	var u User
	err := c.do(ctx, http.MethodPut, c.endpoint("api", "v2", "users", user, "status", "activate"), nil, &u)
	return u, err
}

// DeleteUser deletes a user with their secrets and workspaces (admin
// only).
func (c *Client) DeleteUser(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodDelete, c.endpoint("api", "v2", "users", user), nil, nil)
}

// UpdatePassword changes user's password: one's own (Me) with the old
// password, or, for an admin, anyone's without it.
func (c *Client) UpdatePassword(ctx context.Context, user string, req UpdatePasswordRequest) error {
	return c.do(ctx, http.MethodPut, c.endpoint("api", "v2", "users", user, "password"), req, nil)
}
