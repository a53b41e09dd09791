package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Validation is one field-level problem the server reported.
type Validation struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error is a non-2xx answer from the control plane. Its message and details
// are the server's; the server never puts a secret value in them (R2).
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the server's message, or the status text if it sent none.
	Message string
	// Detail is the server's optional longer explanation.
	Detail string
	// Validations lists the fields at fault, if any.
	Validations []Validation
	// RetryAfter is the server's Retry-After, if it sent one (a 429).
	RetryAfter time.Duration
	// MissingSecrets lists, for a workspace creation refused because its
	// owner lacks required secrets, each of them and its status.
	MissingSecrets []SecretRequirementStatus
}

// Error renders the message, then one line per field detail, so a CLI that
// prints it shows everything the server said.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (Retry-After: %s)", e.RetryAfter)
	}
	for _, v := range e.Validations {
		b.WriteString("\n  - ")
		if v.Field != "" {
			b.WriteString(v.Field)
			b.WriteString(": ")
		}
		b.WriteString(v.Detail)
	}
	for _, m := range e.MissingSecrets {
		b.WriteString("\n  - ")
		b.WriteString(m.Describe())
	}
	return b.String()
}

// Describe renders a requirement status on one line for people: what is
// asked for, its status, the description and the documentation link.
func (s SecretRequirementStatus) Describe() string {
	var b strings.Builder
	b.WriteString(s.Label())
	b.WriteString(" (" + s.Status)
	if !s.Required {
		b.WriteString(", recommended")
	}
	b.WriteString(")")
	if s.Description != "" {
		b.WriteString(": " + s.Description)
	}
	if s.DocsURL != "" {
		b.WriteString(" <" + s.DocsURL + ">")
	}
	return b.String()
}

// Label names what r asks for: the env name, the file path, or both.
func (r SecretRequirement) Label() string {
	switch {
	case r.Env != "" && r.File != "":
		return "env " + r.Env + " and file " + r.File
	case r.Env != "":
		return "env " + r.Env
	}
	return "file " + r.File
}

// Unwrap maps the status to this package's sentinels, so callers use
// errors.Is(err, client.ErrNotFound) instead of reading status codes.
func (e *Error) Unwrap() error {
	switch e.StatusCode {
	case http.StatusBadRequest:
		return ErrBadRequest
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusTooManyRequests:
		return ErrTooManyRequests
	}
	return nil
}

// maxErrorText bounds how much of a non-JSON error body is shown.
const maxErrorText = 512

func decodeError(status int, body []byte) *Error {
	e := &Error{StatusCode: status}
	var wire struct {
		Message     string                    `json:"message"`
		Detail      string                    `json:"detail"`
		Validations []Validation              `json:"validations"`
		Missing     []SecretRequirementStatus `json:"missing_secrets"`
	}
	if err := json.Unmarshal(body, &wire); err == nil && wire.Message != "" {
		e.Message, e.Detail, e.Validations = wire.Message, wire.Detail, wire.Validations
		e.MissingSecrets = wire.Missing
	} else {
		// Not our JSON (a proxy's page, say): show a short, printable prefix.
		text := strings.TrimSpace(strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) || r == ' ' {
				return r
			}
			return ' '
		}, string(body)))
		if len(text) > maxErrorText {
			text = text[:maxErrorText] + "..."
		}
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = "HTTP " + strconv.Itoa(status)
		}
		e.Detail = text
	}
	e.Message = sanitize(e.Message)
	e.Detail = sanitize(e.Detail)
	for i := range e.Validations {
		e.Validations[i].Field = sanitize(e.Validations[i].Field)
		e.Validations[i].Detail = sanitize(e.Validations[i].Detail)
	}
	for i := range e.MissingSecrets {
		m := &e.MissingSecrets[i]
		m.Env, m.File, m.Description, m.DocsURL, m.Status = sanitize(m.Env), sanitize(m.File),
			sanitize(m.Description), sanitize(m.DocsURL), sanitize(m.Status)
	}
	return e
}

// sanitize strips control characters (terminal escapes) from server text.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
