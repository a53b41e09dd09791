package controlplane

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// The workspace page shows the stored status: state, connection, version,
// one row per secret with its outcome in words, the files left behind and
// the warnings.
func TestDashWorkspacePage(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	var ws CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &ws)

	alice := ts.browser()
	alice.login("alice")
	page := wantPage(t, alice.get("/workspaces/"+ws.ID), 200)
	if !strings.Contains(page, "none reported yet") || !strings.Contains(page, "never connected") {
		t.Fatalf("a workspace without an agent: %s", page)
	}

	ctx := context.Background()
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	if err := ts.store.AgentConnected(ctx, ws.ID, store.AgentConnection{ID: "c1", RemoteAddr: "10.0.0.7:4242", AgentVersion: "v1.2.3", At: at}); err != nil {
		t.Fatal(err)
	}
	rep := proto.ApplyReport{At: at.Add(time.Second), Outcomes: []proto.Outcome{
		{Secret: "api-key", EnvName: "API_KEY", Path: "/home/alice/.key", Target: "~/.key", Outcome: proto.OutcomeWritten},
		{Secret: "bad name!", Path: "/abs", Target: "/abs", Outcome: proto.OutcomeWritten},
		{Secret: "same", Path: "~/.same", Outcome: proto.OutcomeUnchanged},
		{Secret: "home-x", Path: "~/x", Outcome: proto.OutcomeCollision, Winner: "abs-x"},
		{Secret: "broken", Path: "/root/nope", Outcome: proto.OutcomeFailed, Error: "open /root/nope: permission denied"},
		{Secret: "paused", EnvName: "PAUSED", Outcome: proto.OutcomeDisabled},
	}, Warnings: []string{`file secrets collide at /home/alice/x: "abs-x" wins over "home-x"`}, LeftBehind: []string{"/home/alice/.old-key"}}
	if err := ts.store.SetAgentApply(ctx, ws.ID, rep); err != nil {
		t.Fatal(err)
	}
	page = wantPage(t, alice.get("/workspaces/"+ws.ID), 200)
	for _, want := range []string{
		"connected since 2026-11-25 09:30:00 UTC", "v1.2.3", `<dd id="applied-at">2026-11-25 09:30:01 UTC</dd>`,
		`<th scope="row" data-label="Secret">api-key</th>`, "<code>API_KEY</code>", `<td data-label="Outcome">written</td>`,
		// The path as the owner wrote it first, then what it resolved to.
		`<code>~/.key</code><br><small class="resolved">→ <code>/home/alice/.key</code></small>`,
		// A name with a space and "!" still makes a valid id.
		`<tr id="outcome-bad_20name_21">`, `<td data-label="File"><code>/abs</code></td>`,
		`<td data-label="Outcome">unchanged</td>`,
		`<tr id="outcome-home-x" class="bad">`, "lost a collision to abs-x (same file)",
		"failed: open /root/nope: permission denied",
		"disabled: paused, not delivered",
		"<li><code>/home/alice/.old-key</code></li>",
		"file secrets collide at /home/alice/x: &#34;abs-x&#34; wins over &#34;home-x&#34;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("workspace page lacks %s", want)
		}
	}
	// The list links to it with the agent's state.
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "other", "owner": "bob"}), 201)
	list := wantPage(t, alice.get("/workspaces"), 200)
	if !strings.Contains(list, `<a href="/workspaces/`+ws.ID+`">dev</a>`) || strings.Contains(list, ">other<") {
		t.Fatalf("workspace list: %s", list)
	}
	// bob: 404, whatever the spelling.
	bob := ts.browser()
	bob.login("bob")
	for _, ref := range []string{ws.ID, "alice%2Fdev"} {
		if page := wantPage(t, bob.get("/workspaces/"+ref), http.StatusNotFound); strings.Contains(page, "api-key") {
			t.Fatal("bob sees alice's status")
		}
	}
}
