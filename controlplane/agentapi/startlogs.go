package agentapi

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// sources are the output sources a workspace's agent may report: its
// template's scripts and apps. Anything else (a compromised workspace holds
// the agent token) is dropped, so what is stored stays bounded and named.
func sources(ws store.Workspace) map[string]bool {
	out := make(map[string]bool, len(ws.Template.Scripts)+len(ws.Template.Apps))
	for _, sc := range ws.Template.Scripts {
		out["script:"+sc.Name] = true
	}
	for _, a := range ws.Template.Apps {
		out["app:"+a.Slug] = true
	}
	return out
}

// sourcesOf reads the workspace's template from the store (a session
// keeps no template; see connect) and returns its scripts' and apps'
// sources.
func (s *Server) sourcesOf(w http.ResponseWriter, r *http.Request, sess *session) (map[string]bool, bool) {
	ws, err := s.cfg.Store.WorkspaceByID(r.Context(), sess.ws.ID)
	if err != nil {
		s.internal(w, "reading the workspace's template", err)
		return nil, false
	}
	return sources(ws), true
}

// logs stores an agent's output (POST proto.PathLogs). Output of an agent
// that did not announce proto.FeatureStartupLogs is not masked of secret
// values, so it is dropped (204: the older agent has nothing to do).
func (s *Server) logs(w http.ResponseWriter, r *http.Request, sess *session) {
	var rep proto.LogReport
	if !decode(w, r, &rep) {
		return
	}
	if len(rep.Lines) > proto.MaxReportLines {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d lines in one report, at most %d", len(rep.Lines), proto.MaxReportLines))
		return
	}
	if !sess.startupLogs {
		s.log.Debug("output of an agent that does not mask it is not stored", zap.String("workspace_id", sess.ws.ID),
			zap.Int("lines", len(rep.Lines)))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	known, ok := s.sourcesOf(w, r, sess)
	if !ok {
		return
	}
	lines := make([]store.LogLine, 0, len(rep.Lines))
	dropped := 0
	for _, l := range rep.Lines {
		src := rep.Source
		if l.Source != "" {
			src = l.Source
		}
		if !known[src] {
			dropped++
			continue
		}
		lines = append(lines, s.cfg.Logs.Clean(store.LogLine{Source: src, Stream: l.Stream, At: l.At, Text: l.Text}))
	}
	if err := s.cfg.Logs.Append(r.Context(), sess.ws.ID, lines); err != nil {
		s.internal(w, "storing output", err)
		return
	}
	// Output may hold anything a program printed (masked of the owner's
	// values by the agent), so only its size is logged here.
	s.log.Debug("agent output stored", zap.String("workspace_id", sess.ws.ID), zap.Int("lines", len(lines)),
		zap.Int("dropped_unknown_source", dropped))
	w.WriteHeader(http.StatusNoContent)
}

// runs records script and app runs (POST proto.PathRuns).
func (s *Server) runs(w http.ResponseWriter, r *http.Request, sess *session) {
	var rep proto.RunReport
	if !decode(w, r, &rep) {
		return
	}
	if len(rep.Runs) > proto.MaxReportRuns {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d runs in one report, at most %d", len(rep.Runs), proto.MaxReportRuns))
		return
	}
	known, ok := s.sourcesOf(w, r, sess)
	if !ok {
		return
	}
	now := s.cfg.Now().UTC()
	runs := make([]store.ScriptRun, 0, len(rep.Runs))
	for _, run := range rep.Runs {
		if !slices.Contains(proto.RunStates, run.State) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown run state %q", run.State))
			return
		}
		if run.DurationMS < 0 {
			writeError(w, http.StatusBadRequest, "negative run duration")
			return
		}
		if !known[run.Source] {
			continue
		}
		runs = append(runs, store.ScriptRun{Source: run.Source, State: run.State, ExitCode: run.ExitCode,
			StartedAt: run.StartedAt.UTC(), Duration: time.Duration(min(run.DurationMS, 1<<40)) * time.Millisecond, UpdatedAt: now})
	}
	if err := s.cfg.Logs.SetRuns(r.Context(), sess.ws.ID, runs); err != nil {
		s.internal(w, "storing runs", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
