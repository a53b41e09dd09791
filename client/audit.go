package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
)

// AuditRecord is one audit record as the API returns it (hashes in hex).
type AuditRecord = audit.Record

// AuditPage is one page of GET /api/v2/audit: records newest first (oldest
// first when After was asked), and the cursor of the next page (0: none).
type AuditPage struct {
	Records []AuditRecord `json:"records"`
	// NextBefore is the Before of the next (older) page, or, for an
	// oldest-first page, NextAfter the After of the next (newer) one.
	NextBefore int64 `json:"next_before,omitempty"`
	NextAfter  int64 `json:"next_after,omitempty"`
}

// AuditReport is the answer of GET /api/v2/audit/verify.
type AuditReport = audit.Report

// AuditQuery selects audit records; empty fields match everything.
type AuditQuery struct {
	Actor, Action, Target, Outcome string
	Since, Until                   time.Time
	// Before lists records older than this sequence number, newest first;
	// After lists records newer than it, oldest first (for --follow).
	Before, After int64
	Limit         int
}

// Values encodes q as query parameters.
func (q AuditQuery) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("actor", q.Actor)
	set("action", q.Action)
	set("target", q.Target)
	set("outcome", q.Outcome)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Audit lists audit records (admins and auditors).
func (c *Client) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	var p AuditPage
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "audit")+"?"+q.Values().Encode(), nil, &p)
	return p, err
}

// UserAudit lists the audit records about user (Me: the caller): what
// they did and what was done to them and their things.
func (c *Client) UserAudit(ctx context.Context, user string, q AuditQuery) (AuditPage, error) {
	var p AuditPage
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "users", user, "audit")+"?"+q.Values().Encode(), nil, &p)
	return p, err
}

// VerifyAudit asks the server to verify the audit chain (admins and
// auditors).
func (c *Client) VerifyAudit(ctx context.Context) (AuditReport, error) {
	var r AuditReport
	err := c.do(ctx, http.MethodGet, c.endpoint("api", "v2", "audit", "verify"), nil, &r)
	return r, err
}
