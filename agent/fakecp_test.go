package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/courierhq/courier/agent/proto"
)

// fakeCP is the agent protocol's transport on the control plane's side,
// shared by the tests' fake control planes: it accepts an agent's
// websocket, announces features (proto.HeaderControlFeatures; "" for an
// older control plane that announces none), runs yamux over it and serves
// the routes that routes registers on each session's own mux. Each test
// double keeps what its routes record under its own lock. The sessions,
// the server and the handlers end at the test's cleanup.
type fakeCP struct {
	hs       *httptest.Server
	features string
	routes   func(mux *http.ServeMux)
	wg       sync.WaitGroup

	mu       sync.Mutex // guards sessions
	sessions []*yamux.Session
}

// newFakeCP starts a fake control plane announcing features and serving
// routes.
func newFakeCP(t *testing.T, features string, routes func(mux *http.ServeMux)) *fakeCP {
	t.Helper()
	cp := &fakeCP{features: features, routes: routes}
	cp.hs = httptest.NewServer(http.HandlerFunc(cp.connect))
	t.Cleanup(func() {
		cp.mu.Lock()
		for _, s := range cp.sessions {
			_ = s.Close()
		}
		cp.mu.Unlock()
		cp.hs.Close()
		cp.wg.Wait()
	})
	return cp
}

// URL is where agents dial it.
func (cp *fakeCP) URL() string { return cp.hs.URL }

func (cp *fakeCP) connect(w http.ResponseWriter, r *http.Request) {
	cp.wg.Add(1)
	defer cp.wg.Done()
	if cp.features != "" {
		w.Header().Set(proto.HeaderControlFeatures, cp.features)
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(proto.MaxMessageBytes)
	sess, err := yamux.Server(websocket.NetConn(context.Background(), c, websocket.MessageBinary), proto.YamuxConfig(0, 0))
	if err != nil {
		return
	}
	cp.mu.Lock()
	cp.sessions = append(cp.sessions, sess)
	cp.mu.Unlock()
	mux := http.NewServeMux()
	cp.routes(mux)
	hs := &http.Server{Handler: mux}
	go func() { <-sess.CloseChan(); _ = hs.Close() }()
	_ = hs.Serve(sess)
	_ = hs.Close()
}

// collect returns a handler that decodes each request's JSON body into a
// T, appends it to *into under mu and answers 204.
func collect[T any](mu *sync.Mutex, into *[]T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v T
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &v)
		mu.Lock()
		*into = append(*into, v)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}
