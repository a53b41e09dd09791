package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/courierhq/courier/agent/proto"
)

// A broken or malicious control plane: it speaks the agent protocol (the
// websocket upgrade and yamux succeed) but answers the protocol's requests
// with errors, garbage, truncated or oversize bodies, wrong types, or
// secrets that break the rules. The agent must refuse cleanly: no file
// changes, no apply from a bad answer, retries with backoff, and recovery
// when the answers are good again.

// fakeCP is a control plane whose /v1/manifest and /v1/secrets answers the
// test sets.
type fakeCP struct {
	srv      *httptest.Server
	manifest atomic.Pointer[[]byte] // raw body, with status 200 unless set as error
	secrets  atomic.Pointer[[]byte]
	status   atomic.Int32 // status of /v1/secrets (0: 200)
	connects atomic.Int64

	mu      sync.Mutex
	applies []proto.ApplyReport
	muxes   []*yamux.Session
	wg      sync.WaitGroup
}

func newFakeCP(t *testing.T) *fakeCP {
	t.Helper()
	f := &fakeCP{}
	m, _ := json.Marshal(proto.Manifest{WorkspaceID: "w", WorkspaceName: "dev", OwnerID: "u", OwnerName: "dev"})
	f.manifest.Store(&m)
	routes := http.NewServeMux()
	routes.HandleFunc("GET "+proto.PathManifest, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(*f.manifest.Load())
	})
	routes.HandleFunc("GET "+proto.PathSecrets, func(w http.ResponseWriter, _ *http.Request) {
		if s := f.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
		_, _ = w.Write(*f.secrets.Load())
	})
	routes.HandleFunc("POST "+proto.PathApply, func(w http.ResponseWriter, r *http.Request) {
		var rep proto.ApplyReport
		_ = json.NewDecoder(r.Body).Decode(&rep)
		f.mu.Lock()
		f.applies = append(f.applies, rep)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	routes.HandleFunc("POST /v1/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != proto.ConnectPath {
			http.NotFound(w, r)
			return
		}
		f.connects.Add(1)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.SetReadLimit(proto.MaxMessageBytes)
		nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
		mux, err := yamux.Server(nc, proto.YamuxConfig(time.Second, time.Second))
		if err != nil {
			_ = nc.Close()
			return
		}
		f.mu.Lock()
		f.muxes = append(f.muxes, mux)
		f.wg.Add(1)
		f.mu.Unlock()
		defer f.wg.Done()
		hs := &http.Server{Handler: routes}
		_ = hs.Serve(mux)
		_ = hs.Close()
		_ = nc.Close()
	}))
	t.Cleanup(func() {
		f.mu.Lock()
		for _, m := range f.muxes {
			_ = m.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
		f.srv.Close()
	})
	return f
}

func (f *fakeCP) setSecrets(status int, body string) {
	b := []byte(body)
	f.status.Store(int32(status))
	f.secrets.Store(&b)
}

func (f *fakeCP) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.muxes {
		_ = m.Close()
	}
	f.muxes = nil
}

func (f *fakeCP) applyCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applies)
}

func (f *fakeCP) lastApply() proto.ApplyReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies[len(f.applies)-1]
}

func secretsJSON(secs ...proto.Secret) string {
	b, _ := json.Marshal(proto.SecretsResponse{Secrets: secs})
	return string(b)
}

// TestBrokenControlPlaneAnswers: after a good first apply, each bad answer
// is served on a reconnect. The file keeps its value, no apply is reported,
// the agent keeps trying, and a good answer afterwards applies.
func TestBrokenControlPlaneAnswers(t *testing.T) {
	good := func(v string) string {
		return secretsJSON(proto.Secret{ID: "1", Name: "s", Value: v, FilePath: "~/s", UpdatedAt: time.Now()})
	}
	bad := []struct {
		name     string
		status   int
		body     string
		manifest string // replaces the manifest when set
	}{
		{name: "secrets 500", status: 500, body: `{"message":"internal error"}`},
		{name: "secrets 502 with HTML", status: 502, body: `<html>bad gateway</html>`},
		{name: "secrets garbage", body: "\x00\xffnot json at all"},
		{name: "secrets truncated", body: good(canary + "-bad")[:40]},
		{name: "secrets wrong types", body: `{"secrets":[{"name":5,"value":true,"file_path":["~/s"]}]}`},
		{name: "secrets oversize", body: `{"secrets":[{"name":"s","file_path":"~/s","value":"` + strings.Repeat("x", proto.MaxBodyBytes) + `"}]}`},
		{name: "manifest garbage", body: good(canary + "-bad"), manifest: "{{{{"},
	}
	f := newFakeCP(t)
	f.setSecrets(0, good(canary+"-v1"))
	home, logs, _ := startAgentVia(t, f.srv.URL)
	file := filepath.Join(home, "s")
	eventually(t, "the first apply", func() bool { return readFile(file) == canary+"-v1" && f.applyCount() == 1 })
	goodManifest := *f.manifest.Load()
	r := watchFile(file, canary+"-v1")
	for _, c := range bad {
		if c.manifest != "" {
			m := []byte(c.manifest)
			f.manifest.Store(&m)
		}
		f.setSecrets(c.status, c.body)
		applies, base := f.applyCount(), f.connects.Load()
		f.cut()
		eventually(t, "two attempts under "+c.name, func() bool { return f.connects.Load() >= base+2 })
		if f.applyCount() != applies {
			t.Fatalf("%s: the agent reported an apply from a bad answer", c.name)
		}
		if got := readFile(file); got != canary+"-v1" {
			t.Fatalf("%s: the file changed to %d bytes", c.name, len(got))
		}
		f.manifest.Store(&goodManifest)
	}
	r.check(t)
	f.setSecrets(0, good(canary+"-v2"))
	f.cut()
	eventually(t, "the apply after the bad answers", func() bool { return readFile(file) == canary+"-v2" })
	if strings.Contains(logs.String(), canary) {
		t.Error("the agent log holds a value")
	}
}

// TestHostileSecretsRefused: a control plane sends secrets that break the
// rules (paths that are relative, name another user's home or hold NUL; env
// names that are reserved, malformed or the agent's own; NUL in an env
// value). Each is refused and reported as failed, nothing is written
// outside the home but where an absolute path says, the good secret is
// applied, and the agent's token variable is never set.
func TestHostileSecretsRefused(t *testing.T) {
	now := time.Now()
	hostile := []proto.Secret{
		{ID: "1", Name: "relative", Value: canary, FilePath: "relative/x", UpdatedAt: now},
		{ID: "2", Name: "other-home", Value: canary, FilePath: "~root/x", UpdatedAt: now},
		{ID: "3", Name: "nul-path", Value: canary, FilePath: "~/a\x00b", UpdatedAt: now},
		{ID: "4", Name: "env-path", Value: canary, EnvName: "PATH", UpdatedAt: now},
		{ID: "5", Name: "env-equals", Value: canary, EnvName: "A=B", UpdatedAt: now},
		{ID: "6", Name: "env-nul-name", Value: canary, EnvName: "A\x00B", UpdatedAt: now},
		{ID: "7", Name: "env-agent-token", Value: canary, EnvName: "COURIER_AGENT_TOKEN", UpdatedAt: now},
		{ID: "8", Name: "env-nul-value", Value: canary + "\x00x", EnvName: "NUL_VALUE", UpdatedAt: now},
		{ID: "9", Name: "empty-name", Value: canary, FilePath: "~/empty-name", UpdatedAt: now},
	}
	hostile[8].Name = ""
	goodSecret := proto.Secret{ID: "10", Name: "good", Value: canary + "-good", FilePath: "~/good", EnvName: "GOOD", UpdatedAt: now}
	f := newFakeCP(t)
	f.setSecrets(0, secretsJSON(append(hostile, goodSecret)...))
	home, logs, _ := startAgentVia(t, f.srv.URL)
	eventually(t, "the apply", func() bool { return f.applyCount() == 1 })
	if got := readFile(filepath.Join(home, "good")); got != canary+"-good" {
		t.Fatalf("the good secret was not applied: %q", got)
	}
	rep := f.lastApply()
	outcome := map[string]string{}
	for _, o := range rep.Outcomes {
		outcome[o.Secret] = o.Outcome
	}
	for _, h := range hostile {
		if o := outcome[h.Name]; o != proto.OutcomeFailed {
			t.Errorf("hostile secret %q: outcome %q, want %q", h.Name, o, proto.OutcomeFailed)
		}
	}
	// Nothing but the good file (and the agent's own) appeared in home.
	entries, _ := os.ReadDir(home)
	for _, e := range entries {
		if e.Name() != "good" {
			t.Errorf("unexpected entry %q in home", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(home), "relative")); err == nil {
		t.Error("a relative path was written beside the home")
	}
	if strings.Contains(logs.String(), canary) {
		t.Error("the agent log holds a value")
	}
}
