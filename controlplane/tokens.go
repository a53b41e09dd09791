package controlplane

import (
	"net/http"

	"github.com/courierhq/courier/controlplane/store"
)

// noteTokenUse records that API token t served r (its last use: the time
// and the client address, through the trusted proxies as login throttling
// sees it), coalesced by the UseRecorder so that a request does not cost a
// write. For a token never used yet it also drafts the token.first_use
// record, which the recorder's write appends only if that write is the
// one that moves the token's last use from never (see auditFirstUse); r is
// returned carrying the request ID that record names.
func (a *api) noteTokenUse(w http.ResponseWriter, r *http.Request, t store.APIToken) *http.Request {
	if a.uses == nil {
		return r
	}
	at, addr := a.cfg.stamp(), a.cfg.LoginThrottle.ClientAddr(r)
	first, r, ok := a.auditFirstUse(w, r, t, at)
	if !ok {
		a.uses.Record(t.ID, at, addr)
		return r
	}
	a.uses.RecordFirst(t.ID, at, addr, first)
	return r
}
