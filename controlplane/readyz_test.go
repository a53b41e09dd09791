package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

// probeStore answers UserByID as told; everything else is the embedded
// (nil) Store and must not be called by the probe.
type probeStore struct {
	store.Store
	err   error
	block bool // wait for the context instead of answering
}

func (s probeStore) UserByID(ctx context.Context, _ string) (store.User, error) {
	if s.block {
		<-ctx.Done()
		return store.User{}, ctx.Err()
	}
	return store.User{}, s.err
}

// pingStore has a Ping, which the probe prefers.
type pingStore struct {
	probeStore
	pingErr error
}

func (s pingStore) Ping(context.Context) error { return s.pingErr }

// TestReadyz: 200 when the store answers (ErrNotFound is an answer), 503
// when it fails or does not answer within readyzTimeout; a store's Ping is
// used where it has one.
func TestReadyz(t *testing.T) {
	down := errors.New("dial tcp: connect: no route to host")
	for _, tc := range []struct {
		name  string
		store store.Store
		want  int
	}{
		{"answers not found", probeStore{err: store.ErrNotFound}, 200},
		{"answers found", probeStore{}, 200},
		{"store error", probeStore{err: down}, 503},
		{"store hangs", probeStore{block: true}, 503},
		{"ping ok though the read would fail", pingStore{probeStore{err: down}, nil}, 200},
		{"ping fails", pingStore{probeStore{err: store.ErrNotFound}, down}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &api{store: tc.store, log: zap.NewNop()}
			rec := httptest.NewRecorder()
			start := time.Now()
			a.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
			if took := time.Since(start); took > readyzTimeout+time.Second {
				t.Fatalf("the probe took %s", took)
			}
		})
	}
}
