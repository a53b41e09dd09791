package controlplane

import (
	"net/http"

	"github.com/courierhq/courier/controlplane/store"
)

// noteTokenUse records that API token t served r (its last use: the time
// and the client address, through the trusted proxies as login throttling
// sees it), coalesced by the UseRecorder so that a request does not cost a
// write.
func (a *api) noteTokenUse(r *http.Request, t store.APIToken) {
	a.auditFirstUse(r, t)
	if a.uses == nil {
		return
	}
	a.uses.Record(t.ID, a.cfg.stamp(), a.cfg.LoginThrottle.clientAddr(r))
}
