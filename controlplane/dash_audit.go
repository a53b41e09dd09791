package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/web"
)

// The audit log's dashboard pages (issue 20): /audit lists every record
// for admins and auditors, /account/activity the records about the
// signed-in user, with the same filters as GET /api/v2/audit.

// dashAuditPageSize is how many records one page shows.
const dashAuditPageSize = 50

// dashAudit: GET /audit (admins and auditors).
func (a *api) dashAudit(w http.ResponseWriter, r *http.Request) {
	if !canSeeEveryone(caller(r)) {
		a.dashError(w, r, errAuditReaders)
		return
	}
	a.auditPageFor(w, r, "/audit", "")
}

// dashActivity: GET /account/activity (everyone: their own records).
func (a *api) dashActivity(w http.ResponseWriter, r *http.Request) {
	a.auditPageFor(w, r, "/account/activity", caller(r).ID)
}

func (a *api) auditPageFor(w http.ResponseWriter, r *http.Request, action, involving string) {
	q := r.URL.Query()
	body := &web.Audit{Action: action, All: involving == "", Filter: web.AuditFilter{
		Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"),
		Outcome: q.Get("outcome"), Since: q.Get("since"), Until: q.Get("until")}}
	status := http.StatusOK
	f, err := auditFilter(q)
	if err == nil {
		if f.Limit > dashAuditPageSize || q.Get("limit") == "" {
			f.Limit = dashAuditPageSize
		}
		f.After, f.Oldest = 0, false // the pages go newest first only
		if involving != "" {
			f.Involving, f.Actor = involving, ""
		}
		var recs []audit.Record
		recs, err = a.store.ListAudit(r.Context(), f)
		for _, rec := range recs {
			body.Rows = append(body.Rows, auditRow(rec))
		}
		if len(recs) == f.Limit {
			next := url.Values{}
			for k, v := range q {
				next[k] = v
			}
			next.Set("before", strconv.FormatInt(recs[len(recs)-1].Seq, 10))
			body.Older = action + "?" + next.Encode()
		}
	}
	if err != nil {
		ae := a.explain(w, r, err)
		if errors.Is(err, audit.ErrBadFilter) {
			ae = errorf(http.StatusBadRequest, "%s", err.Error())
		}
		status, body.Error = ae.status, ae.body.Message
		for _, v := range ae.body.Validations {
			body.Error += fmt.Sprintf(" (%s: %s)", v.Field, v.Detail)
		}
	}
	nav, title := "activity", "Your activity"
	if involving == "" {
		nav, title = "audit", "Audit log"
	}
	a.render(w, r, status, "audit", &web.Page{Title: title, Nav: nav, Body: body})
}

// auditRow is rec as the page shows it.
func auditRow(rec audit.Record) web.AuditRow {
	actor := rec.Actor.Name
	if actor == "" {
		actor = rec.Actor.ID
	}
	if rec.Actor.Kind != audit.ActorUser {
		actor = rec.Actor.Kind + " " + actor
	}
	target := rec.Target.Name
	if target == "" {
		target = rec.Target.ID
	}
	return web.AuditRow{Seq: rec.Seq, Time: rec.Time, Actor: actor, Source: rec.Source, Action: rec.Action,
		Target: rec.Target.Kind + " " + target, Outcome: rec.Outcome, Reason: rec.Reason,
		Details: string(rec.Details), OutcomeIsSuccess: rec.Outcome == audit.Success}
}
