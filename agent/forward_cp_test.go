package agent

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
)

// logsCP is a control plane that records output and run reports, and
// announces startup-logs or not (an older control plane, which has no
// runs route).
type logsCP struct {
	*fakeCP

	mu   sync.Mutex // guards the fields that follow
	logs []proto.LogReport
	runs []proto.RunReport
}

func newLogsCP(t *testing.T, announce bool) *logsCP {
	t.Helper()
	cp := &logsCP{}
	features := ""
	if announce {
		features = proto.FeatureStartupLogs
	}
	cp.fakeCP = newFakeCP(t, features, func(mux *http.ServeMux) {
		mux.HandleFunc("POST "+proto.PathLogs, collect(&cp.mu, &cp.logs))
		if announce {
			mux.HandleFunc("POST "+proto.PathRuns, collect(&cp.mu, &cp.runs))
		}
	})
	return cp
}

// TestForwarderNegotiates: to a control plane that announced startup-logs
// the agent sends lines of all sources in one report with per-line sources,
// and its runs; to an older one, one report per run of a source, as
// before, and no runs.
func TestForwarderNegotiates(t *testing.T) {
	for _, announce := range []bool{true, false} {
		cp := newLogsCP(t, announce)
		s, err := conn.Dial(context.Background(), conn.Config{URL: cp.URL(), Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		f := newForwarder(func() *conn.Session { return s }, zap.NewNop())
		f.Log("script:a", "stdout", "a1")
		f.Log("app:web", "stdout", "w1")
		f.Log("script:a", "stderr", "a2")
		f.Run(proto.Run{Source: "script:a", State: proto.RunSucceeded})
		f.flush(context.Background())
		_ = s.Close()
		cp.mu.Lock()
		logs, runs := cp.logs, cp.runs
		cp.mu.Unlock()
		if announce {
			if len(logs) != 1 || len(logs[0].Lines) != 3 || logs[0].Lines[1].Source != "app:web" || len(runs) != 1 ||
				runs[0].Runs[0].State != proto.RunSucceeded {
				t.Errorf("to a control plane with startup-logs: logs %+v runs %+v", logs, runs)
			}
			continue
		}
		if len(logs) != 3 || logs[0].Source != "script:a" || logs[1].Source != "app:web" || logs[2].Lines[0].Text != "a2" ||
			logs[0].Lines[0].Source != "" || len(runs) != 0 {
			t.Errorf("to an older control plane: logs %+v runs %+v", logs, runs)
		}
		if len(f.queue) != 0 {
			t.Errorf("%d lines left queued", len(f.queue))
		}
	}
}
