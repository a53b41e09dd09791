package controlplane

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
)

// nextChange waits (generously) for a secrets-changed message to agent and
// returns it decoded, failing if it carries anything but a revision.
func nextChange(t *testing.T, agent *fakeAgent) proto.SecretsChanged {
	t.Helper()
	select {
	case raw := <-agent.changed:
		if strings.Contains(string(raw), canary) {
			t.Fatal("a secrets-changed message carries the value")
		}
		var fields map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil || len(fields) != 1 {
			t.Fatalf("message %q: want exactly one field, revision (%v)", raw, err)
		}
		var m proto.SecretsChanged
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no secrets-changed message reached the agent")
	}
	return proto.SecretsChanged{}
}

// TestSecretWritesTellConnectedAgents: every write path (REST create, PATCH,
// DELETE, batch, and the dashboard's forms) tells the owner's connected
// agent, with a growing revision and nothing else; another user's write
// does not. The status shows changes pending until the agent fetches and
// reports an apply, and the dashboard says so too.
func TestSecretWritesTellConnectedAgents(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": map[string]any{}}), 201).json(t, &created)
	agent := dialAgent(t, ts, created.AgentToken)

	status := func() AgentStatusResponse {
		t.Helper()
		var st AgentStatusResponse
		ts.want(ts.do("GET", "/api/v2/workspaces/dev/agent", p.alice, nil), 200).json(t, &st)
		return st
	}
	applyNow := func(live bool) {
		t.Helper()
		var secrets proto.SecretsResponse
		if st := agent.call(t, "GET", proto.PathSecrets, nil, &secrets); st != 200 {
			t.Fatalf("secrets: %d", st)
		}
		if st := agent.call(t, "POST", proto.PathApply, proto.ApplyReport{At: time.Now(), SecretsRevision: 999, LiveFiles: live}, nil); st != 204 {
			t.Fatalf("apply: %d", st)
		}
	}
	applyNow(false)
	if st := status(); st.ChangesPending || st.LastApply == nil {
		t.Fatalf("after the first apply: %+v", st)
	} else if st.LastApply.SecretsRevision != 0 {
		t.Fatalf("the apply recorded revision %d, the agent's claim; want the 0 the control plane served", st.LastApply.SecretsRevision)
	}

	var last int64
	// On PostgreSQL the notifier resyncs every agent once its LISTEN is
	// established, which may be after the agent connected: a message with
	// the current revision, not a change. One is let through.
	resynced := false
	step := func(what string, write func()) {
		t.Helper()
		write()
		m := nextChange(t, agent)
		if m.Revision == last && !resynced {
			resynced = true
			m = nextChange(t, agent)
		}
		if m.Revision <= last {
			t.Fatalf("%s: revision %d, want more than %d", what, m.Revision, last)
		}
		last = m.Revision
		if st := status(); !st.ChangesPending || st.SecretsRevision != last {
			t.Fatalf("%s: status pending=%t revision=%d, want pending at %d", what, st.ChangesPending, st.SecretsRevision, last)
		}
	}
	step("REST create", func() {
		ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("tok", "env_name", "TOK")), 201)
	})
	step("REST update", func() {
		ts.want(ts.do("PATCH", "/api/v2/users/me/secrets/tok", p.alice, map[string]any{"description": "d"}), 200)
	})
	step("REST batch", func() {
		ts.want(ts.do("POST", "/api/v2/users/me/secrets/batch", p.alice, map[string]any{"format": "env",
			"content": "BATCHED=" + canary + "\n"}), 201)
	})
	step("REST delete", func() { ts.want(ts.do("DELETE", "/api/v2/users/me/secrets/BATCHED", p.alice, nil), 204) })

	b := ts.browser()
	b.login("alice")
	page := wantPage(t, b.get("/workspaces/dev"), 200)
	if !strings.Contains(page, `id="changes-pending"`) {
		t.Fatal("the workspace page does not show changes pending")
	}
	step("dashboard create", func() {
		r := b.post("/account/secrets/new", url.Values{"name": {"dash"}, "value": {canary}})
		if r.status != 303 {
			t.Fatalf("dashboard create: %d %s", r.status, r.body)
		}
	})
	step("dashboard delete", func() {
		r := b.post("/account/secrets/dash/delete", url.Values{})
		if r.status != 303 {
			t.Fatalf("dashboard delete: %d %s", r.status, r.body)
		}
	})

	// A refused write and another user's write tell nobody.
	ts.want(ts.do("PATCH", "/api/v2/users/me/secrets/nope", p.alice, map[string]any{"description": "d"}), 404)
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.bob, secretBody("bobs")), 201)

	// An apply after the change clears it.
	applyNow(false)
	st := status()
	if st.ChangesPending || st.LastApply == nil || st.LastApply.SecretsRevision != last {
		t.Fatalf("after an apply at revision %d: pending=%t applied=%+v", last, st.ChangesPending, st.LastApply)
	}
	if page := wantPage(t, b.get("/workspaces/dev"), 200); strings.Contains(page, `id="changes-pending"`) {
		t.Fatal("the workspace page still shows changes pending after the apply")
	}
	select {
	case raw := <-agent.changed:
		t.Fatalf("a message %q for a refused write or another user's write", raw)
	default:
	}

	// An agent that reports live files: the page says changes are applied
	// as they are made, and that pending ones are being applied.
	applyNow(true)
	if page := wantPage(t, b.get("/workspaces/dev"), 200); !strings.Contains(page, `id="live-files"`) {
		t.Fatal("the workspace page does not say live files are on")
	}
	step("REST update with live files", func() {
		ts.want(ts.do("PATCH", "/api/v2/users/me/secrets/tok", p.alice, map[string]any{"description": "e"}), 200)
	})
	if page := wantPage(t, b.get("/workspaces/dev"), 200); !strings.Contains(page, "the agent is applying them now") {
		t.Fatal("the workspace page does not say live files are applying the pending change")
	}
}
