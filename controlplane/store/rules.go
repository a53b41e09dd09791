package store

import "fmt"

// This file holds the rules every Store implementation applies the same way,
// so they cannot drift between SQLite and PostgreSQL.

// SecretConflict reports the first uniqueness rule that cand breaks against
// the secrets in set (one user's), skipping the secret with cand's ID: a
// *ConflictError naming "name", "env_name" or "file_path", or nil.
func SecretConflict(set []Secret, cand Secret) error {
	for _, o := range set {
		if o.ID == cand.ID {
			continue
		}
		switch {
		case o.Name == cand.Name:
			return &ConflictError{Field: "name", Message: fmt.Sprintf("a secret named %q already exists", cand.Name)}
		case cand.EnvName != "" && o.EnvName == cand.EnvName:
			return &ConflictError{Field: "env_name", Message: fmt.Sprintf("env name %s is already used by secret %q", cand.EnvName, o.Name)}
		case cand.FilePath != "" && o.FilePath == cand.FilePath:
			return &ConflictError{Field: "file_path", Message: fmt.Sprintf("file path %s is already used by secret %q", cand.FilePath, o.Name)}
		}
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
	if u.Value != nil {
		sec.Value, sec.Format = u.Value, u.Format
	}
	if !u.UpdatedAt.IsZero() {
		sec.UpdatedAt = u.UpdatedAt
	}
	return sec
}
