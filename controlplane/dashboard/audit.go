package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/web"
)

// The audit log's pages: /audit lists every record for admins and
// auditors, /account/activity the records about the signed-in user, with
// the same filters as GET /api/v2/audit.

// auditPageSize is how many records one page shows.
const auditPageSize = 50

var errAuditReaders = refusef(http.StatusForbidden, "only admins and auditors may read the whole audit log; your own records are at /account/activity")

// audit: GET /audit (admins and auditors).
func (d *Dashboard) audit(w http.ResponseWriter, r *http.Request) {
	if !d.b.Caller(r).SeesEveryone() {
		d.Error(w, r, errAuditReaders)
		return
	}
	d.auditPage(w, r, "/audit", "")
}

// activity: GET /account/activity (everyone: their own records).
func (d *Dashboard) activity(w http.ResponseWriter, r *http.Request) {
	d.auditPage(w, r, "/account/activity", d.b.Caller(r).ID)
}

func (d *Dashboard) auditPage(w http.ResponseWriter, r *http.Request, action, involving string) {
	q := r.URL.Query()
	body := &web.Audit{Action: action, All: involving == "", Filter: web.AuditFilter{
		Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"),
		Outcome: q.Get("outcome"), Since: q.Get("since"), Until: q.Get("until")}}
	status := http.StatusOK
	f, err := d.b.AuditFilter(q)
	if err == nil {
		if f.Limit > auditPageSize || q.Get("limit") == "" {
			f.Limit = auditPageSize
		}
		f.After, f.Oldest = 0, false // the pages go newest first only
		if involving != "" {
			f.Involving, f.Actor = involving, ""
		}
		// One record more than the page shows: "Older records" only when
		// there are some, never a link to an empty page.
		page := f.Limit
		f.Limit++
		var recs []audit.Record
		recs, err = d.cfg.Store.ListAudit(r.Context(), f)
		more := len(recs) > page
		recs = recs[:min(len(recs), page)]
		for _, rec := range recs {
			body.Rows = append(body.Rows, auditRow(rec))
		}
		link := func(before string) string {
			next := url.Values{}
			for k, v := range q {
				next[k] = v
			}
			next.Del("before")
			if before != "" {
				next.Set("before", before)
			}
			if len(next) == 0 {
				return action
			}
			return action + "?" + next.Encode()
		}
		if more {
			body.Older = link(strconv.FormatInt(recs[len(recs)-1].Seq, 10))
		}
		if q.Get("before") != "" {
			body.Newest = link("") // the same filters, from the newest
		}
	}
	if err != nil {
		if errors.Is(err, audit.ErrBadFilter) {
			err = refusef(http.StatusBadRequest, "%s", err.Error())
		}
		p := d.b.Explain(w, r, err)
		status, body.Error = p.Status, p.Message
		for _, v := range p.Validations {
			switch v.Field {
			case "actor", "action", "target", "outcome", "since", "until":
				// Beside the field; the summary only says to look there.
				if body.FieldErrors == nil {
					body.FieldErrors = map[string]string{}
				}
				body.FieldErrors[v.Field] = v.Detail
				body.Error = "Nothing was filtered: see the field marked below."
			default:
				body.Error += fmt.Sprintf(" (%s: %s)", v.Field, v.Detail)
			}
		}
	}
	nav, title := "activity", "Your activity"
	if involving == "" {
		nav, title = "audit", "Audit log"
	}
	d.Render(w, r, status, "audit", &web.Page{Title: title, Nav: nav, Body: body})
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
