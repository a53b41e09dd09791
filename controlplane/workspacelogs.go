package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/courierhq/courier/controlplane/startlogs"
	"github.com/courierhq/courier/controlplane/store"
)

// workspaceLogs: GET /api/v2/workspaces/{workspace}/logs — the startup
// logs of a workspace (issue 21), for whoever may see the workspace (its
// owner, an admin). Parameters: cursor, script or app, limit, and either
// wait=SECONDS (a long poll) or follow=true (server-sent events, one
// "line" event per line with the line's cursor as its id; a reconnecting
// client's Last-Event-ID resumes after it).
func (a *api) workspaceLogs(w http.ResponseWriter, r *http.Request) {
	ws, err := a.resolveWorkspace(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p := r.URL.Query()
	cursor := p.Get("cursor")
	if cursor == "" {
		cursor = r.Header.Get("Last-Event-ID")
	}
	q, err := startlogs.ParseQuery(ws, cursor, p.Get("script"), p.Get("app"), p.Get("limit"), p.Get("wait"))
	follow := false
	switch v := p.Get("follow"); v {
	case "", "false", "0":
	case "true", "1":
		follow = true
	default:
		if err == nil {
			err = fmt.Errorf("%w: follow must be true or false", startlogs.ErrBadQuery)
		}
	}
	switch {
	case errors.Is(err, startlogs.ErrUnknownSource):
		a.writeError(w, r, errorf(http.StatusNotFound, "%s", err.Error()))
		return
	case err != nil:
		a.writeError(w, r, errorf(http.StatusBadRequest, "%s", err.Error()))
		return
	}
	// A long poll or a stream ends when the server shuts down (a.base is
	// cancelled then): http.Server.Shutdown would wait for it otherwise.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.base, cancel)
	defer stop()
	if follow {
		a.followLogs(ctx, w, ws, q)
		return
	}
	page, err := a.logs.Page(ctx, ws, q)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("read startup logs: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// followLogs streams lines as server-sent events until ctx ends (the
// client left or the server shuts down), with a comment every poll
// interval of quiet so proxies keep the connection.
func (a *api) followLogs(ctx context.Context, w http.ResponseWriter, ws store.Workspace, q startlogs.Query) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	_ = a.logs.Follow(ctx, ws.ID, q.LogQuery, func(lines []store.LogLine) error {
		if len(lines) == 0 {
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return err
			}
			return rc.Flush()
		}
		for _, ln := range lines {
			v := startlogs.LineView(ln)
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %s\nevent: line\ndata: %s\n\n", v.Cursor, b); err != nil {
				return err
			}
		}
		return rc.Flush()
	})
}
