package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
)

// logsCP is a control plane that records output and run reports, and
// announces startup-logs or not (an older control plane).
type logsCP struct {
	announce bool
	hs       *httptest.Server
	wg       sync.WaitGroup

	mu       sync.Mutex // guards the fields that follow
	sessions []*yamux.Session
	logs     []proto.LogReport
	runs     []proto.RunReport
}

func newLogsCP(t *testing.T, announce bool) *logsCP {
	t.Helper()
	cp := &logsCP{announce: announce}
	cp.hs = httptest.NewServer(http.HandlerFunc(cp.connect))
	t.Cleanup(func() {
		cp.mu.Lock()
		for _, s := range cp.sessions {
			_ = s.Close()
		}
		cp.mu.Unlock()
		cp.hs.Close()
		cp.wg.Wait()
	})
	return cp
}

func (cp *logsCP) connect(w http.ResponseWriter, r *http.Request) {
	cp.wg.Add(1)
	defer cp.wg.Done()
	if cp.announce {
		w.Header().Set(proto.HeaderControlFeatures, proto.FeatureStartupLogs)
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	sess, err := yamux.Server(websocket.NetConn(context.Background(), c, websocket.MessageBinary), proto.YamuxConfig(0, 0))
	if err != nil {
		return
	}
	cp.mu.Lock()
	cp.sessions = append(cp.sessions, sess)
	cp.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+proto.PathLogs, func(w http.ResponseWriter, r *http.Request) {
		var rep proto.LogReport
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &rep)
		cp.mu.Lock()
		cp.logs = append(cp.logs, rep)
		cp.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	if cp.announce { // an older control plane has no such route
		mux.HandleFunc("POST "+proto.PathRuns, func(w http.ResponseWriter, r *http.Request) {
			var rep proto.RunReport
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &rep)
			cp.mu.Lock()
			cp.runs = append(cp.runs, rep)
			cp.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		})
	}
	_ = (&http.Server{Handler: mux}).Serve(sess)
}

// TestForwarderNegotiates: to a control plane that announced startup-logs
// the agent sends lines of all sources in one report with per-line sources,
// and its runs; to an older one, one report per run of a source, as
// before, and no runs.
func TestForwarderNegotiates(t *testing.T) {
	for _, announce := range []bool{true, false} {
		cp := newLogsCP(t, announce)
		s, err := conn.Dial(context.Background(), conn.Config{URL: cp.hs.URL, Token: "t"})
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
