package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent"
	"github.com/courierhq/courier/agent/proto"
)

// runAgent runs a real in-process agent against ts until the returned stop
// is called (or the test ends).
func runAgent(t *testing.T, url, token, home string) (stop func()) {
	t.Helper()
	return runAgentBackoff(t, url, token, home, 200*time.Millisecond)
}

func runAgentBackoff(t *testing.T, url, token, home string, maxBackoff time.Duration) (stop func()) {
	t.Helper()
	a, err := agent.New(agent.Config{URL: url, Token: token, Home: home, DataDir: filepath.Join(home, ".agent"),
		Shell: "/bin/sh", Base: []string{"PATH=" + os.Getenv("PATH")}, Version: "v9.8.7-test",
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: maxBackoff})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = a.Close()
			if err := <-done; err != nil {
				t.Errorf("agent Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

func (ts *testServer) agentStatusOf(token, ref string) AgentStatusResponse {
	ts.t.Helper()
	var st AgentStatusResponse
	ts.want(ts.do("GET", "/api/v2/workspaces/"+url.PathEscape(ref)+"/agent", token, nil), 200).json(ts.t, &st)
	return st
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentStatusEndpoint runs a real agent and reads its status: every
// outcome kind the fixture can produce, the files left behind, access
// like the workspace's, no value anywhere (the server's cleanup scans
// every body and log line for the canary), and the status kept across a
// control plane restart.
func TestAgentStatusEndpoint(t *testing.T) {
	dataDir := t.TempDir()
	ts := newTestServer(t, func(c *Config) { c.DataDir = dataDir })
	p := ts.setup()
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &created)
	home := t.TempDir()
	base := "/api/v2/users/me/secrets"
	ts.want(ts.do("POST", base, p.alice, secretBody("tok", "env_name", "TOK", "file_path", "~/.tok")), 201)
	ts.want(ts.do("POST", base, p.alice, secretBody("a-old", "file_path", "~/same")), 201)
	ts.want(ts.do("POST", base, p.alice, secretBody("b-new", "file_path", home+"/same")), 201)
	ts.want(ts.do("POST", base, p.alice, map[string]any{"name": "paused", "value": canary, "file_path": "~/paused", "enabled": false}), 201)
	ts.want(ts.do("POST", base, p.alice, secretBody("stored")), 201)

	st := ts.agentStatusOf(p.alice, "dev")
	if st.Connected || st.LastApply != nil || st.ConnectedSince != nil || st.WorkspaceID != created.ID || st.Warnings == nil {
		t.Fatalf("status before any agent = %+v", st)
	}
	// Access: bob gets exactly the answer for a missing workspace.
	missing := ts.want(ts.do("GET", "/api/v2/workspaces/alice%2Fnope/agent", p.bob, nil), 404)
	for _, ref := range []string{"alice/dev", created.ID} {
		if r := ts.want(ts.do("GET", "/api/v2/workspaces/"+url.PathEscape(ref)+"/agent", p.bob, nil), 404); string(r.body) != string(missing.body) {
			t.Fatalf("bob on %s: %s, want %s", ref, r.body, missing.body)
		}
	}
	ts.want(ts.do("GET", "/api/v2/workspaces/dev/agent", "", nil), 401)
	ts.agentStatusOf(p.admin, "alice/dev")

	stop := runAgent(t, ts.URL(), created.AgentToken, home)
	waitFor(t, "the first apply", func() bool { return ts.agentStatusOf(p.alice, "dev").LastApply != nil })
	// Move a file target: the next apply reports the old file as left behind.
	ts.want(ts.do("PATCH", base+"/tok", p.alice, map[string]string{"file_path": "~/.tok2"}), 200)
	stop()
	// Wait until the server has seen the first connection end: a second
	// agent connecting before that would (rightly) count as a replacement,
	// which this test asserts did not happen.
	waitFor(t, "the first connection to end", func() bool { return !ts.agentStatusOf(p.alice, "dev").Connected })
	stop = runAgent(t, ts.URL(), created.AgentToken, home)
	waitFor(t, "the second apply", func() bool {
		st = ts.agentStatusOf(p.alice, "dev")
		return st.LastApply != nil && len(st.LastApply.LeftBehind) == 1 && st.Connected && st.State == proto.StateReady
	})
	if st.AgentVersion != "v9.8.7-test" || st.ConnectedSince == nil || st.RemoteAddr == "" || st.State != proto.StateReady {
		t.Errorf("connection fields = %+v", st)
	}
	if st.LastApply.LeftBehind[0] != filepath.Join(home, ".tok") {
		t.Errorf("left behind = %v", st.LastApply.LeftBehind)
	}
	want := map[string]OutcomeResponse{
		"a-old":  {Secret: "a-old", Outcome: proto.OutcomeCollision, Path: home + "/same", FilePath: "~/same", Winner: "b-new"},
		"b-new":  {Secret: "b-new", Outcome: proto.OutcomeUnchanged, Path: home + "/same", FilePath: home + "/same"},
		"paused": {Secret: "paused", Outcome: proto.OutcomeDisabled, Path: home + "/paused", FilePath: "~/paused"},
		"stored": {Secret: "stored", Outcome: proto.OutcomeNotInjected},
		"tok":    {Secret: "tok", Outcome: proto.OutcomeWritten, Path: home + "/.tok2", FilePath: "~/.tok2", EnvName: "TOK"},
	}
	if len(st.LastApply.Outcomes) != len(want) {
		t.Fatalf("outcomes = %+v", st.LastApply.Outcomes)
	}
	for _, o := range st.LastApply.Outcomes {
		if o != want[o.Secret] {
			t.Errorf("outcome %+v, want %+v", o, want[o.Secret])
		}
	}
	if _, err := os.Stat(filepath.Join(home, "paused")); err == nil {
		t.Error("a paused secret's file was written")
	}

	// Restart the control plane on the same data: the status is still there.
	stop()
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	ts2 := newTestServer(t, func(c *Config) { c.DataDir = dataDir })
	tok := ts2.login("alice", testPassword)
	after := ts2.agentStatusOf(tok, "dev")
	if after.Connected || after.LastApply == nil || len(after.LastApply.Outcomes) != len(want) ||
		after.LastApply.LeftBehind[0] != filepath.Join(home, ".tok") || after.AgentVersion != "v9.8.7-test" || after.State != proto.StateOff ||
		after.DisconnectedAt == nil {
		t.Fatalf("status after restart = %+v", after)
	}

	if after.ReplacedAt != nil || len(after.Warnings) != 0 {
		t.Fatalf("a replacement reported before any: %+v", after)
	}

	// Two agents with one token: the status shows the replacement.
	runAgentBackoff(t, ts2.URL(), created.AgentToken, home, time.Hour)
	waitFor(t, "the first agent", func() bool { return ts2.agentStatusOf(tok, "dev").Connected })
	runAgentBackoff(t, ts2.URL(), created.AgentToken, t.TempDir(), time.Hour)
	waitFor(t, "the replacement in the status", func() bool { return ts2.agentStatusOf(tok, "dev").ReplacedAt != nil })
	st = ts2.agentStatusOf(tok, "dev")
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "another agent connected with this workspace's token from "+st.RemoteAddr) {
		t.Fatalf("warnings = %q (connected from %s)", st.Warnings, st.RemoteAddr)
	}
}

// TestOutcomeResponseCarriesEveryField: every field of the agent
// protocol's outcome reaches the REST API's, so the two mirrors of one
// report cannot drift: a field added to proto.Outcome and not to
// outcomeResponse fails here.
func TestOutcomeResponseCarriesEveryField(t *testing.T) {
	var in proto.Outcome
	v := reflect.ValueOf(&in).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() != reflect.String {
			t.Fatalf("proto.Outcome.%s is not a string: extend this test", v.Type().Field(i).Name)
		}
		v.Field(i).SetString(fmt.Sprintf("field-%d-%s", i, v.Type().Field(i).Name))
	}
	out, err := json.Marshal(outcomeResponse(in))
	if err != nil {
		t.Fatal(err)
	}
	for i := range v.NumField() {
		if !strings.Contains(string(out), v.Field(i).String()) {
			t.Errorf("proto.Outcome.%s does not reach the REST response: %s", v.Type().Field(i).Name, out)
		}
	}
	// And the other way: no REST field is left empty.
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	for k, val := range back {
		if val == "" {
			t.Errorf("REST outcome field %q is not filled from proto.Outcome", k)
		}
	}
}

// TestApplyResponseCarriesEveryField: every field of the agent's apply
// report reaches the REST answer, and every field of the REST answer is
// filled from it, so that a field added to one side only fails here.
func TestApplyResponseCarriesEveryField(t *testing.T) {
	var in proto.ApplyReport
	v := reflect.ValueOf(&in).Elem()
	markers := make([]string, v.NumField()) // what field i looks like in the JSON
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		mark := fmt.Sprintf("field-%d-%s", i, name)
		switch {
		case f.Kind() == reflect.String:
			f.SetString(mark)
		case f.Kind() == reflect.Int64:
			f.SetInt(int64(7000 + i))
			mark = fmt.Sprint(7000 + i)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
			mark = "true"
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2001+i, 2, 3, 4, 5, 6, 0, time.UTC)))
			mark = fmt.Sprint(2001 + i)
		case f.Type() == reflect.TypeFor[[]string]():
			f.Set(reflect.ValueOf([]string{mark}))
		case f.Type() == reflect.TypeFor[[]proto.Outcome]():
			f.Set(reflect.ValueOf([]proto.Outcome{{Secret: mark}}))
		default:
			t.Fatalf("proto.ApplyReport.%s is a %s: extend this test", name, f.Type())
		}
		markers[i] = mark
	}
	out, err := json.Marshal(applyResponse(in))
	if err != nil {
		t.Fatal(err)
	}
	for i, mark := range markers {
		if !strings.Contains(string(out), mark) {
			t.Errorf("proto.ApplyReport.%s does not reach the REST answer: %s", v.Type().Field(i).Name, out)
		}
	}
	// And the other way: no REST field is left at its zero value.
	var back map[string]any
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	for k, val := range back {
		if val == nil || val == "" || val == false || val == float64(0) || reflect.ValueOf(val).Kind() == reflect.Slice && reflect.ValueOf(val).Len() == 0 {
			t.Errorf("REST apply field %q is not filled from proto.ApplyReport: %s", k, out)
		}
	}
}
