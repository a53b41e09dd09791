package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/courierhq/courier/inject"
)

// serveFakeAdmin adds users, workspaces and the batch endpoint to the fake.
func (f *fakeServer) serveFakeAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v2/users", f.auth(func(w http.ResponseWriter, r *http.Request, _ string) {
		var req struct{ Username, Email, Password string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Username == "" || req.Password == "" {
			writeErr(w, http.StatusBadRequest, "Invalid user.", map[string]string{"username": "is required"})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.users[req.Username]; ok {
			writeErr(w, http.StatusConflict, "Username taken.", nil)
			return
		}
		f.users[req.Username] = req.Password
		f.secrets[req.Username] = map[string]*fakeSecret{}
		writeJSON(w, http.StatusCreated, map[string]any{"id": "u-" + req.Username, "username": req.Username, "email": req.Email})
	}))
	mux.HandleFunc("GET /api/v2/users", f.auth(func(w http.ResponseWriter, _ *http.Request, _ string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []map[string]any{}
		for u := range f.users {
			out = append(out, map[string]any{"id": "u-" + u, "username": u, "email": u + "@example.com"})
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("POST /api/v2/workspaces", f.auth(func(w http.ResponseWriter, r *http.Request, _ string) {
		var req struct {
			Name, Owner string
			Template    struct {
				Env     map[string]string
				Scripts []map[string]any
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, "Invalid workspace.", nil)
			return
		}
		f.mu.Lock()
		f.workspaces = append(f.workspaces, req.Name)
		f.lastEnv = req.Template.Env
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"id": "w-" + req.Name, "name": req.Name,
			"owner_name": req.Owner, "agent_token": "agent-token-" + req.Name, "created_at": time.Now()})
	}))
	mux.HandleFunc("GET /api/v2/workspaces", f.auth(func(w http.ResponseWriter, _ *http.Request, _ string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []map[string]any{}
		for _, n := range f.workspaces {
			out = append(out, map[string]any{"id": "w-" + n, "name": n, "owner_name": "alice", "state": "ready"})
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("POST /api/v2/users/{user}/secrets/batch", f.auth(func(w http.ResponseWriter, r *http.Request, user string) {
		var req struct{ Format, Content string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Format != "env" {
			writeErr(w, http.StatusBadRequest, "Only env in the fake.", nil)
			return
		}
		var secs []*fakeSecret
		for _, line := range strings.Split(strings.TrimSpace(req.Content), "\n") {
			k, v, _ := strings.Cut(line, "=")
			s := inject.Secret{Name: k, Value: v, EnvName: k}
			if err := s.Validate(); err != nil {
				validationErr(w, err)
				return
			}
			now := time.Now()
			secs = append(secs, &fakeSecret{Name: k, EnvName: k, ID: "s-" + k, CreatedAt: now, UpdatedAt: now, value: v})
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, s := range secs {
			f.secrets[user][s.Name] = s
		}
		writeJSON(w, http.StatusCreated, secs)
	}))
}
