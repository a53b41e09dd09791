// Package envmerge builds the one environment every process the agent spawns
// receives, by merging ordered layers with a fixed precedence:
//
//  1. Base: the agent's own environment, minus its private variables (the
//     agent token and the rest of COURIER_AGENT_*), so nothing the agent
//     starts can read its credentials;
//  2. Template: the workspace template's env;
//  3. Secrets: the user's env secrets — they win over the template (R5);
//  4. Session: what a session owns (HOME, USER, SHELL, TERM, SSH_*).
//
// A later layer wins, as in os/exec where the last duplicate wins.
//
// Secrets do not override session variables. The session layer holds facts
// about the running session (whose home, which terminal, which SSH
// connection); a secret that replaced them would break shells and tools in
// ways that look unrelated to the secret. The inject package already refuses
// env targets with those names, so this only matters for data that bypassed
// validation; Merge then keeps the session's value and warns (naming the
// variable, never the value).
//
// Names are compared exactly on Linux and macOS, and case-insensitively on
// Windows (Path and PATH are one variable there). The rule is the FoldCase
// option rather than runtime.GOOS, so both are testable everywhere.
package envmerge

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
)

var (
	// ErrInvalid is wrapped by every refusal of Merge: a NUL byte, an '=' in
	// a name or an empty name. The error names the variable and its layer,
	// never the value.
	ErrInvalid = errors.New("invalid environment variable")
	// ErrOptions is wrapped by Options.Validate failures.
	ErrOptions = errors.New("invalid envmerge options")
)

// Layer names, as used in Result.Sources and error messages.
const (
	LayerBase     = "base"
	LayerTemplate = "template"
	LayerSecret   = "secret"
	LayerSession  = "session"
)

// DefaultBudgetBytes is Windows' environment block limit (32,767 UTF-16
// characters), the smallest of the platforms the agent runs on.
const DefaultBudgetBytes = 32 * 1024

// Options controls a merge. The zero value is usable: case-sensitive names,
// no private variables, the default budget.
type Options struct {
	// FoldCase makes names case-insensitive, as on Windows. When two layers
	// set names that differ only by case, the later layer's value wins and
	// the earlier spelling is kept (Windows keeps the first spelling too).
	// DefaultOptions sets it to runtime.GOOS == "windows".
	FoldCase bool
	// Private lists names removed from the Base layer; an entry ending in
	// '*' removes every name with that prefix. DefaultOptions lists the
	// agent's credentials and configuration (COURIER_AGENT_*).
	Private []string
	// BudgetBytes is the size above which Result.OverBudget is set and a
	// warning issued. 0 means DefaultBudgetBytes.
	BudgetBytes int
}

// DefaultOptions returns the options the agent uses on this OS.
func DefaultOptions() Options {
	return Options{
		FoldCase:    runtime.GOOS == "windows",
		Private:     []string{"COURIER_AGENT_TOKEN", "COURIER_AGENT_TOKEN_FILE", "COURIER_AGENT_*"},
		BudgetBytes: DefaultBudgetBytes,
	}
}

// Validate reports whether o is usable.
func (o Options) Validate() error {
	if o.BudgetBytes < 0 {
		return fmt.Errorf("%w: BudgetBytes is negative", ErrOptions)
	}
	for _, p := range o.Private {
		if p == "" || p == "*" {
			return fmt.Errorf("%w: private entry %q would match every name", ErrOptions, p)
		}
	}
	return nil
}

// Layers are the inputs of a merge, lowest precedence first.
type Layers struct {
	// Base is an environment in "NAME=value" form, e.g. os.Environ().
	// Entries without '=' are dropped (os/exec does the same).
	Base []string
	// Template, Secrets and Session are name → value maps.
	Template, Secrets, Session map[string]string
}

// Result is a merged environment.
type Result struct {
	// Env is ready for exec.Cmd.Env: one entry per name (under the folding
	// rule), sorted by name.
	Env []string
	// Bytes is the size of the environment block: len("NAME=value")+1 for
	// each entry.
	Bytes int
	// OverBudget is true when Bytes exceeds the budget.
	OverBudget bool
	// Warnings describe shadowed session variables and an exceeded budget.
	// They name variables and sizes, never values.
	Warnings []string
	// Sources maps each name in Env to the layer that set it — the
	// effective view for debugging. It holds no values.
	Sources map[string]string
}

type entry struct {
	key, name, value, layer string
}

// Merge merges l under o. It is deterministic: the same input gives the same
// Result, whatever the iteration order of the maps.
func Merge(o Options, l Layers) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	budget := o.BudgetBytes
	if budget == 0 {
		budget = DefaultBudgetBytes
	}
	key := func(name string) string { return name }
	if o.FoldCase {
		key = strings.ToUpper
	}
	n := len(l.Base) + len(l.Template) + len(l.Secrets) + len(l.Session)
	// entries holds the variables in first-set order; index maps a
	// (possibly case-folded) name to its slot.
	entries := make([]entry, 0, n)
	index := make(map[string]int, n)
	var warnings []string

	set := func(name, value, layer string) error {
		if err := check(name, value, layer); err != nil {
			return err
		}
		k := key(name)
		if i, ok := index[k]; ok {
			old := &entries[i]
			if layer == LayerSession && old.layer == LayerSecret {
				warnings = append(warnings, fmt.Sprintf(
					"secret env %s is shadowed by the session's own variable %s", old.name, name))
			}
			old.value, old.layer = value, layer
			return nil
		}
		index[k] = len(entries)
		entries = append(entries, entry{key: k, name: name, value: value, layer: layer})
		return nil
	}

	for _, kv := range l.Base {
		name, value, ok := strings.Cut(kv, "=")
		// Windows keeps per-drive working directories in entries such as
		// "=C:=C:\\"; they have no name to merge, so they are dropped.
		if !ok || name == "" || isPrivate(o, name) {
			continue
		}
		if err := set(name, value, LayerBase); err != nil {
			return Result{}, err
		}
	}
	for _, layer := range []struct {
		name string
		m    map[string]string
	}{{LayerTemplate, l.Template}, {LayerSecret, l.Secrets}, {LayerSession, l.Session}} {
		if err := setLayer(o.FoldCase, layer.name, layer.m, set); err != nil {
			return Result{}, err
		}
	}

	// Sort an index, not the entries: swapping 4-byte ints is much cheaper
	// than swapping four-string structs (each swap is GC write barriers).
	order := make([]int32, len(entries))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(entries[a].key, entries[b].key) })
	res := Result{Env: make([]string, len(entries)), Sources: make(map[string]string, len(entries))}
	secretBytes := 0
	for _, e := range entries {
		size := len(e.name) + len(e.value) + 2
		res.Bytes += size
		if e.layer == LayerSecret {
			secretBytes += size
		}
	}
	// Every "NAME=value" is a slice of one string: one allocation for the
	// whole environment instead of one per variable.
	var b strings.Builder
	b.Grow(res.Bytes)
	for _, i := range order {
		e := &entries[i]
		b.WriteString(e.name)
		b.WriteByte('=')
		b.WriteString(e.value)
	}
	all, off := b.String(), 0
	for i, j := range order {
		e := &entries[j]
		n := len(e.name) + 1 + len(e.value)
		res.Env[i] = all[off : off+n]
		off += n
		res.Sources[e.name] = e.layer
	}
	if res.Bytes > budget {
		res.OverBudget = true
		msg := fmt.Sprintf("environment is %d bytes, %d over the %d-byte budget", res.Bytes, res.Bytes-budget, budget)
		if res.Bytes-secretBytes <= budget {
			msg += fmt.Sprintf("; env secrets (%d bytes) pushed it over", secretBytes)
		}
		warnings = append(warnings, msg)
	}
	res.Warnings = warnings
	return res, nil
}

func check(name, value, layer string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name in the %s layer", ErrInvalid, layer)
	case strings.ContainsAny(name, "=\x00"):
		return fmt.Errorf("%w: name %q in the %s layer contains '=' or NUL", ErrInvalid, strings.ReplaceAll(name, "\x00", `\0`), layer)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%w: value of %s in the %s layer contains a NUL byte", ErrInvalid, name, layer)
	}
	return nil
}

func isPrivate(o Options, name string) bool {
	for _, p := range o.Private {
		prefix, isPrefix := strings.CutSuffix(p, "*")
		if o.FoldCase {
			name, prefix, p = strings.ToUpper(name), strings.ToUpper(prefix), strings.ToUpper(p)
		}
		if (isPrefix && strings.HasPrefix(name, prefix)) || name == p {
			return true
		}
	}
	return false
}

// setLayer sets every variable of m. Without case folding the names of one
// map are distinct, so iteration order cannot change the outcome; with it,
// names differing only in case collide, so they are set in sorted order to
// resolve the same way every time.
func setLayer(fold bool, layer string, m map[string]string, set func(name, value, layer string) error) error {
	if !fold {
		for name, value := range m {
			if err := set(name, value, layer); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range sortedKeys(m) {
		if err := set(name, m[name], layer); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
