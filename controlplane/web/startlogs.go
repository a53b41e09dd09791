package web

import "time"

// StartupLogs is the startup-logs section of a workspace page (issue 21):
// one entry per script and app of the template, in order.
type StartupLogs struct {
	Runs []RunOutput
	// LimitLines is how many of each one's last lines the page shows.
	LimitLines int
}

// RunOutput is one script's or app's last run and its output.
type RunOutput struct {
	// Kind is "script" or "app"; Name its name or slug.
	Kind, Name string
	// State is the run's state, "" when it never ran; Bad marks failed
	// and timed-out runs.
	State string
	Bad   bool
	// Exit is the exit code as text, "" while running or never run.
	Exit string
	// Duration is how long the run took ("" when never run).
	Duration  string
	StartedAt time.Time
	// Lines are its last lines (masked by the agent, escaped by the
	// template); Omitted counts the older ones not shown.
	Lines   []OutputLine
	Omitted int
}

// OutputLine is one line of output.
type OutputLine struct {
	// Stream is "stdout" or "stderr".
	Stream string
	Text   string
}
