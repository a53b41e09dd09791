package store

import (
	"encoding/json"
	"fmt"

	"github.com/courierhq/courier/inject"
)

// This file holds the rules every Store implementation applies the same way,
// so they cannot drift between SQLite and PostgreSQL.

// SecretConflict reports the first uniqueness rule that cand breaks against
// the secrets in set (one user's), skipping the secret with cand's ID: a
// *ConflictError naming "name", "env_name" or "file_path", or nil. Names
// are unique per user; an env name or a file path may be shared only by
// secrets whose scopes cannot overlap (inject.ScopesOverlap), so no
// workspace ever gets two secrets for one target; nor may one file path be
// a directory of another (inject.FilePathsNest) where both can land.
func SecretConflict(set []Secret, cand Secret) error {
	for _, o := range set {
		if o.ID == cand.ID {
			continue
		}
		if o.Name == cand.Name {
			return &ConflictError{Field: "name", Message: fmt.Sprintf("a secret named %q already exists", cand.Name)}
		}
		env := cand.EnvName != "" && o.EnvName == cand.EnvName
		// File paths are compared as the agent will clean them, and one
		// that is a directory of the other collides too: no workspace can
		// hold a file at ~/.npmrc and another at ~/.npmrc/extra.
		bothFiles := cand.FilePath != "" && o.FilePath != ""
		file := bothFiles && inject.FilePathKey(o.FilePath) == inject.FilePathKey(cand.FilePath)
		nest := bothFiles && !file && inject.FilePathsNest(o.FilePath, cand.FilePath)
		if (!env && !file && !nest) || !inject.ScopesOverlap(o.Workspaces, cand.Workspaces) {
			continue
		}
		field, what := "env_name", "env name "+cand.EnvName
		switch {
		case env:
		case file && o.FilePath != cand.FilePath:
			field, what = "file_path", fmt.Sprintf("file path %s (%s once cleaned)", cand.FilePath, inject.FilePathKey(cand.FilePath))
		case file:
			field, what = "file_path", "file path "+cand.FilePath
		default:
			field, what = "file_path", fmt.Sprintf("file path %s would need a directory where a file is, or a file where a directory is: it nests with %s, which", cand.FilePath, o.FilePath)
		}
		if len(o.Workspaces) == 0 && len(cand.Workspaces) == 0 {
			return &ConflictError{Field: field, Message: fmt.Sprintf("%s is already used by secret %q", what, o.Name)}
		}
		return &ConflictError{Field: field, Scoped: true, Message: fmt.Sprintf(
			"%s is already used by secret %q, whose workspaces (%s) may overlap with these (%s): two secrets share an env name or file path only when no workspace can get both (scopes of literal workspace names that differ, or a glob that matches none of the other's names)",
			what, o.Name, inject.DescribeScope(o.Workspaces), inject.DescribeScope(cand.Workspaces))}
	}
	return nil
}

// Apply returns sec with the fields u sets replaced.
func (u SecretUpdate) Apply(sec Secret) Secret {
	if u.Description != nil {
		sec.Description = *u.Description
	}
	if u.EnvName != nil {
		sec.EnvName = *u.EnvName
	}
	if u.FilePath != nil {
		sec.FilePath = *u.FilePath
	}
	if u.Enabled != nil {
		sec.Enabled = *u.Enabled
	}
	if u.Workspaces != nil {
		sec.Workspaces = inject.NormalizeScope(*u.Workspaces)
	}
	if u.Value != nil {
		sec.Value, sec.Format = u.Value, u.Format
	}
	if !u.UpdatedAt.IsZero() {
		sec.UpdatedAt = u.UpdatedAt
	}
	return sec
}

// EncodeScope is how both stores keep a secret's scope in its text column:
// a JSON array, or "" for every workspace.
func EncodeScope(scope []string) string {
	if len(scope) == 0 {
		return ""
	}
	b, _ := json.Marshal(scope) // a []string always marshals
	return string(b)
}

// DecodeScope reads what EncodeScope wrote.
func DecodeScope(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var scope []string
	if err := json.Unmarshal([]byte(s), &scope); err != nil {
		return nil, fmt.Errorf("store: a secret's stored workspaces are not a JSON array: %w", err)
	}
	if len(scope) == 0 {
		return nil, nil
	}
	return scope, nil
}

// Usages is what the per-user caps count of each stored secret: its stored
// (sealed) size and whether it has an env target.
func Usages(ss []Secret) []inject.Usage {
	us := make([]inject.Usage, len(ss))
	for i, s := range ss {
		us[i] = inject.Usage{Name: s.Name, StoredBytes: len(s.Value), HasEnv: s.EnvName != ""}
	}
	return us
}
