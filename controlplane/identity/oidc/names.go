package oidc

import (
	"crypto/rand"
	"slices"
	"strings"
)

var randReader = rand.Reader

// maxBaseUsername leaves room for a "-NN" suffix within Courier's 64-byte
// username limit.
const maxBaseUsername = 56

// BaseUsername is the username to try first for id: preferred_username,
// else the e-mail's local part, cut down to Courier's username rule
// (letters, digits, '.', '_', '-', starting with a letter or digit):
// other characters become '-', leading punctuation is dropped. It is
// "user" when nothing is left.
func BaseUsername(id Identity) string {
	for _, cand := range []string{id.PreferredUsername, localPart(id.Email)} {
		if s := sanitize(cand); s != "" {
			return s
		}
	}
	return "user"
}

func localPart(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return email[:i]
	}
	return email
}

func sanitize(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 { // a preferred_username that is an e-mail
		s = s[:i]
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			b.WriteRune(r)
		case r == '.' || r == '_' || r == '-':
			if b.Len() > 0 {
				b.WriteRune(r)
			}
		default:
			if b.Len() > 0 {
				b.WriteByte('-')
			}
		}
		if b.Len() >= maxBaseUsername {
			break
		}
	}
	out := strings.TrimRight(b.String(), "-._")
	if len(out) > maxBaseUsername {
		out = strings.TrimRight(out[:maxBaseUsername], "-._")
	}
	if strings.EqualFold(out, "me") || strings.EqualFold(out, "authmethods") || looksLikeUUID(out) {
		return ""
	}
	return out
}

// looksLikeUUID mirrors the control plane's rule that a username must not
// look like a user ID (8-4-4-4-12 hex).
func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if r != '-' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// EmailDomainAllowed reports whether email's domain is one of domains
// (case-insensitive; exact, so "example.com" does not admit
// "evil-example.com" or "sub.example.com"). An empty list allows every
// domain.
func EmailDomainAllowed(email string, domains []string) bool {
	if len(domains) == 0 {
		return true
	}
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return false
	}
	d := strings.ToLower(email[i+1:])
	return slices.ContainsFunc(domains, func(a string) bool { return strings.ToLower(a) == d })
}
