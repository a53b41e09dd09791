package web

import (
	"time"
)

// Page bodies of the audit log (issue 20): /audit for admins and
// auditors (every record), /account/activity for everyone (the records
// about them). Records never hold a value, a token or a password.

// AuditRow is one audit record as the page shows it.
type AuditRow struct {
	Seq              int64
	Time             time.Time
	Actor, Source    string
	Action, Target   string
	Outcome, Reason  string
	Details          string
	OutcomeIsSuccess bool
}

// AuditFilter is the filter form, with what was typed.
type AuditFilter struct {
	Actor, Action, Target, Outcome, Since, Until string
}

// Audit is the body of an audit page.
type Audit struct {
	// Action is the form's target: "/audit" or "/account/activity".
	Action string
	// All says the page lists everyone's records (admins and auditors).
	All    bool
	Filter AuditFilter
	Rows   []AuditRow
	// Older is the link to the next (older) page, "" on the last.
	Older string
	// Newest is the link back to the first page with the same filters,
	// "" on the first page.
	Newest string
	// FieldErrors are the filter's refusals by field name ("since",
	// "until", "outcome", ...), shown beside each field.
	FieldErrors map[string]string
	// Error is why the filter was refused ("" for none).
	Error string
}
