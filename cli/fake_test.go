package cli_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/inject"
)

// fakeServer is an in-memory stand-in for the control plane's REST API, with
// the same routes, JSON and status codes, used until (and besides) the real
// one. It keeps raw values so tests can check what was stored.
type fakeServer struct {
	*httptest.Server
	mu         sync.Mutex        // guards the fields that follow
	users      map[string]string // username → password
	tokens     map[string]string // token → username
	secrets    map[string]map[string]*fakeSecret
	requests   []string // method + path of every request
	workspaces []string
	lastEnv    map[string]string
}

type fakeSecret struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	EnvName     string    `json:"env_name"`
	FilePath    string    `json:"file_path"`
	ID          string    `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	value       string
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{
		users:   map[string]string{"alice": "correct horse"},
		tokens:  map[string]string{},
		secrets: map[string]map[string]*fakeSecret{"alice": {}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/users/login", f.login)
	mux.HandleFunc("POST /api/v2/users/logout", f.auth(f.logout))
	mux.HandleFunc("GET /api/v2/users/{user}", f.auth(f.me))
	mux.HandleFunc("GET /api/v2/users/{user}/secrets", f.auth(f.list))
	mux.HandleFunc("POST /api/v2/users/{user}/secrets", f.auth(f.create))
	mux.HandleFunc("GET /api/v2/users/{user}/secrets/{name}", f.auth(f.get))
	mux.HandleFunc("PATCH /api/v2/users/{user}/secrets/{name}", f.auth(f.update))
	mux.HandleFunc("DELETE /api/v2/users/{user}/secrets/{name}", f.auth(f.del))
	f.serveFakeSSH(mux)
	f.serveFakeAdmin(mux)
	f.serveFakeTokens(mux) // issue 19 part 2
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// value returns the stored raw value of alice's secret name.
func (f *fakeServer) value(name string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.secrets["alice"][name]
	if !ok {
		return "", false
	}
	return s.value, true
}

func writeErr(w http.ResponseWriter, status int, msg string, fields map[string]string) {
	type v struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	}
	body := struct {
		Message     string `json:"message"`
		Validations []v    `json:"validations,omitempty"`
	}{Message: msg}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		body.Validations = append(body.Validations, v{k, fields[k]})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type handler func(w http.ResponseWriter, r *http.Request, user string)

func (f *fakeServer) auth(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("Coder-Session-Token")
		f.mu.Lock()
		user, ok := f.tokens[tok]
		f.mu.Unlock()
		if tok == "" || !ok {
			writeErr(w, http.StatusUnauthorized, "You must be logged in.", nil)
			return
		}
		if u := r.PathValue("user"); u != "" && u != "me" && u != user {
			writeErr(w, http.StatusNotFound, "User not found.", nil)
			return
		}
		h(w, r, user)
	}
}

func (f *fakeServer) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Password string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if pw, ok := f.users[req.Username]; !ok || pw != req.Password {
		writeErr(w, http.StatusUnauthorized, "Incorrect username or password.", nil)
		return
	}
	tok := "tok-" + req.Username + "-" + time.Now().Format("150405.000000000")
	f.tokens[tok] = req.Username
	writeJSON(w, http.StatusCreated, map[string]string{"session_token": tok})
}

func (f *fakeServer) logout(w http.ResponseWriter, r *http.Request, _ string) {
	f.mu.Lock()
	delete(f.tokens, r.Header.Get("Coder-Session-Token"))
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeServer) me(w http.ResponseWriter, _ *http.Request, user string) {
	writeJSON(w, http.StatusOK, map[string]any{"id": "u-" + user, "username": user,
		"email": user + "@example.com", "admin": false, "created_at": time.Now()})
}

func (f *fakeServer) list(w http.ResponseWriter, _ *http.Request, user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*fakeSecret{}
	for _, s := range f.secrets[user] {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request, user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.secrets[user][r.PathValue("name")]
	if !ok {
		writeErr(w, http.StatusNotFound, "Secret not found.", nil)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func validationErr(w http.ResponseWriter, err error) {
	var es inject.Errors
	var fe *inject.FieldError
	switch {
	case errors.As(err, &es):
		writeErr(w, http.StatusBadRequest, "Invalid secret.", es.Fields())
	case errors.As(err, &fe):
		writeErr(w, http.StatusBadRequest, "Invalid secret.", map[string]string{fe.Field: fe.Message})
	default:
		writeErr(w, http.StatusBadRequest, err.Error(), nil)
	}
}

func (f *fakeServer) create(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Name, Value, Description string
		EnvName                  string `json:"env_name"`
		FilePath                 string `json:"file_path"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "Request body is not valid JSON.", nil)
		return
	}
	sec := inject.Secret{Name: req.Name, Value: req.Value, Description: req.Description, EnvName: req.EnvName, FilePath: req.FilePath}
	if err := sec.Validate(); err != nil {
		validationErr(w, err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.secrets[user][req.Name]; ok {
		writeErr(w, http.StatusConflict, "A secret with that name already exists.", map[string]string{"name": "is taken"})
		return
	}
	now := time.Now().UTC()
	s := &fakeSecret{Name: req.Name, Description: req.Description, EnvName: req.EnvName, FilePath: req.FilePath,
		ID: "s-" + req.Name, CreatedAt: now, UpdatedAt: now, value: req.Value}
	f.secrets[user][req.Name] = s
	writeJSON(w, http.StatusCreated, s)
}

func (f *fakeServer) update(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Value       *string `json:"value"`
		Description *string `json:"description"`
		EnvName     *string `json:"env_name"`
		FilePath    *string `json:"file_path"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "Request body is not valid JSON.", nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.secrets[user][r.PathValue("name")]
	if !ok {
		writeErr(w, http.StatusNotFound, "Secret not found.", nil)
		return
	}
	next := *s
	for _, p := range []struct {
		src *string
		dst *string
	}{{req.Value, &next.value}, {req.Description, &next.Description}, {req.EnvName, &next.EnvName}, {req.FilePath, &next.FilePath}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	sec := inject.Secret{Name: next.Name, Value: next.value, Description: next.Description, EnvName: next.EnvName, FilePath: next.FilePath}
	if err := sec.Validate(); err != nil {
		validationErr(w, err)
		return
	}
	next.UpdatedAt = time.Now().UTC()
	*s = next
	writeJSON(w, http.StatusOK, s)
}

func (f *fakeServer) del(w http.ResponseWriter, r *http.Request, user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.PathValue("name")
	if _, ok := f.secrets[user][name]; !ok {
		writeErr(w, http.StatusNotFound, "Secret not found.", nil)
		return
	}
	delete(f.secrets[user], name)
	w.WriteHeader(http.StatusNoContent)
}

// hasRequest reports whether a request with this prefix was seen.
func (f *fakeServer) hasRequest(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}
