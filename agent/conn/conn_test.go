package conn_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/internal/faultproxy"
)

// stalledProxy returns a fault proxy in front of target (host:port).
func stalledProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func controlPlane(t *testing.T) (url, token string) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	token = "tok-0123456789abcdef0123456789"
	sum := sha256.Sum256([]byte(token))
	_ = st.CreateUser(context.Background(), store.User{ID: "u", Username: "u", Email: "u@x", CreatedAt: time.Now()})
	_ = st.CreateWorkspace(context.Background(), store.Workspace{ID: "w", Name: "w", OwnerID: "u", AgentTokenHash: sum[:], CreatedAt: time.Now()})
	srv, err := agentapi.New(agentapi.Config{Store: st, Open: func(s store.Secret) (string, error) { return string(s.Value), nil }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(proto.ConnectPath, srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { _ = srv.Close(); hs.Close(); _ = st.Close() })
	return hs.URL, token
}

func TestKeepaliveDetectsDeadConnection(t *testing.T) {
	url, token := controlPlane(t)
	bh := stalledProxy(t, url[len("http://"):])
	s, err := conn.Dial(context.Background(), conn.Config{URL: bh.URL(), Token: token,
		KeepaliveInterval: 100 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Manifest(context.Background()); err != nil {
		t.Fatal(err)
	}
	bh.Stall() // the connection is dead but nothing says so
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a dead connection was never detected")
	}
	if _, err := s.Manifest(context.Background()); err == nil {
		t.Fatal("request on a dead session succeeded")
	}
}

// TestDialHandshakeBounded: a control plane that accepts TCP and never
// answers the upgrade does not hold Dial past RequestTimeout.
func TestDialHandshakeBounded(t *testing.T) {
	url, token := controlPlane(t)
	bh := stalledProxy(t, url[len("http://"):])
	bh.Stall()
	_, err := conn.Dial(context.Background(), conn.Config{URL: bh.URL(), Token: token, RequestTimeout: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial through a stalled path: %v, want a deadline error", err)
	}
}

func TestDialErrors(t *testing.T) {
	url, _ := controlPlane(t)
	_, err := conn.Dial(context.Background(), conn.Config{URL: url, Token: "wrong"})
	if !errors.Is(err, conn.ErrTokenRejected) {
		t.Fatalf("wrong token: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_ = ln.Close()
	if _, err := conn.Dial(context.Background(), conn.Config{URL: "http://" + addr, Token: "t"}); err == nil ||
		errors.Is(err, conn.ErrTokenRejected) {
		t.Fatalf("refused connection: %v", err)
	}
	vm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(proto.StatusVersionMismatch)
		_, _ = io.WriteString(w, `{"message":"agent speaks \"1\", control plane speaks \"2\""}`)
	}))
	defer vm.Close()
	_, err = conn.Dial(context.Background(), conn.Config{URL: vm.URL, Token: "t"})
	if !errors.Is(err, conn.ErrVersionMismatch) || !contains(err.Error(), `speaks "2"`) {
		t.Fatalf("version mismatch: %v", err)
	}
	// A balancer with no replica behind it answers 502 in HTML.
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	}))
	defer gw.Close()
	_, err = conn.Dial(context.Background(), conn.Config{URL: gw.URL, Token: "t"})
	var se *conn.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadGateway || se.Message != "" || !contains(err.Error(), "HTTP 502") ||
		errors.Is(err, conn.ErrUnavailable) || errors.Is(err, conn.ErrTokenRejected) {
		t.Fatalf("502 from a balancer: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
