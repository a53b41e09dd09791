package inject

import (
	"context"
	"fmt"
	"sort"

	"github.com/courierhq/courier/filewriter"
)

// Manifest is what the plan needs to know about the workspace.
type Manifest struct {
	// Home is the workspace user's home directory, what "~/" expands to.
	Home string
	// Env is the template's environment; secrets override it (R5).
	Env map[string]string
	// FileDeliveryDisabled drops every file target (a deployment option).
	FileDeliveryDisabled bool
}

// Plan is what an apply will do. It holds values (in Files and Env) and must
// not be logged; Warnings and Outcomes hold none.
type Plan struct {
	// Files are the file secrets to write, sorted by secret name.
	Files []filewriter.File
	// Env is the secret env layer: env name → value.
	Env map[string]string
	// Warnings explain what the plan left out and why, without values.
	Warnings []string
	// outcomes holds the outcomes decided at planning time (invalid
	// secrets, env-only secrets, secrets with no target), by name.
	outcomes map[string]SecretOutcome
	// envOf maps a secret name to the env name it sets.
	envOf map[string]string
	names []string
}

// String never includes values: a Plan printed by accident leaks nothing.
func (p *Plan) String() string {
	return fmt.Sprintf("Plan{files=%d env=%d warnings=%d}", len(p.Files), len(p.Env), len(p.Warnings))
}

// SecretOutcome is what happened to one secret in an apply.
type SecretOutcome struct {
	Name string
	Path string // resolved file path, when there is a file target
	// Target is the file target as the owner wrote it ("~/.npmrc"), when
	// there is one; Path is what it resolved to.
	Target  string
	EnvName string // env target, when injected as env
	// Outcome is one of the Outcome* strings. For a secret with both
	// targets it describes the file; EnvName says the env was set.
	Outcome string
	Err     error  // for OutcomeFailed
	Winner  string // for OutcomeCollision
	InPlace string // for OutcomeWritten in place: why (filewriter.Result.InPlace)
}

// Report is the result of Apply: one outcome per secret, sorted by name.
type Report struct {
	Outcomes []SecretOutcome
	Warnings []string
}

// NewPlan turns a manifest and a set of secrets into a plan. The same input
// in any order gives the same plan. A secret that fails validation is left
// out with an outcome saying why, rather than failing the whole plan; two
// secrets with the same env name (which the control plane prevents) are
// settled like file collisions: the most recently updated wins, ties by name.
func NewPlan(m Manifest, secrets []Secret) (*Plan, error) {
	if m.Home == "" {
		return nil, fmt.Errorf("%w: the manifest has no home directory", ErrInvalid)
	}
	sorted := append([]Secret(nil), secrets...)
	// Sorted by name; for the (invalid) case of a repeated name, the most
	// recently updated copy comes first and is the one used, with the other
	// fields as tie-breakers so any input order gives the same plan.
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		switch {
		case a.Name != b.Name:
			return a.Name < b.Name
		case !a.UpdatedAt.Equal(b.UpdatedAt):
			return a.UpdatedAt.After(b.UpdatedAt)
		case a.EnvName != b.EnvName:
			return a.EnvName < b.EnvName
		case a.FilePath != b.FilePath:
			return a.FilePath < b.FilePath
		}
		return a.Value < b.Value
	})

	p := &Plan{Env: map[string]string{}, outcomes: map[string]SecretOutcome{}, envOf: map[string]string{}}
	envOwner := map[string]Secret{}
	for _, s := range sorted {
		if containsName(p.names, s.Name) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("secret %q appears more than once; the most recently updated is used", s.Name))
			continue
		}
		p.names = append(p.names, s.Name)
		if s.NotInScope {
			// Like a deleted secret in this workspace: no env, no file, and
			// no path, so a file written before is left behind (R7).
			p.outcomes[s.Name] = SecretOutcome{Name: s.Name, Outcome: OutcomeNotInScope}
			continue
		}
		if s.Disabled {
			// A paused secret takes no part in env or file collisions; its
			// old file, if any, stays (R7). Apply resolves the path.
			p.outcomes[s.Name] = SecretOutcome{Name: s.Name, Path: s.FilePath, Target: s.FilePath, Outcome: OutcomeDisabled}
			continue
		}
		if err := s.Validate(); err != nil {
			p.outcomes[s.Name] = SecretOutcome{Name: s.Name, Outcome: OutcomeFailed, Err: err}
			p.Warnings = append(p.Warnings, fmt.Sprintf("secret %q is invalid and was not applied: %v", s.Name, err))
			continue
		}
		if s.EnvName != "" {
			if prev, ok := envOwner[s.EnvName]; ok {
				winner, loser := prev, s
				if newer(s, prev) {
					winner, loser = s, prev
				}
				p.Warnings = append(p.Warnings, fmt.Sprintf(
					"secrets %q and %q both set env %s; %q is used", prev.Name, s.Name, s.EnvName, winner.Name))
				envOwner[s.EnvName] = winner
				p.outcomes[loser.Name] = SecretOutcome{Name: loser.Name, EnvName: s.EnvName,
					Outcome: OutcomeCollision, Winner: winner.Name}
			} else {
				envOwner[s.EnvName] = s
			}
		}
		switch {
		case s.FilePath != "" && m.FileDeliveryDisabled:
			p.outcomes[s.Name] = SecretOutcome{Name: s.Name, EnvName: s.EnvName, Target: s.FilePath, Outcome: OutcomeFileDisabled}
		case s.FilePath != "":
			p.Files = append(p.Files, filewriter.File{Secret: s.Name, Path: s.FilePath, Content: []byte(s.Value), UpdatedAt: s.UpdatedAt})
		case s.EnvName == "":
			p.outcomes[s.Name] = SecretOutcome{Name: s.Name, Outcome: OutcomeNotInjected}
		}
	}
	for name, s := range envOwner {
		p.Env[name] = s.Value
		p.envOf[s.Name] = name
		if _, ok := p.outcomes[s.Name]; !ok && s.FilePath == "" {
			p.outcomes[s.Name] = SecretOutcome{Name: s.Name, Outcome: OutcomeEnvOnly}
		}
	}
	return p, nil
}

// newer is R8's collision rule (filewriter.Wins) for two secrets.
func newer(a, b Secret) bool { return filewriter.Wins(a.UpdatedAt, a.Name, b.UpdatedAt, b.Name) }

func containsName(names []string, n string) bool {
	i := sort.SearchStrings(names, n)
	return i < len(names) && names[i] == n
}

// Apply writes the plan's files with w and returns one outcome per secret,
// sorted by name. Collisions, concurrency and atomicity are w's; Apply adds
// the outcomes decided at planning time. The report holds no values.
func Apply(ctx context.Context, p *Plan, w *filewriter.Writer) Report {
	byName := make(map[string]SecretOutcome, len(p.names))
	for k, v := range p.outcomes {
		byName[k] = v
	}
	target := make(map[string]string, len(p.Files))
	for _, f := range p.Files {
		target[f.Secret] = f.Path
	}
	for _, r := range w.WriteAll(ctx, p.Files) {
		byName[r.Secret] = SecretOutcome{Name: r.Secret, Path: r.Path, Target: target[r.Secret], Outcome: string(r.Outcome),
			Err: r.Err, Winner: r.Winner, InPlace: r.InPlace}
	}
	rep := Report{Warnings: append([]string(nil), p.Warnings...)}
	for _, n := range p.names {
		o := byName[n]
		o.Name = n
		if o.Outcome == OutcomeDisabled && o.Path != "" {
			// The path as the agent would write it, or none if invalid.
			o.Path, _ = w.Resolve(o.Path)
		}
		if env, ok := p.envOf[n]; ok {
			o.EnvName = env
		}
		rep.Outcomes = append(rep.Outcomes, o)
	}
	return rep
}
