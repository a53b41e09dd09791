package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

// readyStore answers Ready as told; everything else is the embedded (nil)
// Store and must not be called by the probe.
type readyStore struct {
	store.Store
	err   error
	block bool // wait for the context instead of answering
}

func (s readyStore) Ready(ctx context.Context) error {
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.err
}

// TestReadyz: 200 when the store is ready; 503 with the reason, and never
// the database's address, when it fails, is behind on migrations, is
// closing or does not answer within readyTimeout.
func TestReadyz(t *testing.T) {
	down := errors.New("dial tcp 10.0.0.9:5432: connect: no route to host")
	for _, tc := range []struct {
		name   string
		store  store.Store
		want   int
		reason string
	}{
		{"ready", readyStore{}, 200, ""},
		{"store error", readyStore{err: down}, 503, "the database is unavailable"},
		{"store hangs", readyStore{block: true}, 503, "the database is unavailable"},
		{"schema behind", readyStore{err: store.ErrSchemaBehind}, 503, "schema is older"},
		{"closing", readyStore{err: store.ErrClosed}, 503, "shutting down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &api{store: tc.store, log: zap.NewNop()}
			rec := httptest.NewRecorder()
			start := time.Now()
			a.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.reason) {
				t.Fatalf("status %d %s, want %d %q", rec.Code, rec.Body, tc.want, tc.reason)
			}
			if strings.Contains(rec.Body.String(), "10.0.0.9") {
				t.Fatalf("the answer names the database's address: %s", rec.Body)
			}
			if took := time.Since(start); took > readyTimeout+time.Second {
				t.Fatalf("the probe took %s", took)
			}
		})
	}
}
