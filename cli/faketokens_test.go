package cli_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveFakeTokens adds the personal API token routes to the fake: tokens
// are kept per user, and GET /api/v2/tokens answers everyone's (the fake
// has no admins; the real server's rules are tested in controlplane).
func (f *fakeServer) serveFakeTokens(mux *http.ServeMux) {
	type tok struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Scope     string    `json:"scope"`
		Username  string    `json:"username"`
		CreatedAt time.Time `json:"created_at"`
		ExpiresAt time.Time `json:"expires_at"`
		Expired   bool      `json:"expired"`
	}
	var (
		mu     sync.Mutex
		tokens = map[string]map[string]tok{}
		n      int
	)
	list := func(user string) []tok {
		out := []tok{}
		for u, m := range tokens {
			if user != "" && u != user {
				continue
			}
			for _, t := range m {
				out = append(out, t)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Username+"/"+out[i].Name < out[j].Username+"/"+out[j].Name })
		return out
	}
	mux.HandleFunc("POST /api/v2/users/{user}/tokens", f.auth(func(w http.ResponseWriter, r *http.Request, user string) {
		var req struct{ Name, Lifetime, Scope string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" {
			writeErr(w, http.StatusBadRequest, "invalid token", map[string]string{"name": "a name is required"})
			return
		}
		if req.Lifetime == "91d" {
			writeErr(w, http.StatusBadRequest, "invalid token: lifetime too long", map[string]string{"lifetime": "longer than this server's maximum of 90d"})
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, ok := tokens[user][req.Name]; ok {
			writeErr(w, http.StatusConflict, "you already have a token named "+req.Name, map[string]string{"name": "is taken"})
			return
		}
		if tokens[user] == nil {
			tokens[user] = map[string]tok{}
		}
		n++
		now := time.Now().UTC()
		t := tok{ID: "t-" + req.Name, Name: req.Name, Scope: req.Scope, Username: user, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)}
		tokens[user][req.Name] = t
		secret := "courier_pat_" + strings.Repeat("x", 40) + string(rune('A'+n%26)) + "fk"
		writeJSON(w, http.StatusCreated, struct {
			tok
			Token string `json:"token"`
		}{t, secret})
	}))
	mux.HandleFunc("GET /api/v2/users/{user}/tokens", f.auth(func(w http.ResponseWriter, _ *http.Request, user string) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, http.StatusOK, list(user))
	}))
	mux.HandleFunc("GET /api/v2/tokens", f.auth(func(w http.ResponseWriter, _ *http.Request, _ string) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, http.StatusOK, list(""))
	}))
	mux.HandleFunc("DELETE /api/v2/users/{user}/tokens/{name}", f.auth(func(w http.ResponseWriter, r *http.Request, user string) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := tokens[user][r.PathValue("name")]; !ok {
			writeErr(w, http.StatusNotFound, "token not found", nil)
			return
		}
		delete(tokens[user], r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	}))
}

func TestTokensCommands(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)

	r := c.ok(nil, "tokens", "create", "ci", "--scope", "read", "--lifetime", "12h", "-o", "json")
	var created map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatalf("create -o json: %v\n%s", err, r.stdout)
	}
	tok, _ := created["token"].(string)
	if created["name"] != "ci" || !strings.HasPrefix(tok, "courier_pat_") || created["expires_at"] == nil {
		t.Fatalf("create -o json = %s", r.stdout)
	}
	if !srv.hasRequest("POST /api/v2/users/me/tokens") {
		t.Fatal("create did not POST to /users/me/tokens")
	}

	r = c.ok(nil, "tokens", "create", "deploy")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "Token (shown once): courier_pat_") || !strings.Contains(lines[0], `"deploy"`) ||
		!strings.Contains(r.stderr, "will not show it again") {
		t.Fatalf("create table: %q / %q", r.stdout, r.stderr)
	}
	second := strings.TrimPrefix(lines[1], "Token (shown once): ")

	r = c.ok(nil, "tokens", "list")
	if !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "ci") || !strings.Contains(r.stdout, "deploy") ||
		!strings.Contains(r.stdout, "never") || strings.Contains(r.stdout, "USER") {
		t.Fatalf("list: %s", r.stdout)
	}
	r = c.ok(nil, "tokens", "ls", "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("list -o json: %s (%v)", r.stdout, err)
	}
	if r := c.ok(nil, "tokens", "list", "--all"); !strings.Contains(r.stdout, "USER") || !strings.Contains(r.stdout, "alice") {
		t.Fatalf("list --all: %s", r.stdout)
	}
	c.ok(nil, "tokens", "list", "--user", "alice")
	if !srv.hasRequest("GET /api/v2/tokens") || !srv.hasRequest("GET /api/v2/users/alice/tokens") {
		t.Fatal("--all or --user did not reach their routes")
	}

	r = c.ok(nil, "tokens", "revoke", "ci")
	if !strings.Contains(r.stdout, `Revoked token "ci"`) {
		t.Fatalf("revoke: %q", r.stdout)
	}
	after := c.ok(nil, "tokens", "list", "-o", "json").stdout + c.ok(nil, "tokens", "list").stdout
	if strings.Contains(after, `"ci"`) {
		t.Fatalf("ci still listed: %s", after)
	}
	if strings.Contains(after, tok) || strings.Contains(after, second) || strings.Contains(after, "courier_pat_") {
		t.Fatal("a token reappeared after create")
	}
}

func TestTokensErrors(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	c.ok(nil, "tokens", "create", "taken")
	for _, tc := range []struct {
		name      string
		args      []string
		want      []string
		noRequest bool // refused before any request
	}{
		{"duplicate", []string{"tokens", "create", "taken"}, []string{"already have a token named taken", "name: is taken"}, false},
		{"over the server's max", []string{"tokens", "create", "x", "--lifetime", "91d"}, []string{"maximum of 90d"}, false},
		{"bare number lifetime", []string{"tokens", "create", "x", "--lifetime", "30"}, []string{"--lifetime", "unit"}, true},
		{"negative lifetime", []string{"tokens", "create", "x", "--lifetime", "-1d"}, []string{"--lifetime"}, true},
		{"bad scope", []string{"tokens", "create", "x", "--scope", "admin"}, []string{"--scope", "read"}, true},
		{"bad name", []string{"tokens", "create", "a/b"}, []string{"'/'"}, true},
		{"no name", []string{"tokens", "create"}, []string{"NAME"}, true},
		{"bad output", []string{"tokens", "create", "x", "-o", "yaml"}, []string{"unknown output format"}, true},
		{"--user and --all", []string{"tokens", "list", "--all", "--user", "bob"}, []string{"not both"}, true},
		{"revoke unknown", []string{"tokens", "revoke", "ghost"}, []string{"token not found"}, false},
		{"unknown subcommand", []string{"tokens", "rotate", "x"}, []string{`unknown command "rotate"`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.requestsSnapshot())
			r := c.run(nil, tc.args...)
			if r.code == 0 {
				t.Fatalf("exit 0; stdout %q", r.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if after := len(srv.requestsSnapshot()); tc.noRequest && after != before {
				t.Errorf("%d requests sent for input the CLI should refuse", after-before)
			}
		})
	}
	// Nothing was created.
	r := c.ok(nil, "tokens", "list", "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 {
		t.Fatalf("tokens after failures: %s (%v)", r.stdout, err)
	}
	if r := c.run(nil, "tokens"); r.code != 0 || !strings.Contains(r.stdout, "create") {
		t.Fatalf("bare tokens: exit %d %q", r.code, r.stdout)
	}
}

// requestsSnapshot copies the requests seen so far.
func (f *fakeServer) requestsSnapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}
