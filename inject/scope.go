package inject

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// A secret's scope is the list of workspaces it goes to (R1). An empty list
// means every workspace of its owner. Each entry is a workspace name or a
// glob over names with path.Match's syntax ('*', '?', '[...]', '\' escapes);
// workspace names hold no '/', so '*' matches any name.

// FieldWorkspaces is the JSON name of a secret's scope.
const FieldWorkspaces = "workspaces"

// Scope bounds: a scope names workspaces, it is not a data store.
const (
	// MaxScopeEntries is the most entries a scope may list.
	MaxScopeEntries = 64
	// MaxScopeEntryBytes is the longest entry (a workspace name is at most
	// MaxNameBytes; a glob may be a little longer).
	MaxScopeEntryBytes = 128
)

// globMeta are the characters that make a scope entry a pattern rather
// than a literal workspace name.
const globMeta = `*?[\`

// ValidateScope checks a scope: at most MaxScopeEntries entries, each
// non-empty, valid UTF-8, without '/' or control characters, at most
// MaxScopeEntryBytes, and a well-formed pattern. The error names the entry.
func ValidateScope(scope []string) error {
	if len(scope) > MaxScopeEntries {
		return fieldErr(FieldWorkspaces, "lists %d workspaces; the maximum is %d", len(scope), MaxScopeEntries)
	}
	for i, e := range scope {
		if err := validateScopeEntry(e); err != nil {
			return fieldErr(FieldWorkspaces, "entry %d (%q) %s", i+1, truncateText(e, 64), err)
		}
	}
	return nil
}

func validateScopeEntry(e string) error {
	switch {
	case e == "":
		return fmt.Errorf("is empty: leave the list empty to mean every workspace")
	case len(e) > MaxScopeEntryBytes:
		return fmt.Errorf("is %d bytes; the maximum is %d", len(e), MaxScopeEntryBytes)
	case !utf8.ValidString(e):
		return fmt.Errorf("must be valid UTF-8 text")
	case strings.Contains(e, "/"):
		return fmt.Errorf("must not contain '/' (workspace names have none)")
	case strings.TrimSpace(e) != e:
		return fmt.Errorf("must not start or end with white space")
	}
	for _, r := range e {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("must not contain control characters")
		}
	}
	// path.Match checks the rest of the pattern after a mismatch too, so
	// matching against "" finds a malformed part anywhere in it.
	if _, err := path.Match(e, ""); err != nil {
		return fmt.Errorf("is not a valid glob (%v): use '*', '?', '[...]' and '\\' as in path.Match", err)
	}
	return nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// NormalizeScope returns scope without repeated entries, in the order
// given, and nil for an empty scope (every workspace).
func NormalizeScope(scope []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range scope {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// InScope reports whether a secret with scope goes to the workspace called
// name. A malformed entry (which ValidateScope refuses) matches nothing.
func InScope(scope []string, name string) bool {
	if len(scope) == 0 {
		return true
	}
	for _, e := range scope {
		if ok, _ := path.Match(e, name); ok {
			return true
		}
	}
	return false
}

// isLiteral reports whether a scope entry is a workspace name, not a glob.
func isLiteral(e string) bool { return !strings.ContainsAny(e, globMeta) }

// ScopesOverlap reports whether some workspace could be in both scopes, the
// rule that lets two secrets share an env name or a file path only when no
// workspace gets both. It is exact where it can be and safe elsewhere:
//
//  1. An empty scope (every workspace) overlaps with anything.
//  2. Two literal names overlap when they are equal.
//  3. A literal and a glob overlap when the glob matches the literal.
//  4. Two globs always overlap, even when no name could match both
//     ("api-*" and "web-*"): deciding that in general is not worth the
//     surprise of a rule nobody can predict.
//
// Two scopes overlap when any pair of their entries does.
func ScopesOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if entriesOverlap(x, y) {
				return true
			}
		}
	}
	return false
}

func entriesOverlap(x, y string) bool {
	switch lx, ly := isLiteral(x), isLiteral(y); {
	case lx && ly:
		return x == y
	case lx:
		ok, _ := path.Match(y, x)
		return ok
	case ly:
		ok, _ := path.Match(x, y)
		return ok
	}
	return true
}

// DescribeScope renders a scope for people: "all workspaces" or the
// entries joined by ", ".
func DescribeScope(scope []string) string {
	if len(scope) == 0 {
		return "all workspaces"
	}
	return strings.Join(scope, ", ")
}
