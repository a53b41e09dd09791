package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier/controlplane/store"
)

// TokenPrefix starts every personal API token, so a leaked one is easy to
// recognise and to grep for (in logs, repositories, chat), and secret
// scanners can be taught the pattern TokenPattern.
const TokenPrefix = "courier_pat_"

// tokenBytes is the entropy of a token (256 bits), as for sessions.
const tokenBytes = 32

// TokenLen is the length of every token: the prefix and 43 base64url
// characters.
var TokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// TokenPattern matches a personal API token anywhere in text.
var TokenPattern = regexp.MustCompile(regexp.QuoteMeta(TokenPrefix) + `[A-Za-z0-9_-]{43}`)

// Token limits.
const (
	// MaxNameBytes is the longest token name.
	MaxNameBytes = 64
	// MaxTokensPerUser caps how many tokens (expired ones included) one
	// user may hold, so a script in a loop cannot grow the table without
	// bound.
	MaxTokensPerUser = 100
	// DefaultLifetime is a new token's lifetime when none is asked for.
	DefaultLifetime = 30 * Day
	// DefaultScope is a new token's scope when none is asked for.
	DefaultScope = store.ScopeWrite
)

// Errors of minting and validation.
var (
	// ErrBadName is a token name that breaks the rules of ValidateName.
	ErrBadName = errors.New("invalid token name")
	// ErrBadScope is a scope other than read or write.
	ErrBadScope = errors.New(`invalid scope: use "read" or "write"`)
)

// Mint returns a new random token and its SHA-256, which is all that may
// be stored.
func Mint() (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token), nil
}

// Hash is the SHA-256 of a presented token, the key it is stored and
// looked up by (the same hash as login sessions').
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// LooksLikeToken reports whether s has the shape of a personal API token
// (it says nothing of whether the token is valid).
func LooksLikeToken(s string) bool {
	return len(s) == TokenLen && TokenPattern.FindString(s) == s
}

// ValidateName checks a token name with the rules of secret names: 1 to
// MaxNameBytes bytes of valid UTF-8, no surrounding white space, no '/',
// '?' or '#' (it is a URL path segment), not "." or "..", no control
// characters. The error wraps ErrBadName and never quotes the name.
func ValidateName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrBadName, why) }
	switch {
	case name == "":
		return bad("a name is required")
	case len(name) > MaxNameBytes:
		return bad(fmt.Sprintf("it is %d bytes; the maximum is %d", len(name), MaxNameBytes))
	case !utf8.ValidString(name):
		return bad("it must be valid UTF-8 text")
	case strings.TrimSpace(name) != name:
		return bad("it must not start or end with white space")
	case strings.ContainsAny(name, "/?#"):
		return bad("it must not contain '/', '?' or '#' (it is used in URL paths)")
	case name == "." || name == "..":
		return bad(`it must not be "." or ".."`)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("it must not contain control characters")
		}
	}
	return nil
}

// ParseScope parses a requested scope; "" is DefaultScope.
func ParseScope(s string) (store.TokenScope, error) {
	if s == "" {
		return DefaultScope, nil
	}
	if sc := store.TokenScope(s); sc.Valid() {
		return sc, nil
	}
	return "", ErrBadScope
}

// Request is what a caller asks for when creating a token.
type Request struct {
	// Name is the token's name, unique per user.
	Name string
	// Lifetime is ParseLifetime's input; "" is DefaultLifetime.
	Lifetime string
	// Scope is "read", "write" or "" (DefaultScope).
	Scope string
}

// Policy bounds the tokens New mints.
type Policy struct {
	// MaxLifetime is the longest lifetime a token may have. Required.
	MaxLifetime time.Duration
	// NotAfter, when not zero, is the latest a new token may expire: set
	// to the expiry of the API token a request authenticated with, so a
	// token cannot mint a successor that outlives it.
	NotAfter time.Time
}

// FieldError is a refused field of a Request; Field is the JSON name
// ("name", "lifetime" or "scope").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause (ErrBadName, ErrBadLifetime, ...).
func (e *FieldError) Unwrap() error { return e.Err }

// New validates req against p and returns the token to store (ID left for
// the caller) and the token itself, which is shown once and never stored.
// userID owns it; now is the creation time. A refused request is a
// *FieldError and mints nothing.
func New(userID string, req Request, p Policy, now time.Time) (store.APIToken, string, error) {
	if err := ValidateName(req.Name); err != nil {
		return store.APIToken{}, "", &FieldError{Field: "name", Err: err}
	}
	scope, err := ParseScope(req.Scope)
	if err != nil {
		return store.APIToken{}, "", &FieldError{Field: "scope", Err: err}
	}
	life := DefaultLifetime
	if req.Lifetime != "" {
		if life, err = ParseLifetime(req.Lifetime, p.MaxLifetime); err != nil {
			return store.APIToken{}, "", &FieldError{Field: "lifetime", Err: err}
		}
	} else if life > p.MaxLifetime {
		life = p.MaxLifetime
	}
	exp := now.Add(life)
	if !p.NotAfter.IsZero() && exp.After(p.NotAfter) {
		return store.APIToken{}, "", &FieldError{Field: "lifetime", Err: fmt.Errorf(
			"%w: a token created with an API token cannot outlive it; that token expires at %s, so ask for at most %s",
			ErrLifetimeTooLong, p.NotAfter.UTC().Format(time.RFC3339), FormatLifetime(p.NotAfter.Sub(now).Truncate(time.Minute)))}
	}
	tok, hash, err := Mint()
	if err != nil {
		return store.APIToken{}, "", err
	}
	return store.APIToken{UserID: userID, Name: req.Name, TokenHash: hash, Scope: scope,
		CreatedAt: now, ExpiresAt: exp}, tok, nil
}
