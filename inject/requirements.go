package inject

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// Requirement is a secret a workspace template asks for: an env name, a
// file path, or both, with words and a link that tell the owner what to
// create. The control plane checks requirements at workspace creation and
// shows their status; the agent checks them before running startup scripts.
// Both use CheckRequirements, so they agree.
type Requirement struct {
	Env         string
	File        string
	Description string
	DocsURL     string
	// Required: a missing one blocks creation and startup scripts; false
	// makes it a recommendation that is shown but blocks nothing.
	Required bool
}

// Label names what r asks for: "NPM_TOKEN", "~/.npmrc" or both joined by
// " and ". It never holds a value.
func (r Requirement) Label() string {
	switch {
	case r.Env != "" && r.File != "":
		return r.Env + " and " + r.File
	case r.Env != "":
		return r.Env
	}
	return r.File
}

// Requirement statuses.
const (
	// RequirementMet: an enabled secret in scope delivers every target.
	RequirementMet = "met"
	// RequirementPaused: a target is delivered only by paused secrets.
	RequirementPaused = "paused"
	// RequirementMissing: no secret in scope delivers a target.
	RequirementMissing = "missing"
)

// RequirementStatus is a requirement and whether the owner's secrets meet it.
type RequirementStatus struct {
	Requirement
	// Status is RequirementMet, RequirementPaused or RequirementMissing.
	Status string
}

// Blocking reports whether s is a required requirement that is not met.
func (s RequirementStatus) Blocking() bool { return s.Required && s.Status != RequirementMet }

// Requirement bounds.
const (
	// MaxRequirements is the most secrets a template may ask for (the
	// per-user cap on secrets is lower still).
	MaxRequirements = 64
	// MaxDocsURLBytes is the longest docs_url.
	MaxDocsURLBytes = 2048
)

// CheckRequirements returns the status of each requirement against secrets
// (the owner's, as one workspace sees them). A target is delivered by a
// secret with that env name, or with a file path naming the same file: the
// paths are compared cleaned, with "~/" expanded to home when home is not ""
// (the agent knows its home; the control plane compares paths as written).
// A secret that is not in scope delivers nothing; a paused one makes the
// target paused rather than missing. A requirement with both targets is met
// only when both are; its status is the worst of its targets'.
func CheckRequirements(reqs []Requirement, secrets []Secret, home string) []RequirementStatus {
	out := make([]RequirementStatus, 0, len(reqs))
	for _, r := range reqs {
		st := RequirementMet
		if r.Env != "" {
			st = worse(st, targetStatus(secrets, func(s Secret) bool { return s.EnvName == r.Env }))
		}
		if r.File != "" {
			want := cleanTarget(r.File, home)
			st = worse(st, targetStatus(secrets, func(s Secret) bool {
				return s.FilePath != "" && cleanTarget(s.FilePath, home) == want
			}))
		}
		out = append(out, RequirementStatus{Requirement: r, Status: st})
	}
	return out
}

// Blocking returns the statuses that are required and not met.
func Blocking(sts []RequirementStatus) []RequirementStatus {
	var out []RequirementStatus
	for _, s := range sts {
		if s.Blocking() {
			out = append(out, s)
		}
	}
	return out
}

func targetStatus(secrets []Secret, delivers func(Secret) bool) string {
	st := RequirementMissing
	for _, s := range secrets {
		if s.NotInScope || !delivers(s) {
			continue
		}
		if !s.Disabled {
			return RequirementMet
		}
		st = RequirementPaused
	}
	return st
}

var rank = map[string]int{RequirementMet: 0, RequirementPaused: 1, RequirementMissing: 2}

func worse(a, b string) string {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func cleanTarget(p, home string) string {
	if home != "" && strings.HasPrefix(p, "~/") {
		p = home + "/" + p[2:]
	}
	return path.Clean(p)
}

// ValidateRequirements checks a template's requirements and returns one
// FieldError per problem, with Field "secrets[i].env" and so on (i from 0),
// or nil. Each needs an env name or a file path, valid as a secret's would
// be; a docs_url must be an absolute http or https URL; two requirements
// may not ask for the same env name or file path.
func ValidateRequirements(reqs []Requirement) Errors {
	var es Errors
	if len(reqs) > MaxRequirements {
		return Errors{fieldErr("secrets", "lists %d secrets; the maximum is %d", len(reqs), MaxRequirements)}
	}
	seenEnv, seenFile := map[string]int{}, map[string]int{}
	for i, r := range reqs {
		at := fmt.Sprintf("secrets[%d].", i)
		add := func(field string, err error) {
			var fe *FieldError
			if errors.As(err, &fe) {
				es = append(es, &FieldError{Field: at + field, Message: fe.Message})
			}
		}
		if r.Env == "" && r.File == "" {
			es = append(es, fieldErr(at+"env", "a required secret needs env, file or both"))
		}
		if r.Env != "" {
			add("env", ValidateEnvName(r.Env))
			if j, ok := seenEnv[r.Env]; ok {
				es = append(es, fieldErr(at+"env", "%s is already asked for by secrets[%d]", r.Env, j))
			}
			seenEnv[r.Env] = i
		}
		if r.File != "" {
			add("file", ValidateFilePath(r.File))
			if j, ok := seenFile[path.Clean(r.File)]; ok {
				es = append(es, fieldErr(at+"file", "%s is already asked for by secrets[%d]", truncateText(r.File, 64), j))
			}
			seenFile[path.Clean(r.File)] = i
		}
		add("description", ValidateDescription(r.Description))
		if err := ValidateDocsURL(r.DocsURL); err != nil {
			es = append(es, fieldErr(at+"docs_url", "%s", err))
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// ValidateDocsURL checks a documentation link: empty, or an absolute http or
// https URL with a host, at most MaxDocsURLBytes, without white space or
// control characters (it becomes a link in the dashboard, so "javascript:"
// and friends are refused).
func ValidateDocsURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxDocsURLBytes {
		return fmt.Errorf("is %d bytes; the maximum is %d", len(s), MaxDocsURLBytes)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("must not contain white space or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an http:// or https:// link (got scheme %q)", truncateText(u.Scheme, 16))
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("must be an absolute link with a host and no user info")
	}
	return nil
}
