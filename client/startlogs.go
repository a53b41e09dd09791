package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// WorkspaceLogs is a page of a workspace's startup logs
// (GET /api/v2/workspaces/{workspace}/logs): the output of its startup
// scripts and apps, masked of its owner's secret values by the agent, and
// each script's and app's last run.
type WorkspaceLogs struct {
	WorkspaceID string `json:"workspace_id"`
	Workspace   string `json:"workspace"`
	// Lines are the lines after the request's cursor, oldest first.
	Lines []LogLine `json:"lines"`
	// Runs are every script and app of the template, in template order
	// (scripts first), with their last run; State "" for one that never ran.
	Runs []ScriptRun `json:"runs"`
	// NextCursor is the cursor to pass for the lines after these (the
	// request's own when there are none).
	NextCursor string `json:"next_cursor"`
}

// LogLine is one line of output.
type LogLine struct {
	// Cursor is the line's position: pass it as cursor for what follows.
	Cursor string `json:"cursor"`
	// Kind is "script" or "app"; Name the script's name or app's slug.
	Kind   string    `json:"kind"`
	Name   string    `json:"name"`
	Stream string    `json:"stream"`
	At     time.Time `json:"at"`
	Text   string    `json:"text"`
}

// ScriptRun is a script's or app's last run as its agent reported it.
type ScriptRun struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// State is running, succeeded, failed, timed_out, exited, stopped, or
	// "" when it has not run.
	State string `json:"state"`
	// ExitCode is set once a run ended: -1 when it was killed by a signal
	// or could not start.
	ExitCode   *int       `json:"exit_code"`
	StartedAt  *time.Time `json:"started_at"`
	DurationMS int64      `json:"duration_ms"`
}

// LogsQuery selects lines. The zero value is every retained line.
type LogsQuery struct {
	// Cursor returns lines after it ("" for the oldest retained).
	Cursor string
	// Script or App keeps one script's or app's lines.
	Script, App string
	// Limit caps the lines returned (0: the server's default, 1000).
	Limit int
	// Wait, when there are no lines after Cursor yet, holds the request
	// up to this long for some (a long poll; at most a minute).
	Wait time.Duration
}

// WorkspaceLogs returns a page of a workspace's startup logs.
func (c *Client) WorkspaceLogs(ctx context.Context, workspace string, q LogsQuery) (WorkspaceLogs, error) {
	v := url.Values{}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Script != "" {
		v.Set("script", q.Script)
	}
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Wait > 0 {
		v.Set("wait", strconv.Itoa(int(q.Wait/time.Second)))
	}
	endpoint := c.endpoint("api", "v2", "workspaces", workspace, "logs")
	if len(v) > 0 {
		endpoint += "?" + v.Encode()
	}
	var out WorkspaceLogs
	err := c.do(ctx, http.MethodGet, endpoint, nil, &out)
	return out, err
}
