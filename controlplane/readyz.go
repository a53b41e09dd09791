package controlplane

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/courierhq/courier/controlplane/store"
)

// readyzTimeout bounds the store round trip of one readiness probe: a
// database that is cut off (packets dropped, not refused) makes the probe
// fail after this long instead of hanging the checker.
const readyzTimeout = 2 * time.Second

// readyz is the readiness probe: 200 when this replica can reach its store,
// 503 when it cannot. /healthz stays the liveness probe (the process serves
// HTTP) and touches nothing; a load balancer health-checks /readyz, so a
// replica cut off from PostgreSQL leaves the pool while the others serve.
// The probe is one indexed read of a user ID that never exists (ErrNotFound
// means the store answered), or the store's Ping where it has one.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
	defer cancel()
	var err error
	if p, ok := a.store.(interface{ Ping(context.Context) error }); ok {
		err = p.Ping(ctx)
	} else if _, err = a.store.UserByID(ctx, "readyz-probe"); errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if err != nil {
		a.log.Warn("not ready: the store did not answer the readiness probe", errField(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "store unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
