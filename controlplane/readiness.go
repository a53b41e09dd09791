package controlplane

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

// retryAfterUnavailable is the Retry-After of a 503 while the database is
// unavailable: long enough not to hammer it, short enough for a failover.
const retryAfterUnavailable = "5"

// readyTimeout bounds the database check of /readyz.
const readyTimeout = 2 * time.Second

// Database episodes (api.dbDown).
const (
	dbUp          int32 = iota
	dbUnreachable       // no connection: ends when a request reads again
	dbFull              // reads work, writes fail: ends when a write works
)

// unavailable explains a request that failed because the database is
// unavailable or its disk is full: 503 with Retry-After and a message that
// says which, never the database's address or credentials. The first such
// failure of an episode is logged; the rest are not, until the episode
// ends (backAvailable).
func (a *api) unavailable(w http.ResponseWriter, err error) *apiError {
	w.Header().Set("Retry-After", retryAfterUnavailable)
	kind := store.Unavailable(err)
	episode := dbUnreachable
	if errors.Is(kind, store.ErrStorageFull) {
		episode = dbFull
	}
	if a.dbDown.Swap(episode) != episode {
		a.log.Error("the database is unavailable: requests that need it get 503 until it is back",
			zap.String("reason", kind.Error()), errField(err))
	}
	if episode == dbFull {
		return errorf(http.StatusServiceUnavailable, "the control plane's storage is full; nothing was changed. Try again later")
	}
	return errorf(http.StatusServiceUnavailable, "the database is unavailable; nothing was changed. Try again in a few seconds")
}

// backAvailable ends an episode of kind that unavailable logged, logging
// that once: a successful read ends dbUnreachable, a successful write
// dbFull.
func (a *api) backAvailable(kind int32) {
	if a.dbDown.Load() == kind && a.dbDown.CompareAndSwap(kind, dbUp) {
		a.log.Info("the database is available again")
	}
}

// watchWrite wraps w, during a dbFull episode and for a request that
// writes, so that its success ends the episode; otherwise it returns w and
// a no-op.
func (a *api) watchWrite(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if a.dbDown.Load() != dbFull || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return w, func() {}
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	return sw, func() {
		if sw.status < 500 {
			a.backAvailable(dbFull)
		}
	}
}

// healthz: GET /healthz is liveness: the process serves HTTP. It does not
// touch the database, so an orchestrator does not restart replicas for a
// database outage that a restart cannot fix.
func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: GET /readyz is readiness, for load balancers and Kubernetes
// probes: 200 when this replica can serve (its database answers within
// readyTimeout and holds every migration of this build), 503 otherwise,
// saying which, without the database's address.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	err := a.store.Ready(ctx)
	switch {
	case err == nil:
		a.backAvailable(dbUnreachable)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	case errors.Is(err, store.ErrSchemaBehind):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready",
			"reason": "the database schema is older than this build"})
	case errors.Is(err, store.ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "shutting down"})
	default:
		if store.Unavailable(err) == nil && ctx.Err() == nil {
			a.log.Warn("readiness check failed", errField(err))
		}
		w.Header().Set("Retry-After", retryAfterUnavailable)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready",
			"reason": "the database is unavailable"})
	}
}
