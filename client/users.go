package client

import (
	"context"
	"net/http"
)

// Me is the {user} path value that names the caller.
const Me = "me"

// CreateFirstUser creates the first (admin) user of a fresh deployment. It
// needs no token and fails with ErrConflict once a user exists.
func (c *Client) CreateFirstUser(ctx context.Context, req CreateUserRequest) (User, error) {
	var u User
	err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "users", "first"), req, &u)
	return u, err
}

// Login exchanges credentials for a session token.
func (c *Client) Login(ctx context.Context, req LoginRequest) (string, error) {
	var resp LoginResponse
	if err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "users", "login"), req, &resp); err != nil {
		return "", err
	}
	return resp.SessionToken, nil
}

// Logout revokes the client's session token on the server.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "users", "logout"), nil, nil)
}

// User returns a user by ID, username, or Me.
func (c *Client) User(ctx context.Context, user string) (User, error) {
	var u User
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "users", user), nil, &u)
	return u, err
}

// CreateUser creates a user (admin only).
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	var u User
	err := c.do(ctx, http.MethodPost, c.endpoint("api", "v2", "users"), req, &u)
	return u, err
}

// Users lists every user (admin only).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var us []User
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "users"), nil, &us)
	return us, err
}
