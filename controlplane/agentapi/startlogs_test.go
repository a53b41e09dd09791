package agentapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/startlogs"
	"github.com/courierhq/courier/controlplane/store"
)

// TestStartupLogsStored: an agent that announces startup-logs has its
// lines (per-line sources, in order) and runs stored; the control plane
// announces the feature back.
func TestStartupLogsStored(t *testing.T) {
	f := setup(t, false)
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.ControlHas(proto.FeatureStartupLogs) {
		t.Fatal("the control plane did not announce startup-logs")
	}
	ctx := context.Background()
	err = s.ReportLogs(ctx, proto.LogReport{Lines: []proto.LogLine{
		{Source: "script:s", Stream: "stdout", Text: "one"},
		{Source: "script:s", Stream: "stderr", Text: "two"},
		{Source: "script:ghost", Stream: "stdout", Text: "not in the template"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.st.WorkspaceLogs(ctx, "w1", store.LogQuery{})
	if len(got) != 2 || got[0].Text != "one" || got[1].Stream != "stderr" || got[0].At.IsZero() {
		t.Fatalf("stored %+v", got)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.ReportRuns(ctx, proto.RunReport{Runs: []proto.Run{
		{Source: "script:s", State: proto.RunFailed, ExitCode: 3, StartedAt: start, DurationMS: 1500},
		{Source: "app:ghost", State: proto.RunRunning},
	}}); err != nil {
		t.Fatal(err)
	}
	runs, _ := f.st.ScriptRuns(ctx, "w1")
	if len(runs) != 1 || runs[0].ExitCode != 3 || runs[0].State != proto.RunFailed || runs[0].Duration != 1500*time.Millisecond ||
		!runs[0].StartedAt.Equal(start) {
		t.Fatalf("runs %+v", runs)
	}
	for _, bad := range []proto.RunReport{
		{Runs: []proto.Run{{Source: "script:s", State: "exploded"}}},
		{Runs: []proto.Run{{Source: "script:s", State: proto.RunFailed, DurationMS: -1}}},
		{Runs: make([]proto.Run, proto.MaxReportRuns+1)},
	} {
		if err := s.ReportRuns(ctx, bad); err == nil {
			t.Errorf("bad run report accepted: %.80v", bad)
		}
	}
}

// TestOlderAgentOutputNotStored: an agent that does not announce
// startup-logs does not mask its output, so it is not stored.
func TestOlderAgentOutputNotStored(t *testing.T) {
	f := setup(t, false)
	c := oldAgent(t, f)
	req, _ := http.NewRequest("POST", proto.BaseURL+proto.PathLogs,
		strings.NewReader(`{"source":"script:s","lines":[{"stream":"stdout","text":"`+canary+`"}]}`))
	req.Header.Set(proto.HeaderVersion, proto.Version)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", res.StatusCode)
	}
	if got, _ := f.st.WorkspaceLogs(t.Context(), "w1", store.LogQuery{}); len(got) != 0 {
		t.Fatalf("stored an older agent's unmasked output: %d lines", len(got))
	}
}

// oldAgent connects like an agent of before startup logs (no features).
func oldAgent(t *testing.T, f *fixture) *http.Client {
	t.Helper()
	t.Cleanup(waitLingeringCloses)
	ws, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(f.http.URL, "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {agentToken}, proto.HeaderVersion: {proto.Version}}})
	if err != nil {
		t.Fatal(err)
	}
	return yamuxClient(t, ws)
}

// TestStartupLogsBoundServerSide: an agent that ignores the bounds cannot
// make the control plane keep more than its limits.
func TestStartupLogsBoundServerSide(t *testing.T) {
	var logs *startlogs.Logs
	f := setupCfg(t, func(c *agentapi.Config) {
		var err error
		logs, err = startlogs.New(startlogs.Config{Store: c.Store, Limits: store.LogLimits{MaxLines: 50, MaxBytes: 400}, MinInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		c.Logs = logs
	})
	s, err := conn.Dial(context.Background(), conn.Config{URL: f.http.URL, Token: agentToken})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 20 {
		lines := make([]proto.LogLine, 30)
		for j := range lines {
			lines[j] = proto.LogLine{Source: "script:s", Text: strings.Repeat(string(rune('a'+i)), 5)}
		}
		if err := s.ReportLogs(ctx, proto.LogReport{Lines: lines}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := f.st.WorkspaceLogs(ctx, "w1", store.LogQuery{})
	bytes := 0
	for _, l := range got {
		bytes += len(l.Text)
	}
	if len(got) > 50 || bytes > 400 || got[len(got)-1].Text != "ttttt" || got[len(got)-1].Seq != 600 {
		t.Fatalf("kept %d lines, %d bytes, last %+v; want at most 50 and 400, ending with the newest (seq 600)", len(got), bytes, got[len(got)-1])
	}
	if err := s.ReportLogs(ctx, proto.LogReport{Source: "script:s", Lines: make([]proto.LogLine, proto.MaxReportLines+1)}); err == nil ||
		!strings.Contains(err.Error(), "413") {
		t.Fatalf("a report over MaxReportLines: %v, want 413", err)
	}
}
