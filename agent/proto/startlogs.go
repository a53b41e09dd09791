package proto

import "time"

// Startup logs (issue 21): the agent streams its startup scripts' and apps'
// output, masked of its owner's secret values, and reports each script's and
// app's runs; the control plane stores both. Negotiated both ways, so older
// agents and control planes keep working:
//   - an agent that masks output announces FeatureStartupLogs in
//     HeaderAgentFeatures; a control plane stores output only from such an
//     agent (an older agent's output is not masked, so it is dropped);
//   - a control plane that stores output announces FeatureStartupLogs in
//     HeaderControlFeatures on the upgrade answer; only then does the agent
//     send PathRuns and per-line sources (an older control plane takes
//     PathLogs reports of one source each, as before).

// FeatureStartupLogs is the feature both sides announce.
const FeatureStartupLogs = "startup-logs"

// HeaderControlFeatures lists, comma-separated, the optional features the
// control plane speaks, on its answer to the websocket upgrade.
const HeaderControlFeatures = "Courier-Control-Features"

// PathRuns is the route of run reports: POST RunReport → 204.
const PathRuns = "/v1/runs"

// Run states. A script goes running → succeeded, failed or timed_out; an
// app goes running → exited (restarted after a backoff) → running …, and
// stopped when the agent shuts down.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunTimedOut  = "timed_out"
	RunExited    = "exited"
	RunStopped   = "stopped"
)

// RunStates lists every run state, for validation.
var RunStates = []string{RunRunning, RunSucceeded, RunFailed, RunTimedOut, RunExited, RunStopped}

// Run is one script's or app's current or last run.
type Run struct {
	// Source is "script:NAME" or "app:SLUG".
	Source string `json:"source"`
	State  string `json:"state"`
	// ExitCode is the exit status of a run that ended: -1 when it was
	// killed by a signal or could not start; 0 while running.
	ExitCode  int       `json:"exit_code"`
	StartedAt time.Time `json:"started_at"`
	// DurationMS is how long the run took (or has taken), in milliseconds.
	DurationMS int64 `json:"duration_ms"`
}

// RunReport is the body of POST PathRuns.
type RunReport struct {
	Runs []Run `json:"runs"`
}

// Bounds of one report, enforced by the control plane (413 or 400 past
// them); the agent sends less.
const (
	// MaxReportLines bounds the lines of one LogReport.
	MaxReportLines = 10000
	// MaxReportRuns bounds the runs of one RunReport.
	MaxReportRuns = 256
)

// Mask is what the agent writes in place of a secret value in output.
const Mask = "***"
