package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestRequiredAndScopedSecretsAcrossReplicas: two replicas on one
// PostgreSQL database. A real agent with live files, connected to replica
// A, waits for its required secret; the owner creates it, scoped to the
// workspace, through replica B; the notification crosses to A and the
// startup script runs at once, and B reports the requirement met and the
// workspace ready. Writers of overlapping scopes racing through both
// replicas: exactly one wins (the user row lock serializes them).
func TestRequiredAndScopedSecretsAcrossReplicas(t *testing.T) {
	a, b, _ := twoReplicas(t)
	p := a.setup()
	var created CreatedWorkspaceResponse
	a.want(a.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"allow_missing_secrets": true, "template": map[string]any{
			"scripts": []map[string]any{{"name": "install", "script": `echo "token=$NPM_TOKEN" > ~/installed`}},
			"secrets": []map[string]any{{"env": "NPM_TOKEN", "required": true}},
		}}), 201).json(t, &created)
	home := t.TempDir()
	runLiveFilesAgent(t, a.URL(), created.AgentToken, home)
	state := func() WorkspaceResponse {
		var ws WorkspaceResponse
		b.want(b.do("GET", "/api/v2/workspaces/dev", p.alice, nil), 200).json(t, &ws)
		return ws
	}
	waitFor(t, "waiting_for_secrets seen through replica B", func() bool { return state().State == "waiting_for_secrets" })
	if _, err := os.Stat(filepath.Join(home, "installed")); err == nil {
		t.Fatal("the startup script ran before the required secret existed")
	}

	b.want(b.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "npm", "value": canary,
		"env_name": "NPM_TOKEN", "workspaces": []string{"dev"}}), 201)
	waitFor(t, "the startup script", func() bool {
		got, _ := os.ReadFile(filepath.Join(home, "installed"))
		return string(got) == "token="+canary+"\n"
	})
	waitFor(t, "ready, requirement met, through replica B", func() bool {
		ws := state()
		return ws.State == "ready" && len(ws.SecretRequirements) == 1 && ws.SecretRequirements[0].Status == "met"
	})

	// Overlapping scopes raced through both replicas: one wins.
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = srv.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": fmt.Sprint("race", i),
				"value": "v", "env_name": "RACE", "workspaces": []string{"shared", fmt.Sprint("own", i)}}).status
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case 201:
			won++
		case 400:
		default:
			t.Errorf("a racing create answered %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing creates of overlapping scopes won (%v), want exactly 1", won, codes)
	}
}
