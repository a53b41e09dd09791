package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// DialSSH opens the websocket at /api/v2/workspaces/{workspace}/ssh and
// returns it as a net.Conn carrying a raw SSH connection to the workspace
// agent. ctx bounds the dial only; closing the conn ends the connection.
func (c *Client) DialSSH(ctx context.Context, workspace string) (net.Conn, error) {
	endpoint := c.endpoint("api", "v2", "workspaces", workspace, "ssh")
	endpoint = "ws" + strings.TrimPrefix(endpoint, "http") // http→ws, https→wss
	hdr := http.Header{}
	if c.token != "" {
		hdr.Set(SessionTokenHeader, c.token)
	}
	ws, resp, err := websocket.Dial(ctx, endpoint, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: c.http.Transport},
		HTTPHeader: hdr,
	})
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			return nil, decodeErrorResponse(resp)
		}
		return nil, fmt.Errorf("dial workspace ssh: %w", err)
	}
	ws.SetReadLimit(-1)
	// The conn outlives ctx; the caller closes it.
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}

// decodeErrorResponse turns a refused websocket handshake into an *Error.
// The websocket library keeps the first KiB of the body for us.
func decodeErrorResponse(resp *http.Response) *Error {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorText*2))
	}
	return decodeError(resp.StatusCode, body)
}
