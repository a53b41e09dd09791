package startlogs

import (
	"context"
	"strconv"
	"time"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// DashLines is how many of each script's or app's last lines the
// dashboard shows.
const DashLines = 200

// Dash returns the startup-logs section of ws's dashboard page: each
// script and app of the template with its last run and last DashLines
// lines.
func (l *Logs) Dash(ctx context.Context, ws store.Workspace) (web.StartupLogs, error) {
	lines, err := l.Read(ctx, ws.ID, store.LogQuery{})
	if err != nil {
		return web.StartupLogs{}, err
	}
	runs, err := l.Runs(ctx, ws.ID)
	if err != nil {
		return web.StartupLogs{}, err
	}
	bySource := map[string][]web.OutputLine{}
	for _, ln := range lines {
		bySource[ln.Source] = append(bySource[ln.Source], web.OutputLine{Stream: ln.Stream, Text: ln.Text})
	}
	out := web.StartupLogs{LimitLines: DashLines}
	for _, r := range RunsView(ws, runs) {
		v := web.RunOutput{Kind: r.Kind, Name: r.Name, State: r.State,
			Bad: r.State == "failed" || r.State == "timed_out"}
		if r.ExitCode != nil {
			v.Exit = strconv.Itoa(*r.ExitCode)
		}
		if r.StartedAt != nil {
			v.StartedAt = *r.StartedAt
			v.Duration = (time.Duration(r.DurationMS) * time.Millisecond).String()
		}
		ls := bySource[r.Kind+":"+r.Name]
		if n := len(ls) - DashLines; n > 0 {
			ls, v.Omitted = ls[n:], n
		}
		v.Lines = ls
		out.Runs = append(out.Runs, v)
	}
	return out, nil
}
