package agentapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// rawAgent is an agent that sends whatever bytes a test gives it.
func rawAgent(t *testing.T, f *fixture) *http.Client {
	t.Helper()
	ws, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(f.http.URL, "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {agentToken}, proto.HeaderVersion: {proto.Version},
			proto.HeaderAgentFeatures: {proto.FeatureStartupLogs}}})
	if err != nil {
		t.Fatal(err)
	}
	return yamuxClient(t, ws)
}

// yamuxClient is an http.Client whose requests go over ws's yamux session.
func yamuxClient(t *testing.T, ws *websocket.Conn) *http.Client {
	t.Helper()
	ws.SetReadLimit(proto.MaxMessageBytes)
	sess, err := yamux.Client(websocket.NetConn(context.Background(), ws, websocket.MessageBinary), proto.YamuxConfig(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return sess.Open() }}}
	t.Cleanup(func() { c.CloseIdleConnections(); _ = sess.Close() })
	return c
}

// TestAgentRoutesRefuseBadBodies: every body an agent posts (lifecycle,
// logs, apply) that is malformed, of the wrong types, too large, not UTF-8
// or repeats a key is a 4xx with a message, and changes nothing the control
// plane keeps (state, logs, last apply).
func TestAgentRoutesRefuseBadBodies(t *testing.T) {
	f := setup(t, false)
	c := rawAgent(t, f)
	t.Cleanup(waitLingeringCloses)
	good := map[string]string{
		proto.PathLifecycle: `{"state":"ready","detail":"` + canary + `"}`,
		proto.PathLogs:      `{"source":"script:s","lines":[{"stream":"stdout","text":"` + canary + `"}]}`,
		proto.PathApply:     `{"outcomes":[{"secret":"tok","outcome":"written","error":"` + canary + `"}]}`,
		proto.PathRuns:      `{"runs":[{"source":"script:s","state":"failed","exit_code":1,"duration_ms":5}]}`,
	}
	faults := []struct {
		name   string
		body   func(string) string
		status int
		msg    string
	}{
		{"truncated", func(g string) string { return g[:len(g)-2] }, 400, "malformed JSON"},
		{"empty", func(string) string { return "" }, 400, "malformed JSON"},
		{"wrong type", func(string) string { return `["ready"]` }, 400, "malformed JSON"},
		{"invalid UTF-8", func(g string) string { return strings.Replace(g, `":"`, "\":\"\xff", 1) }, 400, "invalid UTF-8"},
		{"repeated key", func(g string) string { return `{"at":"2026-01-01T00:00:00Z","at":"2026-01-02T00:00:00Z",` + g[1:] }, 400, `"at" appears more than once`},
		{"nested repeated key", func(g string) string { return strings.Replace(g, `"stream":`, `"text":"a","stream":`, 1) }, 400, "appears more than once"},
		{"two values", func(g string) string { return g + g }, 400, "more than one JSON value"},
		{"oversize", func(g string) string { return `{"pad":"` + strings.Repeat("p", proto.MaxBodyBytes) + `",` + g[1:] }, 413, "too large"},
	}
	for path, g := range good {
		for _, fl := range faults {
			body := fl.body(g)
			if fl.name == "nested repeated key" && !strings.Contains(g, `"stream":`) {
				continue
			}
			t.Run(path+"/"+fl.name, func(t *testing.T) {
				req, _ := http.NewRequest("POST", proto.BaseURL+path, bytes.NewReader([]byte(body)))
				req.Header.Set(proto.HeaderVersion, proto.Version)
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				var e proto.ErrorResponse
				if res.StatusCode != fl.status || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Message, fl.msg) {
					t.Fatalf("status %d body %s; want %d saying %q", res.StatusCode, b, fl.status, fl.msg)
				}
				if strings.Contains(string(b), canary) {
					t.Fatal("the answer quotes the body")
				}
			})
		}
	}
	ws, _ := f.st.WorkspaceByID(t.Context(), "w1")
	lines, _ := f.st.WorkspaceLogs(t.Context(), "w1", store.LogQuery{})
	runs, _ := f.st.ScriptRuns(t.Context(), "w1")
	if ws.State != "" || len(lines) != 0 || len(runs) != 0 {
		t.Errorf("refused bodies changed state %q, logs %d or runs %d", ws.State, len(lines), len(runs))
	}
	if st, err := f.st.AgentStatus(t.Context(), "w1"); err != nil || st.LastApply != nil {
		t.Errorf("a refused apply report was kept (%v)", err)
	}
	for _, e := range f.logs.All() {
		if strings.Contains(e.Message, canary) || strings.Contains(strings.Join(fieldStrings(e.ContextMap()), " "), canary) {
			t.Fatal("the canary reached the control plane's log")
		}
	}
}

func fieldStrings(m map[string]any) []string {
	var out []string
	for k, v := range m {
		b, _ := json.Marshal(v)
		out = append(out, k+"="+string(b))
	}
	return out
}

// waitLingeringCloses waits (bounded) for net/http's server connections that
// answered 413 before reading the whole body: they linger 500 ms before
// closing (to avoid a TCP reset), which goleak would report as a leak.
func waitLingeringCloses() {
	buf := make([]byte, 1<<20)
	for range 100 {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte("closeWriteAndWait")) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOversizeFrameFromAgent: an agent sending a websocket message over
// proto.MaxMessageBytes is cut off by the read limit (close status 1009),
// not left for keepalive to notice.
func TestOversizeFrameFromAgent(t *testing.T) {
	f := setup(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.http.URL, "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {agentToken}, proto.HeaderVersion: {proto.Version},
			proto.HeaderAgentFeatures: {proto.FeatureStartupLogs}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// Zero bytes parse as empty yamux frames: only the limit refuses them.
	_ = ws.Write(ctx, websocket.MessageBinary, make([]byte, 2*proto.MaxMessageBytes))
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusMessageTooBig {
				t.Fatalf("closed with %v (%v), want StatusMessageTooBig", s, err)
			}
			return
		}
	}
}

// TestOldAgentGetsPlainSSHStreams: an agent that announces no features (an
// older release) gets SSH streams of kind StreamSSH, with no peer header
// it would not understand.
func TestOldAgentGetsPlainSSHStreams(t *testing.T) {
	f := setup(t, false)
	t.Cleanup(waitLingeringCloses)
	ws, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(f.http.URL, "http")+proto.ConnectPath,
		&websocket.DialOptions{HTTPHeader: http.Header{proto.HeaderToken: {agentToken}, proto.HeaderVersion: {proto.Version},
			proto.HeaderAgentFeatures: {proto.FeatureStartupLogs}}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := yamux.Client(websocket.NetConn(context.Background(), ws, websocket.MessageBinary), proto.YamuxConfig(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	waitConnected(t, f.srv, 1)
	c, err := f.srv.Dial(t.Context(), "w1", proto.SSHPeer{Client: "203.0.113.7:51234"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := sess.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, _ = c.Write([]byte("SSH-2.0-x"))
	buf := make([]byte, 10)
	if _, err := io.ReadFull(st, buf); err != nil || buf[0] != proto.StreamSSH || string(buf[1:]) != "SSH-2.0-x" {
		t.Fatalf("an old agent's stream starts %q, %v; want kind 0x01 then the SSH bytes", buf, err)
	}
}
