package startlogs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/internal/utf8clip"
)

// Errors of queries; the REST API answers ErrBadQuery with 400 and
// ErrUnknownSource with 404, each with its message.
var (
	// ErrBadQuery wraps a malformed cursor, limit or wait.
	ErrBadQuery = errors.New("bad logs query")
	// ErrUnknownSource wraps a script or app the template does not have.
	ErrUnknownSource = errors.New("no such script or app")
)

// Bounds of a query.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
	MaxWait      = time.Minute
)

// Query is a parsed request for a workspace's lines.
type Query struct {
	store.LogQuery
	// Wait is how long a long poll may hold for new lines (0: none).
	Wait time.Duration
}

// ParseCursor reads a cursor: "" is 0 (from the oldest), else a decimal
// line position.
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: cursor %q is not one this server gave (a line's cursor or next_cursor)", ErrBadQuery, utf8clip.Clip(s, 64))
	}
	return n, nil
}

// ParseQuery reads the parameters of a logs request against ws's
// template: cursor, script or app, limit, wait.
func ParseQuery(ws store.Workspace, cursor, script, app, limit, wait string) (Query, error) {
	var q Query
	var err error
	if q.After, err = ParseCursor(cursor); err != nil {
		return q, err
	}
	switch {
	case script != "" && app != "":
		return q, fmt.Errorf("%w: give script or app, not both", ErrBadQuery)
	case script != "":
		if !hasScript(ws, script) {
			return q, fmt.Errorf("%w: workspace %q has no startup script %q (it has: %s)", ErrUnknownSource, ws.Name,
				utf8clip.Clip(script, 64), names(ws, "script"))
		}
		q.Source = "script:" + script
	case app != "":
		if !hasApp(ws, app) {
			return q, fmt.Errorf("%w: workspace %q has no app %q (it has: %s)", ErrUnknownSource, ws.Name, utf8clip.Clip(app, 64), names(ws, "app"))
		}
		q.Source = "app:" + app
	}
	q.Limit = DefaultLimit
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fmt.Errorf("%w: limit must be a whole number from 1 to %d", ErrBadQuery, MaxLimit)
		}
		q.Limit = n
	}
	if wait != "" {
		n, err := strconv.Atoi(wait)
		if err != nil || n < 0 || time.Duration(n)*time.Second > MaxWait {
			return q, fmt.Errorf("%w: wait must be a whole number of seconds from 0 to %d", ErrBadQuery, int(MaxWait/time.Second))
		}
		q.Wait = time.Duration(n) * time.Second
	}
	return q, nil
}

func hasScript(ws store.Workspace, name string) bool {
	for _, s := range ws.Template.Scripts {
		if s.Name == name {
			return true
		}
	}
	return false
}

func hasApp(ws store.Workspace, slug string) bool {
	for _, a := range ws.Template.Apps {
		if a.Slug == slug {
			return true
		}
	}
	return false
}

func names(ws store.Workspace, kind string) string {
	var out []string
	if kind == "script" {
		for _, s := range ws.Template.Scripts {
			out = append(out, strconv.Quote(s.Name))
		}
	} else {
		for _, a := range ws.Template.Apps {
			out = append(out, strconv.Quote(a.Slug))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// Page returns ws's lines matching q with every script's and app's run.
// With q.Wait and no lines yet, it waits up to q.Wait for some.
func (l *Logs) Page(ctx context.Context, ws store.Workspace, q Query) (client.WorkspaceLogs, error) {
	lines, err := l.Read(ctx, ws.ID, q.LogQuery)
	if err != nil {
		return client.WorkspaceLogs{}, err
	}
	if len(lines) == 0 && q.Wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, q.Wait)
		errGot := errors.New("got lines")
		err := l.Follow(wctx, ws.ID, q.LogQuery, func(got []store.LogLine) error {
			if len(got) == 0 {
				return nil
			}
			lines = got
			return errGot
		})
		cancel()
		if err != nil && !errors.Is(err, errGot) {
			return client.WorkspaceLogs{}, err
		}
		if ctx.Err() != nil {
			return client.WorkspaceLogs{}, ctx.Err()
		}
	}
	runs, err := l.Runs(ctx, ws.ID)
	if err != nil {
		return client.WorkspaceLogs{}, err
	}
	out := client.WorkspaceLogs{WorkspaceID: ws.ID, Workspace: ws.Name, Lines: make([]client.LogLine, len(lines)),
		Runs: RunsView(ws, runs), NextCursor: strconv.FormatInt(q.After, 10)}
	for i, ln := range lines {
		out.Lines[i] = LineView(ln)
	}
	if len(lines) > 0 {
		out.NextCursor = out.Lines[len(lines)-1].Cursor
	}
	return out, nil
}

// LineView is a stored line as the API shows it.
func LineView(ln store.LogLine) client.LogLine {
	kind, name, _ := strings.Cut(ln.Source, ":")
	return client.LogLine{Cursor: strconv.FormatInt(ln.Seq, 10), Kind: kind, Name: name, Stream: ln.Stream,
		At: ln.At.UTC(), Text: ln.Text}
}

// RunsView lists every script and app of ws's template, in order, with its
// recorded run.
func RunsView(ws store.Workspace, runs []store.ScriptRun) []client.ScriptRun {
	bySource := make(map[string]store.ScriptRun, len(runs))
	for _, r := range runs {
		bySource[r.Source] = r
	}
	out := make([]client.ScriptRun, 0, len(ws.Template.Scripts)+len(ws.Template.Apps))
	add := func(kind, name string) {
		v := client.ScriptRun{Kind: kind, Name: name}
		if r, ok := bySource[kind+":"+name]; ok {
			v.State, v.DurationMS = r.State, r.Duration.Milliseconds()
			if !r.StartedAt.IsZero() {
				t := r.StartedAt.UTC()
				v.StartedAt = &t
			}
			if r.State != "running" {
				code := r.ExitCode
				v.ExitCode = &code
			}
		}
		out = append(out, v)
	}
	for _, s := range ws.Template.Scripts {
		add("script", s.Name)
	}
	for _, a := range ws.Template.Apps {
		add("app", a.Slug)
	}
	return out
}
