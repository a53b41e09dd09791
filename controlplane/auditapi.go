package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
)

// The audit log's read side (issue 20): GET /api/v2/audit and
// /api/v2/audit/verify for admins and auditors, GET
// /api/v2/users/{user}/audit for each user's own records.

var errAuditReaders = errorf(http.StatusForbidden, "only admins and auditors may read the whole audit log; your own records are at /api/v2/users/me/audit")

// auditFilter parses the query parameters of an audit listing.
func auditFilter(q url.Values) (audit.Filter, error) {
	f := audit.Filter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Outcome: q.Get("outcome")}
	bad := func(field, detail string) error {
		return &apiError{status: http.StatusBadRequest, body: ErrorResponse{Message: "invalid audit query",
			Validations: []Validation{{Field: field, Detail: detail}}}}
	}
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return f, bad(p.name, "must be a time such as 2026-12-04T10:00:00Z (RFC 3339)")
			}
			*p.into = t
		}
	}
	for _, p := range []struct {
		name string
		into *int64
	}{{"before", &f.Before}, {"after", &f.After}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return f, bad(p.name, "must be a positive sequence number")
			}
			*p.into = n
		}
	}
	f.Oldest = f.After > 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > audit.MaxLimit {
			return f, bad("limit", "must be between 1 and "+strconv.Itoa(audit.MaxLimit))
		}
		f.Limit = n
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	// The checks Validate makes that belong to one field name it, so a
	// form can show the message beside it.
	switch f.Outcome {
	case "", audit.Success, audit.Failure, audit.Denied:
	default:
		return f, bad("outcome", "must be success, failure or denied")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, bad("until", "must be after since")
	}
	if err := f.Validate(); err != nil {
		return f, bad("query", strings.TrimPrefix(err.Error(), audit.ErrBadFilter.Error()+": "))
	}
	return f, nil
}

// auditPage lists f and returns it with its next cursor.
func (a *api) auditPage(r *http.Request, f audit.Filter) (client.AuditPage, error) {
	recs, err := a.store.ListAudit(r.Context(), f)
	if err != nil {
		if errors.Is(err, audit.ErrBadFilter) {
			return client.AuditPage{}, errorf(http.StatusBadRequest, "%s", err.Error())
		}
		return client.AuditPage{}, err
	}
	p := client.AuditPage{Records: recs}
	if p.Records == nil {
		p.Records = []audit.Record{}
	}
	if len(recs) == f.Limit {
		last := recs[len(recs)-1].Seq
		if f.Oldest {
			p.NextAfter = last
		} else {
			p.NextBefore = last
		}
	}
	return p, nil
}

// listAudit: GET /api/v2/audit (admins and auditors).
func (a *api) listAudit(w http.ResponseWriter, r *http.Request) {
	if !canSeeEveryone(caller(r)) {
		a.writeError(w, r, errAuditReaders)
		return
	}
	f, err := auditFilter(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := a.auditPage(r, f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// userAudit: GET /api/v2/users/{user}/audit: the records whose actor,
// target or target's owner is the user. A member sees their own.
func (a *api) userAudit(w http.ResponseWriter, r *http.Request) {
	u, err := a.resolveUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	f, err := auditFilter(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	f.Involving = u.ID
	p, err := a.auditPage(r, f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// verifyAudit: GET /api/v2/audit/verify (admins and auditors) walks the
// chain and reports the first record edited, removed or reordered.
func (a *api) verifyAudit(w http.ResponseWriter, r *http.Request) {
	if !canSeeEveryone(caller(r)) {
		a.writeError(w, r, errAuditReaders)
		return
	}
	rep, err := a.verifyChain(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (a *api) verifyChain(r *http.Request) (audit.Report, error) {
	st, err := a.store.AuditState(r.Context())
	if err != nil {
		return audit.Report{}, err
	}
	return audit.Verify(r.Context(), st, func(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
		return a.store.ListAudit(ctx, audit.Filter{After: after, Limit: limit, Oldest: true})
	})
}
