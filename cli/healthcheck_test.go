package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestServerHealthcheck: exit status 0 only for a 200; a 503 (a replica cut
// off from its database) and a refused connection fail.
func TestServerHealthcheck(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	ask := func(url string) error {
		return Execute(context.Background(), []string{"server", "healthcheck", "--url", url})
	}
	if err := ask(srv.URL + "/readyz"); err != nil {
		t.Fatalf("ready server: %v", err)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := ask(srv.URL + "/readyz"); err == nil {
		t.Fatal("a 503 passed the health check")
	}
	srv.Close()
	if err := ask(srv.URL + "/readyz"); err == nil {
		t.Fatal("a closed server passed the health check")
	}
}
