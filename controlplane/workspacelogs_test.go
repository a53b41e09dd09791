package controlplane

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
)

// logsTemplate has two scripts and an app.
var logsTemplate = map[string]any{
	"scripts": []map[string]any{{"name": "install", "script": "true"}, {"name": "migrate", "script": "true"}},
	"apps":    []map[string]any{{"slug": "web", "command": "true"}},
}

// logsAgent creates alice's workspace "dev" with logsTemplate through ts and
// connects an agent session (the real protocol client) to at.
func logsAgent(t *testing.T, ts, at *testServer, p people) *conn.Session {
	t.Helper()
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": logsTemplate}), 201).json(t, &created)
	s, err := conn.Dial(context.Background(), conn.Config{URL: at.URL(), Token: created.AgentToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func report(t *testing.T, s *conn.Session, source string, texts ...string) {
	t.Helper()
	lines := make([]proto.LogLine, len(texts))
	for i, text := range texts {
		stream := "stdout"
		if strings.HasPrefix(text, "err:") {
			stream = "stderr"
		}
		lines[i] = proto.LogLine{Source: source, Stream: stream, At: time.Now(), Text: text}
	}
	if err := s.ReportLogs(context.Background(), proto.LogReport{Lines: lines}); err != nil {
		t.Fatal(err)
	}
}

func logTexts(p client.WorkspaceLogs) string {
	var out []string
	for _, l := range p.Lines {
		out = append(out, l.Name+":"+l.Text)
	}
	return strings.Join(out, ",")
}

// TestWorkspaceLogsAPI: lines and runs reported by the agent are served
// with cursors and filters; bad parameters are clear 400s and 404s; only
// the owner and admins read them.
func TestWorkspaceLogsAPI(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	s := logsAgent(t, ts, ts, p)
	report(t, s, "script:install", "one", "err:two")
	report(t, s, "app:web", "listening")
	if err := s.ReportRuns(context.Background(), proto.RunReport{Runs: []proto.Run{
		{Source: "script:install", State: proto.RunSucceeded, StartedAt: time.Now(), DurationMS: 1200},
		{Source: "script:migrate", State: proto.RunFailed, ExitCode: 2, StartedAt: time.Now(), DurationMS: 30},
		{Source: "app:web", State: proto.RunRunning, StartedAt: time.Now()},
	}}); err != nil {
		t.Fatal(err)
	}
	var page client.WorkspaceLogs
	ts.want(ts.do("GET", "/api/v2/workspaces/dev/logs", p.alice, nil), 200).json(t, &page)
	if logTexts(page) != "install:one,install:err:two,web:listening" || page.Lines[1].Stream != "stderr" || page.NextCursor != "3" {
		t.Fatalf("page %+v", page)
	}
	if len(page.Runs) != 3 || page.Runs[1].Name != "migrate" || *page.Runs[1].ExitCode != 2 || page.Runs[2].ExitCode != nil ||
		page.Runs[0].DurationMS != 1200 {
		t.Fatalf("runs %+v", page.Runs)
	}
	// Admins read it too, by owner/name.
	ts.want(ts.do("GET", "/api/v2/workspaces/alice%2Fdev/logs?cursor=1&limit=1", p.admin, nil), 200).json(t, &page)
	if logTexts(page) != "install:err:two" || page.NextCursor != "2" {
		t.Fatalf("cursor 1 limit 1: %+v", page)
	}
	ts.want(ts.do("GET", "/api/v2/workspaces/dev/logs?app=web", p.alice, nil), 200).json(t, &page)
	if logTexts(page) != "web:listening" {
		t.Fatalf("app=web: %q", logTexts(page))
	}
	ts.want(ts.do("GET", "/api/v2/workspaces/dev/logs?cursor=3", p.alice, nil), 200).json(t, &page)
	if len(page.Lines) != 0 || page.NextCursor != "3" || page.Lines == nil {
		t.Fatalf("after the last line: %+v", page)
	}

	bad := []struct {
		name, query string
		status      int
		msg         string
	}{
		{"cursor not a number", "cursor=abc", 400, "cursor"},
		{"negative cursor", "cursor=-1", 400, "cursor"},
		{"huge cursor", "cursor=99999999999999999999999", 400, "cursor"},
		{"limit zero", "limit=0", 400, "limit"},
		{"limit too big", "limit=10001", 400, "limit"},
		{"wait too long", "wait=61", 400, "wait"},
		{"wait not a number", "wait=soon", 400, "wait"},
		{"follow not a bool", "follow=maybe", 400, "follow"},
		{"script and app", "script=install&app=web", 400, "not both"},
		{"unknown script", "script=nope", 404, `no startup script "nope"`},
		{"unknown app", "app=nope", 404, `no app "nope"`},
		{"script named like an app", "script=web", 404, "no startup script"},
		{"hostile script name", "script=%3Cscript%3E%00", 404, "no startup script"},
	}
	for _, tc := range bad {
		r := ts.do("GET", "/api/v2/workspaces/dev/logs?"+tc.query, p.alice, nil)
		if r.status != tc.status || !strings.Contains(r.errResp(t).Message, tc.msg) {
			t.Errorf("%s: %d %s; want %d saying %q", tc.name, r.status, r.body, tc.status, tc.msg)
		}
	}
	// Bob cannot see alice's workspace, so not its logs either.
	ts.want(ts.do("GET", "/api/v2/workspaces/alice%2Fdev/logs", p.bob, nil), 404)
	ts.want(ts.do("GET", "/api/v2/workspaces/nope/logs", p.alice, nil), 404)

	// A long poll returns the line written while it waits.
	got := make(chan resp, 1)
	go func() { got <- ts.do("GET", "/api/v2/workspaces/dev/logs?cursor=3&wait=30", p.alice, nil) }()
	report(t, s, "script:migrate", "late")
	r := <-got
	r.json(t, &page)
	if r.status != 200 || logTexts(page) != "migrate:late" {
		t.Fatalf("long poll: %d %s", r.status, r.body)
	}
}

// sseLines reads "line" events of a follow stream into a channel.
func sseLines(t *testing.T, ts *testServer, path, token, lastID string) <-chan client.LogLine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL()+path, nil)
	req.Header.Set(HeaderSessionToken, token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("follow: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan client.LogLine, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		id := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				var l client.LogLine
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &l) == nil && l.Cursor == id {
					out <- l
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); _ = res.Body.Close(); <-done })
	return out
}

func nextLine(t *testing.T, ch <-chan client.LogLine) client.LogLine {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("the follow stream ended")
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no line on the follow stream")
	}
	return client.LogLine{}
}

// TestWorkspaceLogsFollow: server-sent events carry the retained lines,
// then new ones; Last-Event-ID resumes after a line; a filter applies.
func TestWorkspaceLogsFollow(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	s := logsAgent(t, ts, ts, p)
	report(t, s, "script:install", "first")
	ch := sseLines(t, ts, "/api/v2/workspaces/dev/logs?follow=true&script=install", p.alice, "")
	if l := nextLine(t, ch); l.Text != "first" || l.Cursor != "1" {
		t.Fatalf("first event %+v", l)
	}
	report(t, s, "app:web", "not this one")
	report(t, s, "script:install", "second")
	if l := nextLine(t, ch); l.Text != "second" || l.Cursor != "3" {
		t.Fatalf("second event %+v", l)
	}
	resumed := sseLines(t, ts, "/api/v2/workspaces/dev/logs?follow=true", p.alice, "2")
	if l := nextLine(t, resumed); l.Text != "second" {
		t.Fatalf("resumed at %+v, want the line after cursor 2", l)
	}
}

// TestWorkspaceLogsAcrossReplicas: lines written through replica A (the
// agent's) are read, and followed, through replica B.
func TestWorkspaceLogsAcrossReplicas(t *testing.T) {
	a, b, _ := twoReplicas(t)
	p := a.setup()
	s := logsAgent(t, a, a, p)
	report(t, s, "script:install", "through A")
	var page client.WorkspaceLogs
	b.want(b.do("GET", "/api/v2/workspaces/dev/logs", p.alice, nil), 200).json(t, &page)
	if logTexts(page) != "install:through A" {
		t.Fatalf("replica B serves %q", logTexts(page))
	}
	ch := sseLines(t, b, "/api/v2/workspaces/dev/logs?follow=true&cursor=1", p.alice, "")
	report(t, s, "script:install", "later through A")
	if l := nextLine(t, ch); l.Text != "later through A" {
		t.Fatalf("B followed %+v", l)
	}
}
