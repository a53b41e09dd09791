package web

import (
	"time"
)

// Page bodies of Account → API tokens (issue 19, part 2). Only
// TokenCreated ever holds a token, on the one page that shows it.

// TokenRow is one personal API token in the list: never the token.
type TokenRow struct {
	Name, Scope string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Expired     bool
	// LastUsedAt is zero before the first recorded use.
	LastUsedAt   time.Time
	LastUsedAddr string
}

// TokenForm is the create form, with what was typed and why it was
// refused after a failed submission.
type TokenForm struct {
	Name, Lifetime, Scope string
	// Errors maps a field (name, lifetime, scope) to the server's
	// explanation of its refusal.
	Errors map[string]string
	// Message is the refusal's summary ("" when the form is fresh).
	Message string
}

// Tokens is the body of the tokens page: the list and the create form.
type Tokens struct {
	Rows []TokenRow
	Form TokenForm
	// MaxLifetime is the server's cap, as "90d".
	MaxLifetime string
}

// TokenCreated is the body of the page shown once after a create: the
// only page that carries a token.
type TokenCreated struct {
	Name, Scope, Token string
	ExpiresAt          time.Time
}

// RevokeToken is the body of the revoke confirmation.
type RevokeToken struct {
	Name       string
	LastUsedAt time.Time
}

// Summary lists f's errors in the order of the form's fields, each under
// its label (an unknown field last, under its name), for the summary
// above the form. The scope's link goes to its first radio button.
func (f *TokenForm) Summary() []FieldError {
	return summary([]formField{
		{"name", "name", "Name"}, {"lifetime", "lifetime", "Lifetime"}, {"scope", "scope-write", "Scope"},
	}, f.Errors)
}
